"""Tests for folder evaluation, degradations, comparison pictures and the benchmark numbers."""

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.data.degradation import degrade_image
from srgan.data.images import list_images, read_image
from srgan.data.imresize import modcrop
from srgan.eval.panels import PANEL_GAP, comparison_image, texture_window
from srgan.eval.protocol import (
    bicubic_upscale,
    dataset_name,
    evaluate_folder,
    nearest_upscale,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared/benchmarks"


def blocky_image(height: int, width: int, channels: int, scale: int, seed: int) -> np.ndarray:
    """Random image made of constant scale x scale blocks, so nearest upscaling restores it."""
    shape = (height // scale, width // scale) + ((channels,) if channels > 1 else ())
    blocks = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return nearest_upscale(blocks, scale)


def test_list_images_and_dataset_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=str(tmp_path)):
        list_images(tmp_path)
    for name in ("b.PNG", "a.jpg", "c.bmp"):
        (tmp_path / name).touch()
    assert [path.name for path in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.bmp"]

    assert dataset_name(Path("/data/Set5/HR")) == "Set5"
    assert dataset_name(Path("/data/Set14/hr")) == "Set14"
    assert dataset_name(Path("/data/Urban100")) == "Urban100"


def test_load_image_modes(tmp_path: Path) -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png", keep_gray=True).shape == (8, 8)

    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "gray16.png", keep_gray=True), gray)

    rgba = np.full((8, 8, 4), 200, dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    loaded = read_image(tmp_path / "rgba.png", keep_gray=True)
    assert loaded.shape == (8, 8, 3) and loaded.dtype == np.uint8

    # Training reads gray as three equal channels; transparent gray becomes white.
    rgb_copy = read_image(tmp_path / "gray.png")
    assert rgb_copy.shape == (8, 8, 3) and (rgb_copy == gray[..., None]).all()
    gray_alpha = np.stack([gray, np.where(gray < 32, 0, 255).astype(np.uint8)], axis=-1)
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "gray_alpha.png")
    flat = read_image(tmp_path / "gray_alpha.png", keep_gray=True)
    np.testing.assert_array_equal(flat, np.where(gray < 32, 255, gray))


def test_degrade_shapes_and_constant_images() -> None:
    for shape in [(48, 40), (48, 40, 3)]:
        hr_image = np.full(shape, 123, dtype=np.uint8)
        for degradation in ("bicubic", "gaussian"):
            lr_image = degrade_image(hr_image, 4, degradation, gaussian_sigma=1.5)
            assert lr_image.shape == (12, 10) + shape[2:]
            assert lr_image.dtype == np.uint8
            assert np.all(lr_image == 123)
    with pytest.raises(ValueError):
        degrade_image(np.zeros((50, 40), dtype=np.uint8), 4, "gaussian", 1.5)
    with pytest.raises(ValueError):
        degrade_image(np.zeros((48, 40), dtype=np.uint8), 4, "box", 1.5)


def test_gaussian_degrade_samples_block_centres() -> None:
    # With a negligible blur the Gaussian degradation is plain sampling at offset scale // 2.
    hr_image = np.random.default_rng(0).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    lr_image = degrade_image(hr_image, 4, "gaussian", gaussian_sigma=0.05)
    np.testing.assert_array_equal(lr_image, hr_image[2::4, 2::4])


def test_upscalers() -> None:
    lr_image = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    np.testing.assert_array_equal(nearest_upscale(lr_image, 2)[:2, :2], 10)
    assert nearest_upscale(lr_image, 3).shape == (6, 6)
    upscaled = bicubic_upscale(np.full((5, 6, 3), 9, dtype=np.uint8), 4)
    assert upscaled.shape == (20, 24, 3) and upscaled.dtype == np.uint8
    assert np.all(upscaled == 9)


def test_evaluate_folder_identity_closure(tmp_path: Path) -> None:
    hr_image = np.random.default_rng(0).integers(0, 256, (50, 46, 3), dtype=np.uint8)
    Image.fromarray(hr_image).save(tmp_path / "image.png")
    cropped = modcrop(hr_image, 4)

    def upscale(lr_image: np.ndarray) -> np.ndarray:
        assert lr_image.shape == (12, 11, 3)
        return cropped

    means, rows = evaluate_folder(upscale, list_images(tmp_path), 4, progress=False)
    assert means["num_images"] == 1
    assert means["psnr_y"] == math.inf and means["psnr_rgb"] == math.inf
    assert means["ssim_y"] == pytest.approx(1.0) and means["ssim_rgb"] == pytest.approx(1.0)
    assert rows[0]["image"] == "image.png"


