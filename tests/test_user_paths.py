"""What users pass that the code must not trust: an output suffix or folder that leaves or
loops, weights of a dtype no generator has, an export that fails its check, and a shipped
model's name where a path is expected."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_upscale import rgb_image, run_upscale_command, save_generator_checkpoint

import srgan
from srgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srgan.commands import export as export_command
from srgan.inference import shipped_models
from srgan.inference.export import export_safetensors
from srgan.inference.output_paths import plan_outputs
from srgan.inference.weights import load_generator, read_weights, safetensors_metadata
from srgan.models.generator import Generator


@pytest.fixture
def photo_and_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    checkpoint = save_generator_checkpoint(generator, tmp_path / "tiny.pt")
    rgb_image(12, 16).save(tmp_path / "photo.png")
    return tmp_path / "photo.png", checkpoint


def test_a_suffix_that_leaves_the_output_folder_is_refused(
    photo_and_checkpoint: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    photo, checkpoint = photo_and_checkpoint
    out = tmp_path / "a" / "out"
    args = [str(photo), "--checkpoint", str(checkpoint), "-o", str(out)]
    assert run_upscale_command([*args, "--suffix", "/../../escaped"], monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"error: --suffix '/../../escaped' would write outside --output {out}: a suffix is part "
        "of a file name, without '/'\n"
    )
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["photo.png", "tiny.pt"]
    with pytest.raises(ValueError, match="would write outside --output"):
        plan_outputs([photo], out, "_x4/../../../escaped")
    assert plan_outputs([photo], out, "_x4..") == [(photo, out / "photo_x4...png")]


def test_an_output_folder_that_is_a_symlink_loop_is_one_line(
    photo_and_checkpoint: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    photo, checkpoint = photo_and_checkpoint
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    args = [str(photo), "--checkpoint", str(checkpoint), "-o", str(loop)]
    assert run_upscale_command(args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --output {loop} cannot be resolved (")
    assert "ymlink loop" in line or "Too many levels of symbolic links" in line


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return Generator(scale=4, num_blocks=2, num_channels=8).state_dict()


def write_weights(path: Path, weights: dict[str, torch.Tensor], dtype: torch.dtype) -> Path:
    """`weights` with every float tensor cast to `dtype`, as a safetensors export or a .pt
    checkpoint (by the suffix of `path`)."""
    cast = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in weights.items()
    }
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    if path.suffix == ".safetensors":
        save_file(cast, str(path), metadata=safetensors_metadata(generator.spec))
    else:
        save_checkpoint({"model": generator.spec.to_dict(), "generator": cast}, path)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8, torch.complex64])
def test_weights_that_are_not_float_are_refused_naming_the_tensor(
    tmp_path: Path, weights: dict[str, torch.Tensor], suffix: str, dtype: torch.dtype
) -> None:
    if suffix == ".safetensors" and dtype.is_complex:
        pytest.skip("safetensors stores no complex tensors")
    path = write_weights(tmp_path / f"weights{suffix}", weights, dtype)
    with pytest.raises(CheckpointError) as error:
        load_generator(path)
    assert str(error.value) == (
        f"{path} holds no float weights: tensor head.0.weight is {str(dtype)[6:]} (float16, "
        "bfloat16, float32 or float64 expected)"
    )


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_float_weights_of_any_precision_load_as_float32(
    tmp_path: Path, weights: dict[str, torch.Tensor], suffix: str, dtype: torch.dtype
) -> None:
    path = write_weights(tmp_path / f"weights{suffix}", weights, dtype)
    loaded = load_generator(path).state_dict()
    for name, tensor in weights.items():
        assert loaded[name].dtype == tensor.dtype, name
        assert torch.equal(loaded[name], tensor.to(dtype).to(tensor.dtype)), name


def run_export(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["scripts/export.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        export_command.main()
    return exit_info.value.code


def test_an_export_of_nan_weights_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=1, num_channels=8)
    with torch.no_grad():
        generator.head[0].weight[0, 0, 0, 0] = float("nan")
    checkpoint = save_generator_checkpoint(generator, tmp_path / "nan.pt")
    out = tmp_path / "out" / "model.safetensors"
    args = ["--checkpoint", str(checkpoint), "--format", "safetensors", "--out", str(out)]
    assert run_export(args, monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint}: generator weight head.0.weight is not finite (NaN or inf); not "
        "exported\n"
    )
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_an_export_that_fails_its_check_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=1, num_channels=8)
    checkpoint = save_generator_checkpoint(generator, tmp_path / "g.pt")
    out = tmp_path / "out" / "model.safetensors"
    args = ["--checkpoint", str(checkpoint), "--format", "safetensors", "--out", str(out)]
    export, _ = export_command.EXPORTERS["safetensors"]
    monkeypatch.setitem(export_command.EXPORTERS, "safetensors", (export, lambda *args: 0.5))
    assert run_export(args, monkeypatch) == 1
    captured = capsys.readouterr()
    assert "max abs difference 5.00e-01, FAILED (tolerance 0.0001)" in captured.out
    assert captured.err == f"{out} not written\n"
    assert list(out.parent.iterdir()) == []
    out.write_bytes(b"an earlier export")
    assert run_export([*args, "--overwrite"], monkeypatch) == 1
    assert [path.name for path in out.parent.iterdir()] == ["model.safetensors"]
    assert out.read_bytes() == b"an earlier export"


@pytest.fixture
def tiny_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Generator:
    """A tiny generator in place of the shipped srresnet_x4_291, the working folder tmp_path."""
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=1, num_channels=8).eval()
    (tmp_path / "shipped").mkdir()
    export_safetensors(generator, tmp_path / "shipped" / "srresnet_x4_291.safetensors")
    monkeypatch.setattr(shipped_models, "WEIGHTS_DIRS", (tmp_path / "shipped",))
    monkeypatch.chdir(tmp_path)
    return generator


def test_the_real_shipped_model_loads_by_name() -> None:
    loaded = srgan.load_generator("srresnet_x4_291")
    assert (loaded.scale, len(loaded.blocks)) == (4, 16)
    by_path = load_generator(shipped_models.shipped_model_path("srresnet_x4_291"))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in by_path.state_dict().items())


def test_a_shipped_name_loads_wherever_a_checkpoint_is_given(
    tiny_shipped: Generator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    assert len(srgan.load_generator("srresnet_x4_291").blocks) == 1
    assert read_weights("srresnet_x4_291")["model"]["num_blocks"] == 1
    rgb_image(12, 16).save("photo.png")
    assert run_upscale_command(["photo.png", "--checkpoint", "srresnet_x4_291"], monkeypatch) == 0
    shipped_file = tmp_path / "shipped" / "srresnet_x4_291.safetensors"
    assert f"from the shipped model srresnet_x4_291 ({shipped_file}, --checkpoint)" in (
        capsys.readouterr().out
    )
    args = ["--checkpoint", "srresnet_x4_291", "--format", "safetensors", "--out"]
    assert run_export([*args, "copy.safetensors"], monkeypatch) == 0
    assert len(load_generator("copy.safetensors").blocks) == 1
    # A file of that name wins over the shipped model.
    torch.manual_seed(1)
    save_generator_checkpoint(Generator(scale=4, num_blocks=3, num_channels=8), tmp_path / "x.pt")
    (tmp_path / "x.pt").rename(tmp_path / "srresnet_x4_291")
    assert len(srgan.load_generator("srresnet_x4_291").blocks) == 3
    assert load_checkpoint("srresnet_x4_291")["model"]["num_blocks"] == 3
    with pytest.raises(CheckpointError, match="^checkpoint srresnet_x4_292 does not exist$"):
        srgan.load_generator("srresnet_x4_292")
