"""MATLAB-compatible bicubic imresize, in numpy (bit-exact on uint8) and in torch (batched).

The SR benchmarks (Set5, Set14, ...) were made with MATLAB's `imresize(hr, 1/4, 'bicubic')`, and the
published bicubic/PSNR numbers depend on its exact behaviour: a Keys cubic kernel with a = -0.5, a
kernel stretched by 1/scale when downscaling (antialiasing), MATLAB's pixel-centre mapping,
symmetric mirroring at the borders, and rounding to uint8 after each 1-D pass for uint8 images.
Everything here follows those semantics so that our LR images equal the MATLAB ones pixel for pixel.
"""

import math
from functools import lru_cache

import numpy as np
import torch

KERNEL_WIDTH = 4.0  # support of the bicubic kernel, in input pixels, before antialiasing


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    inner = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2))
    return inner + outer


@lru_cache(maxsize=256)
def contributions(in_len: int, scale: float, antialiasing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based input indices, both (out_len, taps), for resizing one dimension.

    Output pixel i reads input pixels indices[i] with weights weights[i] (each row sums to 1).
    The arrays are cached and shared, so they are returned read-only.
    """
    out_len = math.ceil(in_len * scale)
    kernel_width = KERNEL_WIDTH
    # When shrinking, MATLAB stretches the kernel by 1/scale so it low-pass filters (antialiasing).
    stretch = scale < 1 and antialiasing
    if stretch:
        kernel_width = kernel_width / scale

    # 1-based output coordinates mapped to 1-based input coordinates such that the image edges
    # (not the first/last pixel centres) line up: u = x/scale + 0.5*(1 - 1/scale).
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if stretch else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Out-of-range indices fold back symmetrically (edge pixel repeated: ... 2 1 | 1 2 3 ...),
    # which is MATLAB's mirror of the sequence [1..n, n..1].
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]

    # Taps whose weight is zero for every output pixel only cost time; MATLAB drops them too.
    keep = np.any(weights != 0, axis=0)
    weights, indices = weights[:, keep], indices[:, keep]
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


@lru_cache(maxsize=256)
def weight_matrix(in_len: int, scale: float, antialiasing: bool) -> torch.Tensor:
    """Dense (out_len, in_len) float64 CPU matrix equivalent to `contributions` (for torch)."""
    weights, indices = contributions(in_len, scale, antialiasing)
    matrix = np.zeros((weights.shape[0], in_len), dtype=np.float64)
    rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
    # Mirrored indices can hit the same input pixel twice near the borders, so accumulate.
    np.add.at(matrix, (rows, indices.ravel()), weights.ravel())
    return torch.from_numpy(matrix)


def resize_along(image: np.ndarray, dim: int, scale: float, antialiasing: bool) -> np.ndarray:
    """Resize a float64 array along `dim` with the cached MATLAB weights."""
    weights, indices = contributions(image.shape[dim], scale, antialiasing)
    moved = np.moveaxis(image, dim, 0)
    gathered = moved[indices]  # (out_len, taps, ...rest)
    weights = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    return np.moveaxis((gathered * weights).sum(axis=1), 0, dim)


def imresize(image: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize an HxW or HxWxC image by `scale` like MATLAB's `imresize(image, scale, 'bicubic')`.

    The output is ceil(H*scale) x ceil(W*scale). uint8 input gives uint8 output, rounded and
    clipped after each 1-D pass as MATLAB does; float input gives the same float dtype, unrounded.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    is_uint8 = image.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"imresize supports uint8 and float images, got {image.dtype}")

    result = image.astype(np.float64)
    # MATLAB resizes dimensions in order of increasing scale, ties broken H first; with one scale
    # for both dimensions that is H then W. The order matters for uint8 (rounding between passes).
    for dim in (0, 1):
        result = resize_along(result, dim, scale, antialiasing)
        if is_uint8:
            # MATLAB stores each pass in uint8: saturate, then round half away from zero.
            result = np.floor(np.clip(result, 0, 255) + 0.5)
    return result.astype(image.dtype)


@lru_cache(maxsize=64)
def device_weight_matrix(
    in_len: int, scale: float, antialiasing: bool, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """`weight_matrix` on `device` in `dtype`, copied there once: a copy per call would be a
    blocking host-to-device transfer in every training step."""
    return weight_matrix(in_len, scale, antialiasing).to(device=device, dtype=dtype)


def imresize_torch(image: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """Batched float version of `imresize` for tensors shaped (..., H, W), on any device.

    Each 1-D pass is a dense matmul with the weight matrix (cached per device and dtype), which
    is fast for the small patches used in training. No rounding is applied; the result is as
    exact as `image.dtype` and the device's matmul settings allow (TF32 rounds float32 matmuls,
    so `srgan.data.degradation` passes float64).
    """
    if not image.is_floating_point():
        raise TypeError(f"imresize_torch expects a float tensor, got {image.dtype}")
    # H then W, the same order as `imresize`.
    height_matrix = device_weight_matrix(
        image.shape[-2], scale, antialiasing, image.device, image.dtype
    )
    width_matrix = device_weight_matrix(
        image.shape[-1], scale, antialiasing, image.device, image.dtype
    )
    result = height_matrix @ image  # (out_h, H) @ (..., H, W) -> (..., out_h, W)
    result = result @ width_matrix.T  # (..., out_h, W) @ (W, out_w) -> (..., out_h, out_w)
    return result


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W (top-left anchored) down to multiples of `scale`."""
    height = image.shape[0] - image.shape[0] % scale
    width = image.shape[1] - image.shape[1] % scale
    return image[:height, :width]
