"""A weights file does not decide how much memory to allocate: the spec a checkpoint or export
declares (scale, blocks, channels) is bounded and checked against the tensors it holds before
any network is built, so a damaged or hostile file is one line, not an out-of-memory kill."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from test_upscale import run_upscale_command, save_generator_checkpoint

from srgan.checkpoint import CheckpointError, generator_from_checkpoint, load_checkpoint
from srgan.inference.weights import load_generator, safetensors_metadata
from srgan.models.generator import Generator, GeneratorSpec


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return Generator(scale=4, num_blocks=2, num_channels=8).state_dict()


def export_declaring(path: Path, weights: dict[str, torch.Tensor], **declared: str) -> Path:
    """A safetensors export of `weights` whose metadata declares `declared` instead."""
    metadata = safetensors_metadata(GeneratorSpec(scale=4, num_blocks=2, num_channels=8))
    save_file(weights, str(path), metadata={**metadata, **declared})
    return path


@pytest.fixture
def no_real_build(monkeypatch: pytest.MonkeyPatch) -> list[torch.device]:
    """The devices generators are built on (the meta device costs no memory); building one on
    a real device from an unchecked spec fails the test instead of exhausting memory."""
    devices: list[torch.device] = []
    real_init = Generator.__init__

    def init(self: Generator, **spec: int) -> None:
        devices.append(torch.empty(0).device)
        assert devices[-1].type == "meta", f"a generator {spec} was built before any check"
        real_init(self, **spec)

    monkeypatch.setattr(Generator, "__init__", init)
    return devices


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"num_blocks": "50000000"}, "num_blocks must be 1 to 256, got 50000000"),
        ({"num_channels": "100000"}, "num_channels must be 1 to 1024, got 100000"),
        ({"scale": "3"}, "scale must be 2, 4 or 8, got 3"),
        ({"num_blocks": "-1"}, "num_blocks must be 1 to 256, got -1"),
    ],
)
def test_absurd_declared_specs_are_refused_before_building(
    tmp_path: Path,
    weights: dict[str, torch.Tensor],
    no_real_build: list[torch.device],
    declared: dict[str, str],
    message: str,
) -> None:
    path = export_declaring(tmp_path / "hostile.safetensors", weights, **declared)
    with pytest.raises(CheckpointError) as error:
        load_generator(path)
    assert str(error.value) == f"{path} has unusable model metadata ({message})"
    assert no_real_build == []


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ({"num_blocks": "200"}, "2970 tensors missing (e.g. blocks.2.body.0.weight)"),
        ({"num_blocks": "1"}, "15 unexpected (e.g. blocks.1.body.1.num_batches_tracked)"),
        ({"num_channels": "1024"}, "head.0.weight is (8, 3, 9, 9), expected (1024, 3, 9, 9)"),
        ({"scale": "8"}, "3 tensors missing (e.g. upsample.2.conv.weight)"),
    ],
)
def test_a_declared_spec_that_the_tensors_contradict_is_refused_before_building(
    tmp_path: Path,
    weights: dict[str, torch.Tensor],
    no_real_build: list[torch.device],
    declared: dict[str, str],
    problem: str,
) -> None:
    path = export_declaring(tmp_path / "lying.safetensors", weights, **declared)
    with pytest.raises(CheckpointError) as error:
        load_generator(path)
    assert str(error.value).startswith(f"{path} does not hold the generator it declares (")
    assert str(error.value).endswith(f"): {problem}")
    assert {device.type for device in no_real_build} == {"meta"}


def test_a_checkpoint_declaring_another_spec_is_refused_too(
    tmp_path: Path, weights: dict[str, torch.Tensor], no_real_build: list[torch.device]
) -> None:
    path = tmp_path / "checkpoint.pt"
    declared = {"scale": 4, "num_blocks": 250, "num_channels": 8}
    with pytest.raises(CheckpointError) as error:
        generator_from_checkpoint({"model": declared, "generator": weights}, path)
    assert str(error.value) == (
        f"{path} does not hold the generator it declares (x4, 250 blocks, 8 channels): "
        "3720 tensors missing (e.g. blocks.2.body.0.weight)"
    )
    with pytest.raises(CheckpointError, match=r"checkpoint.pt does not hold .*: it holds no "):
        generator_from_checkpoint({"model": declared, "generator": [1, 2]}, path)


def test_a_matching_file_still_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(scale=2, num_blocks=3, num_channels=12)
    path = save_generator_checkpoint(generator, tmp_path / "fine.pt")
    loaded = generator_from_checkpoint(load_checkpoint(path), path)
    assert loaded.spec == generator.spec
    for name, tensor in generator.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_upscale_refuses_a_hostile_export_in_one_line(
    tmp_path: Path,
    weights: dict[str, torch.Tensor],
    no_real_build: list[torch.device],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """In process, with builds watched: a regression fails here instead of exhausting memory."""
    path = export_declaring(tmp_path / "hostile.safetensors", weights, num_blocks="50000000")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = [str(tmp_path / "photo.png"), "--checkpoint", str(path), "-o", str(out)]
    assert run_upscale_command(args, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path} has unusable model metadata (num_blocks must be 1 to 256, got 50000000)"
    )
    assert not out.exists()
