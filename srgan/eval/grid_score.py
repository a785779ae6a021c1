"""Grid score: how much of an SR error is a checkerboard at the pixel shuffles' periods.

SRResNet upscales x4 by two x2 sub-pixel convolutions (Shi et al. 2016, Ledig et al. Figure 4).
When their sub-pixel kernels disagree, the output repeats a pattern every 2 and every 4 pixels,
the checkerboard artefact of Aitken et al. (2017), "Checkerboard artifact free sub-pixel
convolution". A period-4 pattern, whatever its shape (a period-2 pattern is one of them), has
all its energy at the frequencies (k/4, l/4) cycles/pixel, k, l in {0, 1, 2, 3}.

Definition. r = Y(SR) - Y(HR): BT.601 Y as float (gray images: their values), with the SR
protocol's border crop, as for PSNR-Y. Its mean is removed (a uniform offset is not a pattern)
and it is multiplied by a 2-D Hann window (the borders' discontinuities would otherwise leak
energy along both frequency axes, through 6 of the 15 neighbourhoods below). With R its 2-D DFT, the
score is the share of sum |R|^2 over all frequencies but DC that lies within 1/64 cycle/pixel
(Chebyshev distance, on the circle of frequencies) of one of the 15 non-zero (k/4, l/4).

Why neighbourhoods and not the 15 exact bins: an artefact whose amplitude follows the image content
(stronger on edges and texture) is the product of a period-4 pattern and a slowly varying
envelope, so its energy sits around each (k/4, l/4), as far out as the envelope varies; 1/64
cycle/pixel keeps envelopes that vary over 64 pixels or more. They cover 15 / 1024
(about 1.5%) of the frequency plane: white noise, which has no preferred frequency, scores
about that, a smooth error less, and a visible grid several times more.

The score is a fraction in [0, 1] (tables show it in %). An image too small to hold a period
(under 4 pixels on a side after the crop) or an error without any variation (SR equal to HR,
or off by a constant) has none: None.
"""

import numpy as np

from srgan.eval.metrics import luma, shave

PERIOD = 4  # pixels: the two x2 pixel shuffles repeat every 2 and every 4 output pixels
NEIGHBOURHOOD = 1 / 64  # cycles/pixel around each harmonic (Chebyshev distance)


def near_harmonics(length: int) -> np.ndarray:
    """(length, PERIOD) bool: which DFT frequencies of a signal of `length` samples lie within
    NEIGHBOURHOOD of each k / PERIOD, on the circle of frequencies (3/4 is -1/4)."""
    offset = (np.fft.fftfreq(length)[:, None] - np.arange(PERIOD)[None, :] / PERIOD) % 1
    # The tolerance admits bins that lie exactly at NEIGHBOURHOOD despite rounding.
    return np.minimum(offset, 1 - offset) <= NEIGHBOURHOOD + 1e-12


def harmonic_mask(height: int, width: int) -> np.ndarray:
    """(height, width) bool in DFT order: the frequencies near a non-zero (k, l) / PERIOD."""
    rows, columns = near_harmonics(height), near_harmonics(width)
    # Near some (k, l) = near some k vertically and some l horizontally.
    near_any = rows.any(axis=1)[:, None] & columns.any(axis=1)[None, :]
    # (0, 0) is not a harmonic of a pattern: its neighbourhood is the smooth part of the error.
    return near_any & ~(rows[:, 0][:, None] & columns[:, 0][None, :])


def grid_score_of_residual(residual: np.ndarray) -> float | None:
    """The grid score of a 2-D residual (see the module docstring); None when undefined."""
    if min(residual.shape) < PERIOD:
        return None
    centred = residual - residual.mean()
    hann = np.outer(np.hanning(residual.shape[0]), np.hanning(residual.shape[1]))
    energy = np.abs(np.fft.fft2(centred * hann)) ** 2
    energy[0, 0] = 0.0  # DC is left out of the total
    total = energy.sum()
    if total == 0:
        return None
    return float(energy[harmonic_mask(*residual.shape)].sum() / total)


def grid_score(sr_image: np.ndarray, hr_image: np.ndarray, crop_border: int) -> float | None:
    """Grid score of an SR image against its HR image (uint8 HxWx3, or gray HxW), on Y with
    `crop_border` pixels shaved from each side; a fraction in [0, 1], None when undefined."""
    if sr_image.shape != hr_image.shape:
        raise ValueError(f"shape mismatch: SR {sr_image.shape} vs HR {hr_image.shape}")
    residual = shave(luma(sr_image), crop_border) - shave(luma(hr_image), crop_border)
    return grid_score_of_residual(residual)
