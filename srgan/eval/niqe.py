"""NIQE, the "completely blind" naturalness score of Mittal, Soundararajan and Bovik (2013).

A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'Completely Blind' Image Quality
Analyzer", IEEE Signal Processing Letters 20(3), 2013. Lower is more natural. It needs no
reference image and no learned network: only a multivariate Gaussian fitted on the patch
features of pristine photographs, shipped in `srgan/eval/niqe_model/` with the release's licence
notice (`NOTICE.txt`).

As in the official MATLAB release (`computequality.m`), on a 2-D image on the 0..255 scale:
1. crop to whole 96x96 patches (top-left anchored);
2. at each of two scales, the full image and its MATLAB-bicubic x1/2 resize (antialiased,
   unrounded), normalise the local contrast (Section II.A, Eq. 1): (I - mu) / (sigma + 1),
   mu and sigma from the 7x7 Gaussian window (sigma 7/6) with replicated borders;
3. per patch (96 px, then the same patches at 48 px) fit asymmetric generalized Gaussians
   (Section II.B-C) to the normalised values and to their products with the four neighbours
   (right, down, and both diagonals, wrapping around inside the patch as `circshift` does):
   18 features per scale, 36 per patch. The shape is the best of the grid 0.2:0.001:10
   (moment matching of the release's `estimateaggdparam.m`);
4. fit a Gaussian to the image's patches (every patch: the sharpness selection was only used
   to fit the pristine model) and return the distance of Eq. 3,
   sqrt((mu_p - mu_i)^T pinv((Sigma_p + Sigma_i) / 2) (mu_p - mu_i)).

A patch whose features are undefined (a flat patch has no negative or positive values) is left
out of the covariance and, feature by feature, of the mean (MATLAB's `nancov`/`nanmean`). An
image with fewer than 96 pixels on a side, or without one fully defined patch, has no score:
None, never a number.

`image_niqe` applies the evaluation protocol's conventions: the Y channel of BT.601 YCbCr
(16..235), rounded to integer levels as MATLAB's `rgb2ycbcr` does for uint8 images, and the
protocol's border crop. With them Set14's `baboon.png` scores 5.729574, the release's figure
to 1e-6 (MATLAB R2021a: 5.72957338).
"""

from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.linalg import pinv
from scipy.ndimage import correlate1d
from scipy.special import gamma

from srgan.data.imresize import imresize
from srgan.eval.metrics import luma, shave

PATCH_SIZE = 96
MODEL_FILE = "niqe_pris_params.npz"
# The shapes searched by the release's moment matching, 0.2:0.001:10, written as MATLAB's
# colon operator computes them (start + k * step) rather than by accumulating the step.
SHAPES = 0.2 + 0.001 * np.arange(9801)
# E[|x|]^2 / E[x^2] of a generalized Gaussian of each shape (rho(alpha) of Section II.B).
SHAPE_RATIOS = gamma(2 / SHAPES) ** 2 / (gamma(1 / SHAPES) * gamma(3 / SHAPES))
# Neighbours whose products with a pixel are modelled (Section II.C), as `circshift` offsets:
# horizontal, vertical, main diagonal, secondary diagonal.
NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
# Local deviations (grey levels) below this are rounding noise of the local mean: far above
# the noise of float64 sums on 0..255 (about 1e-13), far below any step of an 8-bit image.
ROUNDING_NOISE = 1e-9


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (36,), covariance (36, 36), 7x7 Gaussian window) of the pristine model."""
    model_file = resources.files("srgan.eval") / "niqe_model" / MODEL_FILE
    with resources.as_file(model_file) as path, np.load(path) as arrays:
        return (
            arrays["mu_pris_param"].ravel(),
            arrays["cov_pris_param"],
            arrays["gaussian_window"],
        )


def local_average(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """`image` filtered by the Gaussian `window`, replicated borders (MATLAB 'replicate').

    The window is separable (an outer product to 3e-17): filtering by its row sums along both
    axes costs 14 instead of 49 operations a pixel.
    """
    kernel = window.sum(axis=1)
    rows_filtered = correlate1d(image, kernel, axis=0, mode="nearest")
    return correlate1d(rows_filtered, kernel, axis=1, mode="nearest")


def normalised_luminance(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients (Eq. 1), replicated borders."""
    local_mean = local_average(image, window)
    local_variance = local_average(image * image, window) - local_mean**2
    deviation = image - local_mean
    # A flat neighbourhood's deviation is 0, but the filter's rounding leaves about 1e-14 of
    # either sign, and that sign moves the pixel between the AGGD's left and right halves:
    # baboon's 13 flat pixels moved NIQE by 4e-4 (5.72996). With them 0 it scores 5.7295739,
    # MATLAB's figure.
    deviation[np.abs(deviation) < ROUNDING_NOISE] = 0
    # abs: rounding can make the variance of a flat region slightly negative.
    return deviation / (np.sqrt(np.abs(local_variance)) + 1)