def test_evaluate_folder_with_lr_files_gray_and_unreadable(tmp_path: Path) -> None:
    hr_folder, lr_folder = tmp_path / "HR", tmp_path / "LR"
    hr_folder.mkdir()
    lr_folder.mkdir()
    # Extra noisy rows/columns that modcrop must remove, around blocky content.
    for name, channels in (("a_rgb.png", 3), ("b_gray.png", 1)):
        hr_image = np.random.default_rng(1).integers(0, 256, (50, 46, 3), dtype=np.uint8)
        hr_image = hr_image if channels == 3 else hr_image[..., 0]
        hr_image[:48, :44] = blocky_image(48, 44, channels, 4, seed=channels)
        Image.fromarray(hr_image).save(hr_folder / name)
        Image.fromarray(hr_image[:48:4, :44:4]).save(lr_folder / name)
    (hr_folder / "c_broken.png").write_bytes(b"not a png")
    (lr_folder / "c_broken.png").write_bytes(b"not a png")

    seen = {}

    def record(name: str, lr_image: np.ndarray, sr_image: np.ndarray, hr_image: np.ndarray) -> None:
        seen[name] = (lr_image.shape, sr_image.shape, hr_image.shape)

    with pytest.warns(UserWarning, match="c_broken.png"):
        means, rows = evaluate_folder(
            lambda lr_image: nearest_upscale(lr_image, 4),
            list_images(hr_folder),
            4,
            lr_paths=list_images(lr_folder),
            progress=False,
            on_image=record,
        )
    assert means["num_images"] == 2
    assert [row["image"] for row in rows] == ["a_rgb.png", "b_gray.png"]
    assert all(row["psnr_y"] == math.inf and row["psnr_rgb"] == math.inf for row in rows)
    assert means["ssim_y"] == pytest.approx(1.0)
    assert seen["b_gray.png"] == ((12, 11), (48, 44), (48, 44))
    assert seen["a_rgb.png"] == ((12, 11, 3), (48, 44, 3), (48, 44, 3))


def test_evaluate_folder_rejects_wrong_lr_size(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((48, 48, 3), dtype=np.uint8)).save(tmp_path / "hr.png")
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(tmp_path / "lr_small.png")
    with pytest.raises(ValueError, match="lr_small.png"):
        evaluate_folder(
            lambda lr_image: nearest_upscale(lr_image, 4),
            [tmp_path / "hr.png"],
            4,
            lr_paths=[tmp_path / "lr_small.png"],
            progress=False,
        )


def test_texture_window_finds_textured_patch() -> None:
    hr_image = np.full((200, 240, 3), 128, dtype=np.uint8)
    patch = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    hr_image[100:164, 37:101] = patch
    top, left, height, width = texture_window(hr_image, 64)
    assert (height, width) == (64, 64)
    assert abs(top - 100) <= 1 and abs(left - 37) <= 1


def test_comparison_image_layout_and_same_region() -> None:
    rng = np.random.default_rng(0)
    hr_image = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    panels = [
        ("Bicubic", rng.integers(0, 256, hr_image.shape, dtype=np.uint8)),
        ("SRGAN", rng.integers(0, 256, hr_image.shape[:2], dtype=np.uint8)),  # gray panel
        ("HR", hr_image),
    ]
    crop_size, zoom = 64, 2
    picture = comparison_image(hr_image, panels, crop_size=crop_size, zoom=zoom)
    panel_size = crop_size * zoom
    assert picture.width == 3 * panel_size + 2 * PANEL_GAP
    assert picture.height > panel_size  # room for the captions

    pixels = np.asarray(picture)
    top, left, _, _ = texture_window(hr_image, crop_size)
    for index, (_, image) in enumerate(panels):
        crop = image[top : top + crop_size, left : left + crop_size]
        crop = np.stack([crop] * 3, axis=-1) if crop.ndim == 2 else crop
        expected = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)
        x = index * (panel_size + PANEL_GAP)
        np.testing.assert_array_equal(pixels[:panel_size, x : x + panel_size], expected)
    # Captions are drawn in black below the panels.
    assert pixels[panel_size:].min() == 0


def test_comparison_image_smaller_than_crop() -> None:
    hr_image = np.random.default_rng(0).integers(0, 256, (50, 40), dtype=np.uint8)
    picture = comparison_image(hr_image, [("A", hr_image), ("B", hr_image)], crop_size=64, zoom=3)
    assert picture.width == 2 * 40 * 3 + PANEL_GAP
    np.testing.assert_array_equal(np.asarray(picture)[: 50 * 3 : 3, : 40 * 3 : 3, 0], hr_image)


# Published bicubic x4 means (psnr_y, ssim_y) and the float-Y reference values of the README in
# shared/benchmarks (MATLAB imresize emulation, unrounded Y, as BasicSR computes it).
PUBLISHED = {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)}
FLOAT_Y_MEANS = {"Set5": (28.4290, 0.8111), "Set14": (25.9940, 0.7029)}
FLOAT_Y_IMAGES = {"baby.png": (31.7842, 0.8575), "bridge.png": (23.1451, 0.5403)}


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason=f"no benchmark images at {BENCHMARKS}")
def test_bicubic_x4_reproduces_published_benchmarks() -> None:
    results = {}
    for name in ("Set5", "Set14"):
        hr_paths = list_images(BENCHMARKS / name / "HR")
        results[name] = evaluate_folder(
            lambda lr_image: bicubic_upscale(lr_image, 4), hr_paths, 4, progress=False
        )

    for name, (means, rows) in results.items():
        published_psnr, published_ssim = PUBLISHED[name]
        assert means["psnr_y"] == pytest.approx(published_psnr, abs=0.01)
        assert means["ssim_y"] == pytest.approx(published_ssim, abs=0.001)
        reference_psnr, reference_ssim = FLOAT_Y_MEANS[name]
        assert means["psnr_y"] == pytest.approx(reference_psnr, abs=1e-3)
        assert means["ssim_y"] == pytest.approx(reference_ssim, abs=1e-4)
        for row in rows:
            if row["image"] in FLOAT_Y_IMAGES:
                reference_psnr, reference_ssim = FLOAT_Y_IMAGES[row["image"]]
                assert row["psnr_y"] == pytest.approx(reference_psnr, abs=1e-3)
                assert row["ssim_y"] == pytest.approx(reference_ssim, abs=1e-4)
