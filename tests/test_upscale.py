"""Upscaling API and scripts/upscale.py: exact tiling, image modes, files, precision fallback,
output formats and scales, shipped-model lookup."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import describe, run_script, smooth_image
from PIL import Image

from srgan.checkpoint import save_checkpoint
from srgan.commands.upscale import main as upscale_main
from srgan.inference import shipped_models, upscaling
from srgan.inference.export import export_safetensors
from srgan.inference.output_paths import plan_outputs
from srgan.inference.tiles import receptive_radius, upscale_tensor
from srgan.inference.upscaling import convert_for_format, upscale, upscale_files
from srgan.inference.weights import load_generator
from srgan.models.generator import Generator

SCALE = 4


def save_generator_checkpoint(generator: Generator, path: Path) -> Path:
    """A checkpoint with the layout the training stages write, for a random generator."""
    model = {
        "scale": generator.scale,
        "num_blocks": len(generator.blocks),
        "num_channels": generator.head[0].out_channels,
    }
    state = {
        "kind": "srresnet",
        "stage": "pretrain",
        "step": 0,
        "epoch": 0,
        "config": {},
        "model": model,
        "degradation": {"kind": "bicubic", "gaussian_sigma": 1.5},
        "generator": generator.state_dict(),
        "best_psnr_y": 0.0,
        "metrics": {},
    }
    save_checkpoint(state, path)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=16)
    return save_generator_checkpoint(generator, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def tiny_generator(tiny_checkpoint: Path) -> Generator:
    return load_generator(tiny_checkpoint)


def rgb_image(height: int, width: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(smooth_image(np.random.default_rng(seed), height, width))


@pytest.mark.parametrize("num_blocks", [0, 2])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_receptive_radius_matches_autograd(num_blocks: int, scale: int) -> None:
    generator = Generator(scale=scale, num_blocks=num_blocks, num_channels=4).double().eval()
    size = 2 * receptive_radius(generator) + 9
    lr_image = torch.rand(1, 3, size, size, dtype=torch.double, requires_grad=True)
    sr_image = generator(lr_image)
    centre, reach = size // 2, 0
    for offset in range(scale):  # every output row and column of the centre LR pixel
        row = sr_image[0, :, centre * scale + offset, centre * scale + offset].sum()
        (gradient,) = torch.autograd.grad(row, lr_image, retain_graph=True)
        seen = gradient[0].abs().sum(dim=(0, 2)).nonzero().flatten()
        reach = max(reach, centre - int(seen.min()), int(seen.max()) - centre)
    assert reach == receptive_radius(generator)


def test_tiled_matches_untiled_tiny_network(tiny_generator: Generator) -> None:
    image = rgb_image(200, 300)
    untiled = np.asarray(upscale(tiny_generator, image, tile=0), dtype=np.int16)
    tiled = np.asarray(upscale(tiny_generator, image, tile=48), dtype=np.int16)
    assert tiled.shape == (200 * SCALE, 300 * SCALE, 3)
    assert np.abs(tiled - untiled).max() <= 1
    # The float results agree far more closely; too little overlap visibly does not.
    lr_image = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    reference = upscale_tensor(tiny_generator, lr_image)
    assert (upscale_tensor(tiny_generator, lr_image, tile=48) - reference).abs().max() < 1e-4
    seams = upscale_tensor(tiny_generator, lr_image, tile=48, tile_overlap=2)
    assert (seams - reference).abs().max() > 1 / 255


def test_default_overlap_is_exact_for_16_blocks() -> None:
    # The receptive field grows with depth, not width: 8 channels keep the 16-block test fast.
    torch.manual_seed(1)
    generator = Generator(scale=SCALE, num_blocks=16, num_channels=8).eval()
    lr_image = torch.rand(1, 3, 100, 90)
    reference = upscale_tensor(generator, lr_image)
    assert (upscale_tensor(generator, lr_image, tile=32) - reference).abs().max() < 1e-4
    assert (
        upscale_tensor(generator, lr_image, tile=32, tile_overlap=4) - reference
    ).abs().max() > 1 / 255


def test_rgba_keeps_bicubic_alpha(tiny_generator: Generator) -> None:
    rgb = np.asarray(rgb_image(20, 30))
    alpha = np.tile(np.linspace(0, 255, 30, dtype=np.uint8), (20, 1))
    image = Image.fromarray(np.dstack([rgb, alpha]))
    result = upscale(tiny_generator, image)
    assert result.mode == "RGBA" and result.size == (30 * SCALE, 20 * SCALE)
    expected_alpha = Image.fromarray(alpha).resize(result.size, Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(np.asarray(result.getchannel("A")), np.asarray(expected_alpha))
    np.testing.assert_array_equal(
        np.asarray(result.convert("RGB")), np.asarray(upscale(tiny_generator, image.convert("RGB")))
    )


def test_grayscale_stays_grayscale(tiny_generator: Generator) -> None:
    gray = rgb_image(20, 30).convert("L")
    result = upscale(tiny_generator, gray)
    assert result.mode == "L" and result.size == (30 * SCALE, 20 * SCALE)
    # It is the luma of the RGB result for the same image as three equal channels.
    luma = upscale(tiny_generator, gray.convert("RGB")).convert("L")
    assert np.abs(np.asarray(result, np.int16) - np.asarray(luma)).max() <= 1
    with_alpha = upscale(tiny_generator, Image.merge("LA", (gray, gray)))
    assert with_alpha.mode == "LA" and with_alpha.size == result.size


def test_sixteen_bit_stays_sixteen_bit(tiny_generator: Generator, tmp_path: Path) -> None:
    values = np.asarray(rgb_image(20, 30).convert("L"), np.uint16) * 257 + 100
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        result = upscale(tiny_generator, image)
    result.save(tmp_path / "deep_x4.png")
    with Image.open(tmp_path / "deep_x4.png") as written:
        assert written.mode == "I;16" and written.size == (30 * SCALE, 20 * SCALE)
        levels = np.asarray(written)
    # Processed in float: values off the 257-step grid of 8-bit levels appear.
    assert levels.dtype == np.uint16 and np.any(levels % 257 != 0) and levels.max() > 255


def test_palette_and_exif_orientation(tiny_generator: Generator) -> None:
    palette = rgb_image(20, 30).quantize(16)
    assert upscale(tiny_generator, palette).mode == "RGB"
    palette.info["transparency"] = 0
    assert upscale(tiny_generator, palette).mode == "RGBA"
    rotated = rgb_image(20, 30)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rotated.info["exif"] = exif.tobytes()
    assert upscale(tiny_generator, rotated).size == (20 * SCALE, 30 * SCALE)


def test_non_finite_tiles_are_redone_in_fp32(
    tiny_generator: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bf16 counts as native here so that the test runs on every CPU (emulated, it is only slow).
    monkeypatch.setattr("srgan.machine.bf16_native", lambda device: True)
    lr_image = torch.rand(1, 3, 40, 40)
    reference = upscale_tensor(tiny_generator, lr_image, tile=20)

    def poison(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        # Like fp16 overflow: NaN, but only when running in reduced precision.
        return output * float("nan") if torch.is_autocast_enabled("cpu") else output

    hook = tiny_generator.register_forward_hook(poison)
    try:
        with pytest.warns(UserWarning, match="4 of 4 tiles gave non-finite bf16"):
            result = upscale_tensor(tiny_generator, lr_image, tile=20, precision="bf16")
    finally:
        hook.remove()
    assert torch.equal(result, reference)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        upscale_tensor(tiny_generator, lr_image, precision="fp16")
    hook = tiny_generator.register_forward_hook(lambda module, inputs, output: output / 0 - 1)
    try:
        with pytest.raises(ValueError, match="fp32 output is not finite"):
            upscale(tiny_generator, rgb_image(20, 20))
    finally:
        hook.remove()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reduced_precision_on_cuda(tiny_checkpoint: Path) -> None:
    generator = load_generator(tiny_checkpoint, "cuda")
    lr_image = torch.rand(1, 3, 64, 80, device="cuda")
    reference = upscale_tensor(generator, lr_image, tile=32)
    for precision in ("fp16", "bf16"):
        result = upscale_tensor(generator, lr_image, tile=32, precision=precision)
        assert torch.isfinite(result).all()
        assert (result - reference).abs().max() < 0.01, precision


def test_plan_outputs_never_overwrites_inputs(tmp_path: Path) -> None:
    for name in ("a.png", "b.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    pairs = plan_outputs([tmp_path], tmp_path / "out", "_x4")
    assert pairs == [
        (tmp_path / "a.png", tmp_path / "out" / "a_x4.png"),
        (tmp_path / "b.jpg", tmp_path / "out" / "b_x4.png"),
    ]
    with pytest.raises(ValueError, match="would overwrite the input"):
        plan_outputs([tmp_path / "a.png"], tmp_path, "")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(ValueError, match="would both be written"):
        plan_outputs([tmp_path], tmp_path / "out", "_x4")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        plan_outputs([tmp_path / "missing.png"], tmp_path, "_x4")


def test_upscale_files_skips_corrupt_and_existing(
    tiny_generator: Generator, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rgb_image(16, 24).save(tmp_path / "good.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rgb_image(12, 12).save(tmp_path / "kept.png")
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "kept_x4.png").write_bytes(b"earlier result")
    pairs = plan_outputs([tmp_path], output_dir, "_x4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = upscale_files(tiny_generator, pairs, progress=False)
    assert summary.failed == [tmp_path / "corrupt.png"]
    assert "corrupt.png" in capsys.readouterr().err
    assert summary.skipped == [tmp_path / "kept.png"]
    assert (output_dir / "kept_x4.png").read_bytes() == b"earlier result"
    with Image.open(output_dir / "good_x4.png") as written:
        assert written.size == (24 * SCALE, 16 * SCALE)
    assert summary.output_pixels == 24 * 16 * SCALE**2
    upscale_files(tiny_generator, pairs, overwrite=True, progress=False)
    with Image.open(output_dir / "kept_x4.png") as written:
        assert written.size == (12 * SCALE, 12 * SCALE)
    assert sorted(path.name for path in output_dir.iterdir()) == ["good_x4.png", "kept_x4.png"]


def test_upscale_script_exit_codes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rgb_image(16, 24).save(inputs / "photo.jpg")
    (inputs / "broken.png").write_bytes(b"not an image")
    args = ["--checkpoint", str(tiny_checkpoint), "-i", str(inputs), "-o"]
    result = run_script("upscale.py", [*args, str(tmp_path / "out"), "--quiet"], cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert "broken.png" in result.stderr
    assert "wrote 1 image(s)" in result.stdout.splitlines()[-1]
    with Image.open(tmp_path / "out" / "photo_x4.png") as written:
        assert written.size == (24 * SCALE, 16 * SCALE)
    in_place = run_script("upscale.py", [*args, str(inputs), "--suffix", ""], cwd=tmp_path)
    assert in_place.returncode == 2, describe(in_place)
    assert in_place.stderr.strip().splitlines() == [
        f"error: {inputs / 'broken.png'} would overwrite the input {inputs / 'broken.png'}; "
        "choose another --output or --suffix"
    ]


@pytest.mark.parametrize(("extension", "outscale"), [("jpg", 2), ("webp", 3.5), ("png", 4)])
def test_formats_and_outscale(
    tiny_generator: Generator, tmp_path: Path, extension: str, outscale: float
) -> None:
    image = rgb_image(13, 10)  # odd sizes: 3.5 times them needs rounding
    image.save(tmp_path / "photo.png")
    pairs = plan_outputs([tmp_path / "photo.png"], tmp_path / "out", "", extension)
    upscale_files(tiny_generator, pairs, outscale=outscale, progress=False)
    with Image.open(tmp_path / "out" / f"photo.{extension}") as written:
        assert written.format == upscaling.OUTPUT_FORMATS[extension]
        assert written.size == (round(10 * outscale), round(13 * outscale))
    # The model's x4 output, then Lanczos: the same as resizing upscale()'s result.
    resized = upscale(tiny_generator, image).resize(written.size, Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(upscale(tiny_generator, image, outscale=outscale)), resized)


def test_sixteen_bit_and_alpha_as_eight_bit_formats(
    tiny_generator: Generator, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    deep = Image.fromarray(np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16))
    top_bits, flattened = convert_for_format(deep, "jpg")
    assert np.asarray(top_bits).tolist() == [[0, 0, 1, 128, 255]] and not flattened
    gray_alpha = Image.merge("LA", (Image.new("L", (2, 1), 0), Image.new("L", (2, 1), 0)))
    on_white, flattened = convert_for_format(gray_alpha, "jpg")
    assert on_white.mode == "L" and np.asarray(on_white).min() == 255 and flattened

    values = np.asarray(rgb_image(20, 30).convert("L"), np.uint16) * 257 + 100
    Image.fromarray(values).save(tmp_path / "deep.png")
    rgba = np.dstack([np.asarray(rgb_image(20, 30)) // 4, np.full((20, 30), 255, np.uint8)])
    rgba[:, :15, 3] = 0  # the left half is transparent (over dark colours)
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    inputs = [tmp_path / "deep.png", tmp_path / "clear.png"]
    for extension in ("png", "jpg", "webp"):
        pairs = plan_outputs(inputs, tmp_path, "_x4", extension)
        upscale_files(tiny_generator, pairs, quality=100, progress=False)
    assert capsys.readouterr().err.count("clear.png has transparency") == 1  # jpg only
    with Image.open(tmp_path / "deep_x4.png") as png:
        expected = np.asarray(png).astype(np.int32) >> 8  # the top 8 bits, not clipped to 255
    for extension in ("jpg", "webp"):
        with Image.open(tmp_path / f"deep_x4.{extension}") as written:
            assert np.abs(np.asarray(written.convert("L")) - expected).mean() < 1, extension
    with Image.open(tmp_path / "clear_x4.jpg") as jpg:
        assert jpg.mode == "RGB" and np.asarray(jpg)[:, :50].min() >= 250  # white, not dark
    with Image.open(tmp_path / "clear_x4.webp") as webp:
        assert webp.mode == "RGBA" and np.asarray(webp)[:, :50, 3].max() == 0


def test_non_utf8_file_names_do_not_stop_the_batch(
    tiny_generator: Generator, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    name = os.fsdecode(b"caf\xe9")  # Latin-1, not UTF-8: Python keeps the byte as a surrogate
    try:
        (tmp_path / f"{name} broken.png").write_bytes(b"not an image")
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    rgb_image(12, 12).save(tmp_path / f"{name}.png")
    rgb_image(12, 12).save(tmp_path / f"{name} done.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f"{name} done.png").write_bytes(b"earlier result")
    pairs = plan_outputs([tmp_path], tmp_path / "out", "")
    summary = upscale_files(tiny_generator, pairs, progress=False)
    assert summary.written == [tmp_path / "out" / f"{name}.png"]
    output = capsys.readouterr()
    assert "caf\\xe9 broken.png" in output.err and "caf\\xe9 done.png" in output.out


def run_upscale_command(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """scripts/upscale.py in this process (for monkeypatching); returns the exit code."""
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # run_main sets it
    with pytest.raises(SystemExit) as exit_info:
        upscale_main([*args, "--quiet"])
    return exit_info.value.code


def test_shipped_model_by_default_and_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    torch.manual_seed(0)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=8)
    export_safetensors(generator, shipped / "srresnet_x4_291.safetensors")
    monkeypatch.setattr(shipped_models, "WEIGHTS_DIRS", (shipped,))
    monkeypatch.chdir(tmp_path)
    rgb_image(16, 24).save("photo.jpg")
    assert run_upscale_command(["photo.jpg"], monkeypatch) == 0
    assert "shipped model srresnet_x4_291" in capsys.readouterr().out
    with Image.open(tmp_path / "results" / "upscaled" / "photo_x4.png") as written:
        assert written.size == (24 * SCALE, 16 * SCALE)
    args = ["-i", "photo.jpg", "-o", "out", "--model", "srresnet_x4_291", "--ext", "jpg"]
    assert run_upscale_command([*args, "--outscale", "2"], monkeypatch) == 0
    with Image.open(tmp_path / "out" / "photo_x2.jpg") as written:
        assert written.size == (48, 32)

    monkeypatch.setattr(shipped_models, "WEIGHTS_DIRS", (tmp_path / "empty",))
    capsys.readouterr()
    assert run_upscale_command(["photo.jpg"], monkeypatch) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: the shipped model srresnet_x4_291 is missing")
    assert str(tmp_path / "empty" / "srresnet_x4_291.safetensors") in line
    assert "--checkpoint" in line
