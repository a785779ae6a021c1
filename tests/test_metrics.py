"""Tests for PSNR, SSIM and the colour conversions of the SR evaluation protocol."""

import math
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from scipy.ndimage import correlate1d

from srgan.data.degradation import degrade_image
from srgan.data.images import find_images, read_image
from srgan.data.imresize import modcrop
from srgan.eval.metrics import gray_from_rgb, image_metrics, psnr, rgb_to_y, shave, ssim
from srgan.eval.protocol import bicubic_upscale

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared/benchmarks"


def random_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def add_noise(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def test_psnr_identical_is_inf() -> None:
    image = random_image((32, 32, 3))
    assert psnr(image, image) == math.inf


def test_psnr_of_known_mse() -> None:
    image_a = np.zeros((16, 16), dtype=np.uint8)
    image_b = np.full((16, 16), 10, dtype=np.uint8)  # MSE = 100
    assert psnr(image_a, image_b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    # uint8 inputs must not wrap around when subtracted.
    assert psnr(image_b, image_a) == psnr(image_a, image_b)


def test_crop_border_crops() -> None:
    image_a = random_image((40, 40))
    image_b = image_a.copy()
    image_b[:3] = 0
    image_b[:, -3:] = 255
    assert psnr(image_a, image_b, crop_border=3) == math.inf
    assert psnr(image_a, image_b, crop_border=2) < 40
    assert ssim(image_a, image_b, crop_border=3) == 1.0
    assert ssim(image_a, image_b, crop_border=2) < 1.0


def test_ssim_identical_is_one_and_decreases_with_noise() -> None:
    image = random_image((64, 64, 3))
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    scores = [ssim(image, add_noise(image, sigma)) for sigma in (5, 20, 50)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_of_constant_images() -> None:
    # With no variance, SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    image_a = np.full((20, 20), 100.0)
    image_b = np.full((20, 20), 120.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(image_a, image_b) == pytest.approx(expected, abs=1e-12)


def reference_ssim(image_a: np.ndarray, image_b: np.ndarray) -> float:
    """The protocol's SSIM of two 2-D images written out from its definition, independently of
    scikit-image: MATLAB's ssim.m (Wang et al. 2004) with an 11x11 Gaussian window of sigma
    1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, the mean of the SSIM map."""
    a, b = image_a.astype(np.float64), image_b.astype(np.float64)
    offsets = np.arange(-5, 6, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * 1.5**2))
    kernel /= kernel.sum()

    def filter_valid(image: np.ndarray) -> np.ndarray:
        filtered = correlate1d(correlate1d(image, kernel, axis=0), kernel, axis=1)
        return filtered[5:-5, 5:-5]  # only where the window lies inside the image

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filter_valid(a), filter_valid(b)
    var_a = filter_valid(a * a) - mu_a**2
    var_b = filter_valid(b * b) - mu_b**2
    covariance = filter_valid(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * covariance + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(numerator / denominator))


def test_ssim_matches_the_reference_on_random_images() -> None:
    image_a = random_image((50, 70))
    image_b = add_noise(image_a, 25)
    assert ssim(image_a, image_b) == pytest.approx(reference_ssim(image_a, image_b), abs=1e-10)


def real_images(source: str) -> list[np.ndarray]:
    """skimage's astronaut, or the HR images of a benchmark set in ../shared (skip if absent)."""
    if source == "astronaut":
        return [skimage.data.astronaut()]
    folder = BENCHMARKS / source / "HR"
    if not folder.is_dir():
        pytest.skip(f"no {source} images at {folder}")
    return [read_image(path, keep_gray=True) for path in find_images(folder)]


@pytest.mark.parametrize("source", ["astronaut", "Set5", "Set14"])
def test_ssim_matches_the_reference_on_real_images(source: str) -> None:
    """Per channel and the image-level mean, on Y and RGB, after the x4 border crop, for the
    protocol's bicubic x4 result against its HR image."""
    for hr_image in real_images(source):
        hr_image = modcrop(hr_image, 4)
        sr_image = bicubic_upscale(degrade_image(hr_image, 4), 4)
        sr_shaved, hr_shaved = shave(sr_image, 4), shave(hr_image, 4)
        if hr_image.ndim == 2:  # a gray image is its own Y channel
            expected = reference_ssim(sr_shaved, hr_shaved)
            assert ssim(sr_image, hr_image, 4) == pytest.approx(expected, abs=1e-10)
            continue
        sr_y, hr_y = rgb_to_y(sr_image), rgb_to_y(hr_image)
        expected = reference_ssim(shave(sr_y, 4), shave(hr_y, 4))
        assert ssim(sr_y, hr_y, 4) == pytest.approx(expected, abs=1e-10)
        channels = []
        for channel in range(3):
            channels.append(reference_ssim(sr_shaved[..., channel], hr_shaved[..., channel]))
            measured = ssim(sr_image[..., channel], hr_image[..., channel], 4)
            assert measured == pytest.approx(channels[-1], abs=1e-10)
        assert ssim(sr_image, hr_image, 4) == pytest.approx(np.mean(channels), abs=1e-10)


def test_rgb_to_y_range() -> None:
    white = np.full((2, 2, 3), 255, dtype=np.uint8)
    black = np.zeros((2, 2, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(white), 235.0, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(black), 16.0, atol=1e-12)
    assert rgb_to_y(white).dtype == np.float64
    red = np.array([[[255, 0, 0]]], dtype=np.uint8)
    assert rgb_to_y(red)[0, 0] == pytest.approx(16 + 65.481)


def test_gray_from_rgb() -> None:
    levels = np.arange(256, dtype=np.uint8)
    gray_rgb = np.stack([levels] * 3, axis=-1)
    np.testing.assert_array_equal(gray_from_rgb(gray_rgb), levels.astype(np.float64))
    primaries = np.eye(3, dtype=np.float64)[None] * 100
    np.testing.assert_allclose(gray_from_rgb(primaries)[0], [29.9, 58.7, 11.4], atol=1e-12)


def test_image_metrics_rgb() -> None:
    hr_image = random_image((48, 48, 3))
    sr_image = add_noise(hr_image, 10)
    metrics = image_metrics(sr_image, hr_image, crop_border=4)
    assert set(metrics) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    assert metrics["psnr_y"] == psnr(rgb_to_y(sr_image), rgb_to_y(hr_image), 4)
    assert metrics["psnr_rgb"] == psnr(sr_image, hr_image, 4)
    assert metrics["ssim_rgb"] == ssim(sr_image, hr_image, 4)


def test_image_metrics_gray_uses_values_as_y() -> None:
    hr_image = random_image((48, 48))
    sr_image = add_noise(hr_image, 10)
    metrics = image_metrics(sr_image, hr_image, crop_border=4)
    assert metrics["psnr_y"] == psnr(sr_image, hr_image, 4)
    assert metrics["ssim_y"] == ssim(sr_image, hr_image, 4)
    assert metrics["psnr_rgb"] == metrics["psnr_y"]
    assert metrics["ssim_rgb"] == metrics["ssim_y"]


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        image_metrics(random_image((16, 16, 3)), random_image((16, 20, 3)), crop_border=0)
