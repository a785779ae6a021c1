"""HR -> LR degradations, batched on any device (paper Section 3.1: bicubic x4 downsampling).

`bicubic` is MATLAB's antialiased `imresize(hr, 1/scale)`, the benchmark standard; `gaussian`
is the seed README's Gaussian blur followed by subsampling. Both quantise the LR image to
8-bit levels, because real LR inputs (and the benchmark LR files) are 8-bit images.
"""

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from srgan.imresize import imresize_torch

DEGRADATIONS = ("bicubic", "gaussian")


@lru_cache(maxsize=16)
def _gaussian_kernel_1d(sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    positions = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(positions**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_downsample(hr_image: torch.Tensor, scale: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding), then keep every `scale`-th pixel.

    LR pixel i takes HR pixel i * scale + scale // 2, the pixel nearest the centre of its
    scale x scale footprint.
    """
    kernel = _gaussian_kernel_1d(sigma).to(hr_image.device, hr_image.dtype)
    radius = kernel.numel() // 2
    batch_shape = hr_image.shape[:-2]
    planes = hr_image.reshape(-1, 1, *hr_image.shape[-2:])
    planes = F.pad(planes, (radius, radius, radius, radius), mode="reflect")
    planes = F.conv2d(planes, kernel.view(1, 1, 1, -1))
    planes = F.conv2d(planes, kernel.view(1, 1, -1, 1))
    offset = scale // 2
    planes = planes[..., offset::scale, offset::scale]
    return planes.reshape(*batch_shape, *planes.shape[-2:])


def degrade(
    hr_image: torch.Tensor, scale: int, kind: str = "bicubic", gaussian_sigma: float = 1.5
) -> torch.Tensor:
    """(..., C, H, W) HR in [0, 1] -> (..., C, H / scale, W / scale) LR in [0, 1], 8-bit levels."""
    if kind == "bicubic":
        lr_image = imresize_torch(hr_image, 1 / scale)
    elif kind == "gaussian":
        lr_image = gaussian_downsample(hr_image, scale, gaussian_sigma)
    else:
        raise ValueError(f"unknown degradation {kind!r}, expected one of {DEGRADATIONS}")
    return torch.round(lr_image.clamp(0, 1) * 255) / 255