def patches(image: np.ndarray, size: int) -> np.ndarray:
    """The image's whole size x size patches, (count, size, size), row by row."""
    rows, columns = image.shape[0] // size, image.shape[1] // size
    blocks = image[: rows * size, : columns * size].reshape(rows, size, columns, size)
    return blocks.swapaxes(1, 2).reshape(rows * columns, size, size)


def fit_aggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shape, left scale, right scale) of an asymmetric generalized Gaussian per row of
    `samples` (count, n), by the moment matching of Lasmar et al. that the release uses.

    Rows without negative or without positive values give NaN scales, and the grid's first
    shape, as MATLAB's `min` over NaN does.
    """
    negative, positive = samples < 0, samples > 0
    squares = samples**2
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((squares * negative).sum(axis=1) / negative.sum(axis=1))
        right_std = np.sqrt((squares * positive).sum(axis=1) / positive.sum(axis=1))
        ratio = left_std / right_std
        moment_ratio = np.abs(samples).mean(axis=1) ** 2 / squares.mean(axis=1)
        normalised = moment_ratio * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    # argmin returns the first NaN of a NaN row: index 0, like MATLAB.
    shape = SHAPES[np.argmin((SHAPE_RATIOS[None, :] - normalised[:, None]) ** 2, axis=1)]
    spread = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, left_std * spread, right_std * spread


def patch_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 features of each patch of one scale (Section II.B-C), (count, 18)."""
    count = len(blocks)
    shape, left, right = fit_aggd(blocks.reshape(count, -1))
    features = [shape, (left + right) / 2]
    for shift in NEIGHBOUR_SHIFTS:
        products = blocks * np.roll(blocks, shift, axis=(1, 2))
        shape, left, right = fit_aggd(products.reshape(count, -1))
        mean = (right - left) * gamma(2 / shape) / gamma(1 / shape)
        features += [shape, mean, left, right]
    return np.stack(features, axis=1)


def niqe(image: np.ndarray) -> float | None:
    """NIQE of a 2-D image on the 0..255 scale, as the MATLAB release computes it (see the
    module docstring); None when it has no score (under 96 px on a side)."""
    if image.ndim != 2:
        raise ValueError(f"NIQE takes a 2-D image, got shape {image.shape}")
    if min(image.shape) < PATCH_SIZE:
        return None
    pristine_mean, pristine_covariance, window = pristine_model()
    rows = image.shape[0] // PATCH_SIZE * PATCH_SIZE
    columns = image.shape[1] // PATCH_SIZE * PATCH_SIZE
    scale_image = image[:rows, :columns].astype(np.float64)
    features = []
    for patch_size in (PATCH_SIZE, PATCH_SIZE // 2):
        normalised = normalised_luminance(scale_image, window)
        features.append(patch_features(patches(normalised, patch_size)))
        scale_image = imresize(scale_image, 0.5)
    features = np.concatenate(features, axis=1)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) == 0:
        return None
    image_mean = np.nanmean(features, axis=0)
    # One patch has no spread to estimate: its covariance is taken as zero.
    image_covariance = np.cov(complete, rowvar=False) if len(complete) > 1 else 0.0
    difference = pristine_mean - image_mean
    # scipy's default cutoff, max(M, N) * eps * largest singular value, is MATLAB's pinv's.
    inverse = pinv((pristine_covariance + image_covariance) / 2)
    return float(np.sqrt(difference @ inverse @ difference))


def niqe_luma(image: np.ndarray) -> np.ndarray:
    """The 2-D image NIQE is computed on: BT.601 Y (16..235) of an RGB image, a gray image's
    own values; rounded to integer levels, as MATLAB's `rgb2ycbcr` returns them for uint8."""
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    # MATLAB rounds half away from zero; np.round would round half to even.
    return np.floor(luma(image) + 0.5)


def image_niqe(image: np.ndarray, crop_border: int = 0) -> float | None:
    """NIQE of an RGB (HxWx3) or gray (HxW) image on the 0..255 scale, uint8 or float, on its
    rounded Y channel with `crop_border` pixels shaved from each side (the SR protocol's)."""
    return niqe(shave(niqe_luma(image), crop_border))
