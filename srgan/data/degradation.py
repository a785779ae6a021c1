"""HR -> LR degradations (paper Section 3.1: bicubic x4 downsampling).

Two functions, one per use:
- `degrade_batch`: float tensors, batched on the training device, for every training step;
- `degrade_image`: one uint8 image, for validation and evaluate.py, bit-exact with MATLAB.

`bicubic` is MATLAB's antialiased `imresize(hr, 1/scale)`, the benchmark standard; `gaussian`
is a Gaussian blur (sigma 1.5 by default) followed by keeping every `scale`-th pixel. Both
give 8-bit LR levels, because real LR inputs (and the benchmark LR files) are 8-bit images.
The training version keeps floats between the two 1-D bicubic passes (as BasicSR does), so
about one LR pixel in ten differs from MATLAB's uint8 version by one level. It computes in
float64 whatever the input dtype: a GPU's TF32 matmuls (on for training) or a CPU's
bf16 matmuls (`torch.set_float32_matmul_precision("medium")`) would otherwise move LR pixels by
a level, and the LR images would depend on the machine.
"""

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from srgan.data.imresize import imresize, imresize_torch

DEGRADATIONS = ("bicubic", "gaussian")
# Blurs a Gaussian degradation can use: below 0.01 px the kernel is a delta already (and below
# about 1e-162 its variance underflows to 0, which makes it NaN); above 10 px a x8 LR pixel
# would average over far more than its own footprint.
MIN_GAUSSIAN_SIGMA, MAX_GAUSSIAN_SIGMA = 0.01, 10.0


def gaussian_sigma_problem(sigma: float) -> str | None:
    """What is wrong with `sigma` as the Gaussian degradation's blur (NaN included), or None;
    the config check and evaluate.py's --gaussian-sigma both say it this way."""
    if MIN_GAUSSIAN_SIGMA <= sigma <= MAX_GAUSSIAN_SIGMA:
        return None
    return f"must be {MIN_GAUSSIAN_SIGMA} to {MAX_GAUSSIAN_SIGMA}, got {sigma}"


@lru_cache(maxsize=16)
def _gaussian_kernel_1d(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The normalised 1-D kernel, made once per device and dtype (no copy in every step)."""
    radius = math.ceil(3 * sigma)
    positions = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(positions**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(device=device, dtype=dtype)


def gaussian_downsample(hr_image: torch.Tensor, scale: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding), then keep every `scale`-th pixel.

    LR pixel i takes HR pixel i * scale + scale // 2, the pixel nearest the centre of its
    scale x scale footprint.
    """
    kernel = _gaussian_kernel_1d(sigma, hr_image.device, hr_image.dtype)
    radius = kernel.numel() // 2
    batch_shape = hr_image.shape[:-2]
    planes = hr_image.reshape(-1, 1, *hr_image.shape[-2:])
    planes = F.pad(planes, (radius, radius, radius, radius), mode="reflect")
    planes = F.conv2d(planes, kernel.view(1, 1, 1, -1))
    planes = F.conv2d(planes, kernel.view(1, 1, -1, 1))
    offset = scale // 2
    planes = planes[..., offset::scale, offset::scale]
    return planes.reshape(*batch_shape, *planes.shape[-2:])


def _check_kind(kind: str) -> None:
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}, expected one of {DEGRADATIONS}")


def degrade_batch(
    hr_image: torch.Tensor, scale: int, kind: str = "bicubic", gaussian_sigma: float = 1.5
) -> torch.Tensor:
    """(..., C, H, W) HR in [0, 1] -> (..., C, H / scale, W / scale) LR in [0, 1], 8-bit levels,
    in the input's dtype (computed in float64: see the module docstring)."""
    _check_kind(kind)
    exact = hr_image.double()
    if kind == "bicubic":
        lr_image = imresize_torch(exact, 1 / scale)
    else:
        lr_image = gaussian_downsample(exact, scale, gaussian_sigma)
    return (torch.round(lr_image.clamp(0, 1) * 255) / 255).to(hr_image.dtype)


def degrade_image(
    hr_image: np.ndarray, scale: int, kind: str = "bicubic", gaussian_sigma: float = 1.5
) -> np.ndarray:
    """The uint8 LR image of a modcropped uint8 HR image (HxW or HxWx3).

    "bicubic": MATLAB `imresize(hr, 1/scale)` with uint8 rounding after each pass, which is how
    the benchmark LR files were made. "gaussian": `gaussian_downsample`, rounded to uint8.
    """
    _check_kind(kind)
    if hr_image.shape[0] % scale or hr_image.shape[1] % scale:
        raise ValueError(f"HR size {hr_image.shape[:2]} is not a multiple of scale {scale}")
    if kind == "bicubic":
        return imresize(hr_image, 1 / scale)
    planes = torch.from_numpy(np.atleast_3d(hr_image).transpose(2, 0, 1) / 255.0)
    lr_image = gaussian_downsample(planes, scale, gaussian_sigma).numpy().transpose(1, 2, 0)
    lr_image = np.floor(np.clip(lr_image * 255, 0, 255) + 0.5).astype(np.uint8)
    return lr_image if hr_image.ndim == 3 else lr_image[:, :, 0]
