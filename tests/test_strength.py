"""Network interpolation (--strength, --strengths): S = 0 is the SRResNet and S = 1 the SRGAN
exactly, S = 0.5 the mean of every float tensor; mismatched generators and strengths outside
[0, 1] are one line and exit 2; an export records the SRResNet and --strength finds it again;
scripts/evaluate.py --strengths scores the rows and draws the perception-distortion picture."""

import json
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import describe, run_script, smooth_image
from PIL import Image
from safetensors import safe_open
from test_evaluate_inputs import run_evaluate
from test_upscale import run_upscale_command, save_generator_checkpoint

from srgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srgan.commands.evaluate_inputs import strength_list
from srgan.commands.export import export_main
from srgan.eval.perception_distortion import COLORS, plot_perception_distortion
from srgan.files import file_sha256
from srgan.inference import shipped_models
from srgan.inference.export import export_safetensors
from srgan.inference.interpolation import check_strength, interpolated_generator
from srgan.inference.tiles import upscale_tensor
from srgan.inference.upscaling import upscale
from srgan.inference.weights import load_generator
from srgan.models.generator import Generator

SPEC = {"scale": 4, "num_blocks": 1, "num_channels": 8}


def random_generator(seed: int, batches_tracked: int, **spec: int) -> Generator:
    """A tiny generator whose every float tensor (BatchNorm statistics too) is random."""
    torch.manual_seed(seed)
    generator = Generator(**{**SPEC, **spec})
    with torch.no_grad():
        for name, tensor in generator.state_dict().items():
            if not tensor.is_floating_point():
                tensor.fill_(batches_tracked)
            elif "running_var" in name:
                tensor.uniform_(0.5, 2.0)
            else:
                tensor.add_(torch.randn_like(tensor) * 0.1)
    return generator.eval()


def save_srgan(generator: Generator, path: Path, srresnet: Path | str | None) -> Path:
    """A GAN checkpoint (kind "srgan") that records `srresnet` and its SHA-256, as training
    writes them; `srresnet` None: one that records nothing."""
    save_generator_checkpoint(generator, path)
    state = load_checkpoint(path)
    state["kind"], state["stage"] = "srgan", "gan"
    if srresnet is not None:
        state["pretrained_from"] = str(srresnet)
        state["pretrained_sha256"] = file_sha256(shipped_models.weights_path(srresnet))
    save_checkpoint(state, path)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """(srresnet.pt, srgan.pt) in tmp_path/run, the SRGAN recording the SRResNet."""
    folder = tmp_path / "run"
    folder.mkdir()
    srresnet = save_generator_checkpoint(random_generator(0, 3), folder / "srresnet.pt")
    return srresnet, save_srgan(random_generator(1, 7), folder / "srgan.pt", srresnet)


@torch.no_grad()
def output(generator: Generator) -> torch.Tensor:
    lr_image = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(5))
    return upscale_tensor(generator, lr_image)


def test_strength_0_is_the_srresnet_and_1_the_srgan_exactly(pair: tuple[Path, Path]) -> None:
    srresnet, srgan = pair
    assert not torch.equal(output(load_generator(srresnet)), output(load_generator(srgan)))
    assert torch.equal(output(interpolated_generator(srgan, 0)), output(load_generator(srresnet)))
    assert torch.equal(output(interpolated_generator(srgan, 1)), output(load_generator(srgan)))
    # With a base given, S = 1 is interpolated too, and still the SRGAN's weights exactly.
    at_one = interpolated_generator(srgan, 1, base=srresnet).state_dict()
    for name, tensor in load_generator(srgan).state_dict().items():
        assert torch.equal(at_one[name], tensor), name


def test_strength_half_is_the_mean_of_every_float_tensor(pair: tuple[Path, Path]) -> None:
    srresnet, srgan = pair
    first, second = load_generator(srresnet).state_dict(), load_generator(srgan).state_dict()
    mixed = interpolated_generator(srgan, 0.5).state_dict()
    for name, tensor in mixed.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (first[name] + second[name]) / 2, msg=name)
            assert not torch.equal(tensor, first[name]), name
        else:  # num_batches_tracked: the SRGAN's
            assert tensor.item() == second[name].item() == 7, name


