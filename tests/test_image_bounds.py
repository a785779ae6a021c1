"""Images that cost more than they look: a small file whose header declares millions of pixels
is skipped by training and validation before it is decoded (`data.max_image_pixels`), and
upscale.py says what a large result costs and refuses one over --max-pixels before any work;
of an animated file only the first frame is read, with a warning naming the file."""

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image
from test_upscale import run_upscale_command, save_generator_checkpoint

from srgan.commands import upscale as upscale_command
from srgan.config import ConfigError, DataConfig, load_config
from srgan.data.crops import load_images
from srgan.data.images import MAX_IMAGE_PIXELS, read_image
from srgan.eval.protocol import load_validation_images
from srgan.inference import upscaling
from srgan.inference.cost import describe_cost, header_cost, seconds_per_lr_pixel
from srgan.models.generator import Generator

BOMB_SIDE = 9000  # 81 megapixels: under PIL's own decompression-bomb limit (89 MP)
BOMB_REASON = (
    "9000x9000 is 81.0 megapixels, more than the limit of 16,000,000 (data.max_image_pixels)"
)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb(path: Path, width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> Path:
    """A PNG of a few bytes whose header declares `width` x `height` RGB pixels. Its pixel data
    is cut short, so decoding it fails: a reader that decodes it reports another reason."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(1000))
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels)
    path.write_bytes(png + png_chunk(b"IEND", b""))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """tmp_path/Set: one 48x56 photo and a 9000x9000 bomb."""
    folder = tmp_path / "Set"
    folder.mkdir()
    Image.fromarray(smooth_image(np.random.default_rng(0), 48, 56)).save(folder / "photo.png")
    write_bomb(folder / "bomb.png")
    return folder


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    return save_generator_checkpoint(generator, tmp_path / "tiny.pt")


def test_training_skips_an_image_over_the_bound_from_its_header(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_images(folder, min_size=32)
    assert [image.shape for image in images] == [(48, 56, 3)]
    assert [str(warning.message) for warning in caught] == [
        f"{folder}: skipped 1 file(s): bomb.png: {BOMB_REASON}"
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="no usable training images"):
            load_images(folder, min_size=32, max_pixels=48 * 56 - 1)
    assert str(caught[0].message).endswith(
        "photo.png: 56x48 is 2,688 pixels, more than the limit of 2,687 (data.max_image_pixels)"
    )


def test_validation_skips_an_image_over_the_bound_from_its_header(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_validation_images(folder, scale=4)
    assert [image.name for image in images] == ["photo"]
    assert [str(warning.message) for warning in caught] == [
        f"{folder}: skipped 1 file(s): bomb.png: {BOMB_REASON}"
    ]


def test_the_bound_is_a_config_key_with_a_checked_range() -> None:
    assert DataConfig().max_image_pixels == MAX_IMAGE_PIXELS == 16_000_000
    # Over three times the largest DIV2K image (2040x2040).
    assert MAX_IMAGE_PIXELS > 3 * 2040 * 2040
    config = load_config(None, ["data.max_image_pixels=50000000"], check_paths=False)
    assert config.data.max_image_pixels == 50_000_000
    with pytest.raises(ConfigError) as error:
        load_config(None, ["data.max_image_pixels=9000"], check_paths=False)
    assert str(error.value) == (
        "data.max_image_pixels: must be at least data.crop_size squared (9,216), got 9,000"
    )


def test_upscale_refuses_a_huge_result_before_decoding_and_says_its_cost(
    folder: Path,
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    real_upscale = upscaling.upscale
    monkeypatch.setattr(upscaling, "upscale", lambda *args, **kwargs: pytest.fail("upscaled"))
    out = tmp_path / "out"
    args = ["-i", str(folder), "--checkpoint", str(checkpoint), "-o", str(out)]
    assert run_upscale_command(args, monkeypatch) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(
        f"error: {folder / 'bomb.png'}: 9000x9000 -> 36000x36000, 1296.0 megapixels, 3.9 GB in "
        "memory, about "
    )
    assert line.endswith(
        ": more than --max-pixels 256,000,000; pass --max-pixels 0 (no limit) or a larger N to "
        "upscale it"
    )
    assert captured.out == "" and list(out.iterdir()) == []
    # A result that exists already is not made again (no --overwrite), so it costs nothing.
    (out / "bomb_x4.png").write_bytes(b"made before")
    monkeypatch.setattr(upscaling, "upscale", real_upscale)
    assert run_upscale_command(args, monkeypatch) == 0
    assert sorted(path.name for path in out.iterdir()) == ["bomb_x4.png", "photo_x4.png"]


def test_upscale_prints_the_cost_of_a_large_result_before_it_starts(
    folder: Path,
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(upscale_command, "REPORTED_PIXELS", 1000)
    printed_before = []
    real_upscale = upscaling.upscale

    def upscale_after_reading_output(*args: object, **kwargs: object) -> Image.Image:
        printed_before.append(capsys.readouterr().out)
        return real_upscale(*args, **kwargs)

    monkeypatch.setattr(upscaling, "upscale", upscale_after_reading_output)
    photo = folder / "photo.png"
    out = tmp_path / "out"
    args = [str(photo), "--checkpoint", str(checkpoint), "-o", str(out), "--max-pixels", "1e5"]
    assert run_upscale_command(args, monkeypatch) == 0
    (before,) = printed_before
    cost_lines = [line for line in before.splitlines() if line.startswith(f"{photo}: ")]
    assert cost_lines == [cost_lines[0]]
    assert cost_lines[0].startswith(f"{photo}: 56x48 -> 224x192, 43,008 pixels, 0.1 MB in memory")
    assert sorted(path.name for path in out.iterdir()) == ["photo_x4.png"]
    # Over the limit given: refused; the limit must be a count.
    assert run_upscale_command([*args[:-1], "43007", "--overwrite"], monkeypatch) == 2
    assert "more than --max-pixels 43,007;" in capsys.readouterr().err
    assert run_upscale_command([*args[:-1], "-1"], monkeypatch) == 2
    assert capsys.readouterr().err == "error: --max-pixels must be >= 0 (0: no limit), not -1\n"


def test_upscale_help_documents_the_bound(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        upscale_command.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--max-pixels N refuse, before any work, an image whose result" in help_text
    assert "0: no limit (default: 256,000,000, a 16-megapixel photo at x4" in help_text


def test_cost_counts_modes_resizes_and_tiling_context(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=1, num_channels=4).eval()
    Image.new("RGBA", (40, 30)).save(tmp_path / "rgba.png")
    cost = header_cost(tmp_path / "rgba.png", generator, outscale=4, tile=0, overlap=5)
    assert (cost.input_size, cost.output_size) == ((40, 30), (160, 120))
    assert (cost.largest_pixels, cost.image_bytes, cost.lr_pixels_run) == (19200, 76800, 1200)
    # x2 from the x4 model: the model's output and the resized one are held together.
    resized = header_cost(tmp_path / "rgba.png", generator, outscale=2, tile=0, overlap=5)
    assert (resized.output_size, resized.largest_pixels) == ((80, 60), 19200)
    assert resized.image_bytes == 4 * (19200 + 80 * 60)
    # Tiles of 20 with 5 px of context: rows 0-20 and 10-30, columns 0-25 and 15-40.
    tiled = header_cost(tmp_path / "rgba.png", generator, outscale=4, tile=20, overlap=5)
    assert tiled.lr_pixels_run == (20 + 20) * (25 + 25)
    assert describe_cost(tiled, seconds_per_pixel=0.09).endswith(", about 3 min")
    Image.new("I;16", (10, 10)).save(tmp_path / "deep.png")
    deep = header_cost(tmp_path / "deep.png", generator, outscale=4, tile=0, overlap=5)
    assert deep.image_bytes == 2 * 40 * 40
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert header_cost(tmp_path / "broken.png", generator, 4, tile=0, overlap=5) is None
    assert 0 < seconds_per_lr_pixel(generator, "fp32") < 1


def write_animation(path: Path) -> Path:
    frames = [Image.new("RGB", (8, 6), (200, 10 * index, 30)) for index in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


@pytest.mark.parametrize("extension", ["gif", "webp"])
def test_an_animation_is_read_as_its_first_frame_with_a_warning(
    tmp_path: Path, extension: str
) -> None:
    path = write_animation(tmp_path / f"moving.{extension}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = read_image(path)
    assert [str(warning.message) for warning in caught] == [
        f"{path} holds 3 frames (an animation or several pages): only the first is used"
    ]
    assert abs(image[0, 0].astype(int) - (200, 0, 30)).max() <= 3  # GIF's palette rounds
    still = tmp_path / "still.png"
    Image.new("RGB", (8, 6)).save(still)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_image(still)
    assert caught == []


def test_training_and_upscale_warn_once_per_animated_file(
    tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "Set"
    folder.mkdir()
    path = write_animation(folder / "moving.gif")
    warning = f"{path} holds 3 frames (an animation or several pages): only the first is used"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [image.shape for image in load_images(folder, min_size=6)] == [(6, 8, 3)]
    assert [str(caught_warning.message) for caught_warning in caught] == [warning]
    out = tmp_path / "out"
    args = [str(path), "--checkpoint", str(checkpoint), "-o", str(out)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_upscale_command(args, monkeypatch) == 0
    assert [str(caught_warning.message) for caught_warning in caught] == [warning]
    with Image.open(out / "moving_x4.png") as written:
        assert written.size == (32, 24)
