"""Tests for the MATLAB-compatible bicubic imresize (numpy and torch)."""

import numpy as np
import pytest
import torch

from srgan.data.imresize import imresize, imresize_torch, modcrop


def smooth_image(height: int, width: int) -> np.ndarray:
    """A smooth 2-D function on pixel centres, well inside the band that bicubic reproduces."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    return 0.5 + 0.25 * np.sin(2 * np.pi * y / 64) * np.cos(2 * np.pi * x / 80)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 4])
def test_constant_image_stays_constant(scale: float) -> None:
    uint8_image = np.full((37, 53, 3), 77, dtype=np.uint8)
    resized = imresize(uint8_image, scale)
    assert resized.dtype == np.uint8
    assert np.all(resized == 77)

    float_image = np.full((37, 53), 0.3, dtype=np.float32)
    resized = imresize(float_image, scale)
    assert resized.dtype == np.float32
    np.testing.assert_allclose(resized, 0.3, atol=1e-6)


def test_down_then_up_recovers_smooth_image() -> None:
    image = smooth_image(128, 128)
    restored = imresize(imresize(image, 0.25), 4)
    assert restored.shape == image.shape
    # Away from the borders the correct kernel is accurate to ~3e-4; a linear kernel, the
    # a = -0.75 cubic or a half-pixel shift in the coordinate mapping all give errors > 5e-3.
    interior = np.abs(restored - image)[8:-8, 8:-8]
    assert interior.max() < 1e-3


def test_output_size_is_ceil_of_scaled_size() -> None:
    image = np.zeros((101, 37, 3), dtype=np.uint8)
    assert imresize(image, 0.25).shape == (26, 10, 3)
    assert imresize(image, 1 / 3).shape == (34, 13, 3)
    assert imresize(image[:, :, 0], 4).shape == (404, 148)
    assert imresize_torch(torch.zeros(2, 101, 37), 1 / 3).shape == (2, 34, 13)


def test_known_values_of_matlab_half_scale() -> None:
    # MATLAB imresize(1:8, 0.5) with antialiasing, derived by hand from the definition:
    # the kernel is 0.5*cubic(0.5*d), output 1 sits at input coordinate u = 2*1 - 0.5 = 1.5 and
    # reads inputs -2..5 at distances -3.5..3.5. cubic(0.25, 0.75, 1.25, 1.75) = 0.8671875,
    # 0.2265625, -0.0703125, -0.0234375, which sum to 1 per side, so after normalising the
    # weights are [-0.01171875, -0.03515625, 0.11328125, 0.43359375] mirrored. Indices below 1
    # fold symmetrically (-2, -1, 0 -> 3, 2, 1), giving
    # -0.01171875*(3+5) - 0.03515625*(2+4) + 0.11328125*(1+3) + 0.43359375*(1+2) = 1.44921875.
    # Output 2 (u = 3.5) only folds input 0 -> 1: 3.5 - 0.01171875 = 3.48828125; outputs 3 and 4
    # follow by symmetry.
    expected = np.array([1.44921875, 3.48828125, 5.51171875, 7.55078125])
    row = np.arange(1, 9, dtype=np.float64)[None, :]
    np.testing.assert_allclose(imresize(row, 0.5)[0], expected, atol=1e-12)

    # uint8 rounds each pass half away from zero: 14.49, 34.88, 55.12, 75.51 -> 14, 35, 55, 76.
    uint8_rows = np.tile(np.arange(10, 90, 10, dtype=np.uint8), (2, 1))
    np.testing.assert_array_equal(imresize(uint8_rows, 0.5), [[14, 35, 55, 76]])


def test_antialiasing_removes_high_frequencies() -> None:
    noise = np.random.default_rng(0).random((64, 64))
    with_antialiasing = imresize(noise, 0.25, antialiasing=True)
    without_antialiasing = imresize(noise, 0.25, antialiasing=False)
    # The widened kernel averages ~16x16 pixels; the plain one only ~4x4.
    assert with_antialiasing.std() < 0.35 * without_antialiasing.std()


def test_uint8_matches_float_up_to_rounding() -> None:
    # A smooth image never overshoots 0..255, so only the rounding after each pass differs.
    image = np.round(255 * smooth_image(40, 36)).astype(np.uint8)
    for scale in (0.25, 4):
        from_uint8 = imresize(image, scale).astype(np.float64)
        from_float = imresize(image.astype(np.float64), scale)
        # 0.5 from the final rounding plus the first pass's <= 0.5 spread by the kernel weights.
        assert np.abs(from_uint8 - from_float).max() <= 1.2


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 2])
def test_torch_matches_numpy(scale: float) -> None:
    image = np.random.default_rng(2).random((45, 61, 3))
    expected = imresize(image, scale)
    tensor = torch.from_numpy(image).permute(2, 0, 1)
    result = imresize_torch(tensor, scale).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_torch_batch_matches_per_image_numpy() -> None:
    batch = torch.rand(4, 3, 40, 52, generator=torch.Generator().manual_seed(3))
    result = imresize_torch(batch, 0.25)
    assert result.shape == (4, 3, 10, 13)
    assert result.dtype == torch.float32
    for index in range(batch.shape[0]):
        image = batch[index].permute(1, 2, 0).double().numpy()
        expected = imresize(image, 0.25)
        np.testing.assert_allclose(result[index].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_rejects_unsupported_types() -> None:
    with pytest.raises(TypeError):
        imresize(np.zeros((8, 8), dtype=np.int32), 0.5)
    with pytest.raises(TypeError):
        imresize_torch(torch.zeros(8, 8, dtype=torch.uint8), 0.5)


def test_modcrop() -> None:
    image = np.arange(10 * 7 * 3).reshape(10, 7, 3)
    cropped = modcrop(image, 4)
    assert cropped.shape == (8, 4, 3)
    np.testing.assert_array_equal(cropped, image[:8, :4])
