"""Tests for PSNR, SSIM and the colour conversions of the SR evaluation protocol."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from srgan.eval.metrics import gray_from_rgb, image_metrics, psnr, rgb_to_y, ssim


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


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    # scikit-image with these settings averages the same 'valid' region as MATLAB's ssim.m.
    image_a = random_image((50, 70)).astype(np.float64)
    image_b = add_noise(image_a, 25).astype(np.float64)
    reference = structural_similarity(
        image_a,
        image_b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(image_a, image_b) == pytest.approx(reference, abs=1e-10)


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