def test_generators_of_different_specs_are_refused_naming_both(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    srresnet, _ = pair
    wider = save_srgan(random_generator(2, 0, num_channels=12), tmp_path / "wide.pt", srresnet)
    with pytest.raises(CheckpointError) as error:
        interpolated_generator(wider, 0.5)
    message = str(error.value)
    assert f"{srresnet} (x4, 1 blocks, 8 channels) and {wider} (x4, 1 blocks, 12" in message


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan"), float("inf")])
def test_a_strength_outside_0_1_is_refused_with_its_value(
    pair: tuple[Path, Path], strength: float
) -> None:
    with pytest.raises(ValueError, match=f"strength must be between 0 .* not {strength}$"):
        interpolated_generator(pair[1], strength)
    assert check_strength(0.0) == 0.0 and check_strength(1.0) == 1.0


def test_the_srresnet_comes_from_base_or_the_record_and_its_sha256_is_checked(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    srresnet, srgan = pair
    with pytest.raises(ValueError, match="is not an SRGAN checkpoint.*pass --base"):
        interpolated_generator(srresnet, 0.5)
    unrecorded = save_srgan(random_generator(1, 7), tmp_path / "old.pt", None)
    with pytest.raises(ValueError, match="old.pt records no SRResNet .* pass --base"):
        interpolated_generator(unrecorded, 0.5)
    expected = interpolated_generator(srgan, 0.25).state_dict()["tail.weight"]
    from_base = interpolated_generator(unrecorded, 0.25, base=srresnet).state_dict()
    assert torch.equal(from_base["tail.weight"], expected)
    # The recorded file replaced by another SRResNet: refused, not silently interpolated.
    save_generator_checkpoint(random_generator(9, 0), srresnet)
    with pytest.raises(ValueError, match="srresnet.pt has another SHA-256 .* pass --base"):
        interpolated_generator(srgan, 0.5)
    srresnet.unlink()
    with pytest.raises(ValueError, match="srresnet.pt, which is not found; pass --base"):
        interpolated_generator(srgan, 0.5)


def export(checkpoint: Path, out: Path) -> dict[str, str]:
    """scripts/export.py --format safetensors in this process; the export's metadata."""
    args = Namespace(checkpoint=checkpoint, format="safetensors", out=out, overwrite=False)
    assert export_main(args) == 0
    with safe_open(str(out), framework="pt") as file:
        return file.metadata()


def test_an_export_records_its_srresnet_and_strength_finds_it_beside_it(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    srresnet, srgan = pair
    shipped = tmp_path / "shipped"
    shipped.mkdir()  # no shipped model has this SRResNet's SHA-256
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shipped_models, "WEIGHTS_DIRS", (shipped,))
        metadata = export(srgan, tmp_path / "elsewhere" / "srgan.safetensors")
        srresnet_metadata = export(srresnet, tmp_path / "srresnet.safetensors")
    assert srresnet_metadata["format"] == "srgan-generator"
    assert not [key for key in srresnet_metadata if key.startswith("pretrained")]
    assert metadata["pretrained_sha256"] == file_sha256(srresnet)
    assert metadata["pretrained_name"] == "srresnet.pt"
    exported = tmp_path / "elsewhere" / "srgan.safetensors"
    with pytest.raises(ValueError, match="trained from srresnet.pt, which is not found"):
        interpolated_generator(exported, 0.5)
    shutil.copy(srresnet, exported.parent)  # beside the export: found, SHA-256 checked
    mixed = interpolated_generator(exported, 0.5).state_dict()["head.0.weight"]
    assert torch.equal(mixed, interpolated_generator(srgan, 0.5).state_dict()["head.0.weight"])


@pytest.fixture
def shipped_srresnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny SRResNet in place of the shipped srresnet_x4_291."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    path = shipped / "srresnet_x4_291.safetensors"
    export_safetensors(random_generator(0, 3), path)
    monkeypatch.setattr(shipped_models, "WEIGHTS_DIRS", (shipped,))
    return path


def test_strength_from_an_export_of_an_srgan_trained_from_the_shipped_model(
    shipped_srresnet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srgan = save_srgan(random_generator(1, 7), tmp_path / "srgan.pt", "srresnet_x4_291")
    exported = tmp_path / "out" / "srgan.safetensors"
    metadata = export(srgan, exported)
    assert metadata["pretrained_name"] == "srresnet_x4_291"
    assert metadata["pretrained_sha256"] == file_sha256(shipped_srresnet)
    monkeypatch.chdir(tmp_path)
    Image.fromarray(smooth_image(np.random.default_rng(0), 12, 16)).save("photo.png")
    args = ["photo.png", "--checkpoint", str(exported), "--strength", "0.5", "-o", "up"]
    assert run_upscale_command(args, monkeypatch) == 0
    expected = upscale(interpolated_generator(srgan, 0.5), Image.open("photo.png"))
    assert np.array_equal(np.asarray(Image.open("up/photo_x4.png")), np.asarray(expected))
    assert run_upscale_command([*args, "--overwrite", "--strength", "nan"], monkeypatch) == 2


def test_an_srgan_trained_from_a_checkpoint_since_shipped_records_the_shipped_model(
    shipped_srresnet: Path, tmp_path: Path
) -> None:
    """Training read the SRResNet's .pt; what ships is its export, another file with the same
    weights: the SRGAN's export names the shipped model and its file's SHA-256."""
    trained_from = save_generator_checkpoint(random_generator(0, 3), tmp_path / "best.pt")
    srgan = save_srgan(random_generator(1, 7), tmp_path / "srgan.pt", trained_from)
    assert file_sha256(trained_from) != file_sha256(shipped_srresnet)
    metadata = export(srgan, tmp_path / "out" / "srgan.safetensors")
    assert metadata["pretrained_name"] == "srresnet_x4_291"
    assert metadata["pretrained_sha256"] == file_sha256(shipped_srresnet)
    other = save_generator_checkpoint(random_generator(2, 3), tmp_path / "other.pt")
    unrelated = save_srgan(random_generator(1, 7), tmp_path / "srgan2.pt", other)
    assert export(unrelated, tmp_path / "out2" / "srgan.safetensors")["pretrained_name"] == (
        "other.pt"
    )


def test_upscale_refuses_mismatched_generators_with_one_line_and_exit_2(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    srresnet, srgan = pair
    Image.fromarray(smooth_image(np.random.default_rng(0), 12, 16)).save(tmp_path / "a.png")
    other = save_generator_checkpoint(random_generator(3, 0, num_blocks=2), tmp_path / "deep.pt")
    args = ["a.png", "--checkpoint", str(srgan), "--strength", "0.5", "--base", str(other)]
    result = run_script("upscale.py", args, tmp_path)
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [
        f"error: {other} (x4, 2 blocks, 8 channels) and {srgan} (x4, 1 blocks, 8 channels) are "
        "different generators: they cannot be interpolated"
    ]
    assert not (tmp_path / "results").exists() and srresnet.is_file()


def test_strengths_are_parsed_checked_and_sorted() -> None:
    assert strength_list("1,0,0.25") == [0.0, 0.25, 1.0]
    for text, message in {
        "0,x": "expected numbers separated by commas",
        "0,1.5": "--strengths values must be between 0",
        "0.5,0.5": "given twice",
    }.items():
        with pytest.raises(ValueError, match=message):
            strength_list(text)


def test_no_picture_where_no_interpolated_row_has_a_niqe(tmp_path: Path) -> None:
    means = {"psnr_y": 30.0, "niqe": None, "grid_percent": 1.0}
    path = tmp_path / "picture.png"
    assert not plot_perception_distortion({"m S=0": means}, {"m": {0.0: "m S=0"}}, "t", path)
    assert not path.exists()


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    """Set/: a 124x110 image (large enough for NIQE) and a 58x62 one (too small for it)."""
    folder = tmp_path / "Set"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(smooth_image(rng, 110, 124)).save(folder / "big.png")
    Image.fromarray(smooth_image(rng, 62, 58)).save(folder / "small.png")
    return folder


def test_evaluate_strengths_scores_the_rows_and_draws_the_picture(
    pair: tuple[Path, Path], hr_folder: Path, tmp_path: Path
) -> None:
    srresnet, srgan = pair
    published = tmp_path / "published"
    published.mkdir()
    hr = np.asarray(Image.open(hr_folder / "big.png"))[:108, :124]
    Image.fromarray(255 - hr).save(published / "big_inverted.png")
    out = tmp_path / "results"
    args = ["--checkpoint", str(srresnet), str(srgan), "--strengths", "0,0.5,1"]
    args += ["--outputs", f"inverted={published}", "--data", str(hr_folder), "--out", str(out)]
    result = run_script("evaluate.py", args, tmp_path)
    assert result.returncode == 0, describe(result)

    document = json.loads((out / "results.json").read_text())
    rows = document["results"]["Set"]
    assert set(rows) == {"bicubic", "srresnet", "srgan S=0", "srgan S=0.5", "srgan S=1"} | {
        "inverted", "HR"
    }  # fmt: skip
    assert rows["srgan S=0"] == rows["srresnet"]  # the same weights: the same scores
    assert rows["srgan S=1"]["psnr_y"] != rows["srgan S=0"]["psnr_y"]
    assert rows["srgan S=0.5"]["niqe_images"] == 1 and rows["srgan S=0.5"]["num_images"] == 2
    (interpolation,) = document["provenance"]["interpolations"]
    assert interpolation["base"] == str(srresnet)
    assert interpolation["base_sha256"] == file_sha256(srresnet)
    assert interpolation["rows"] == {"0": "srgan S=0", "0.5": "srgan S=0.5", "1": "srgan S=1"}
    assert "| Set | srgan S=0.5 | 2 |" in (out / "results.md").read_text()

    picture = np.asarray(Image.open(out / "perception_distortion" / "Set.png").convert("RGB"))
    assert picture.shape == (660, 1040, 3)
    curve_pixels = np.all(picture == COLORS[0], axis=-1).sum()
    assert curve_pixels > 100  # the curve's line, dots and labels


def test_evaluate_strengths_needs_an_srgan(
    pair: tuple[Path, Path], hr_folder: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    srresnet, _ = pair
    data = ["--data", str(hr_folder), "--out", str(tmp_path / "out")]
    code = run_evaluate(["--checkpoint", str(srresnet), "--strengths", "0,1", *data], monkeypatch)
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --strengths: no --checkpoint is an SRGAN (a GAN checkpoint, or an export that "
        "records the SRResNet it was trained from)"
    )
    assert not (tmp_path / "out").exists()
