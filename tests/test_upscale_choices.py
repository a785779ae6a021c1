"""What upscaling chooses from the hardware: bf16 is refused where it would only be emulated
(and "auto" picks the native precision), the same rule training follows, and only images that
do not fit in memory are tiled."""

import warnings

import pytest
import torch
from PIL import Image

from srgan import machine
from srgan.commands import upscale as upscale_command
from srgan.config import ConfigError, RuntimeConfig
from srgan.inference import shipped_models
from srgan.inference.export import export_safetensors
from srgan.inference.tile_size import (
    FALLBACK_TILE,
    MEMORY_SHARE,
    SMALLEST_TILE,
    bytes_per_lr_pixel,
    choose_tile,
)
from srgan.inference.tiles import upscale_tensor
from srgan.models.generator import Generator, GeneratorSpec
from srgan.run.runtime import setup_runtime

PAPER_MODEL = GeneratorSpec(scale=4, num_blocks=16, num_channels=64)
OVERLAP = 40  # the paper model's receptive radius
GIB = 2**30


def run_upscale(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # run_main sets it
    with pytest.raises(SystemExit) as exit_info:
        upscale_command.main([*args, "--quiet"])
    return exit_info.value.code


@pytest.fixture
def photo_and_model(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A 12x16 photo in the working folder and a tiny shipped model in place of the real one."""
    torch.manual_seed(0)
    export_safetensors(
        Generator(num_blocks=1, num_channels=8), tmp_path / "srresnet_x4_291.safetensors"
    )
    monkeypatch.setattr(shipped_models, "WEIGHTS_DIRS", (tmp_path,))
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (16, 12), (90, 140, 200)).save("photo.png")


@pytest.mark.usefixtures("photo_and_model")
def test_bf16_without_native_support_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(machine, "bf16_native", lambda device: False)
    assert run_upscale(["photo.png", "--device", "cpu", "--precision", "bf16"], monkeypatch) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "error: --precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so it would "
        "run many times slower than fp32 (17-50x on AVX2-only CPUs); use fp32 or auto\n"
    )
    assert captured.out == ""  # refused before loading anything

    # "auto" is the portable choice: fp32 here, and the run goes through.
    assert run_upscale(["photo.png", "--device", "cpu", "--precision", "auto"], monkeypatch) == 0
    assert ", fp32, " in capsys.readouterr().out


@pytest.mark.usefixtures("photo_and_model")
def test_bf16_runs_where_native(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(machine, "bf16_native", lambda device: True)
    for precision in ("bf16", "auto"):
        args = ["photo.png", "--device", "cpu", "--precision", precision, "--overwrite"]
        assert run_upscale(args, monkeypatch) == 0
        assert ", bf16, " in capsys.readouterr().out
    with Image.open("results/upscaled/photo_x4.png") as written:
        assert written.size == (64, 48)


def test_one_precision_rule_for_upscaling_training_and_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`srgan.machine.resolve_precision` decides for the upscale command, `upscale_tensor` and
    training's runtime alike: emulated bf16 is refused everywhere, "auto" avoids it."""
    monkeypatch.setattr(machine, "bf16_native", lambda device: False)
    with pytest.raises(ValueError, match="this GPU only emulates bf16"):
        machine.resolve_precision("bf16", torch.device("cuda"))
    assert machine.resolve_precision("auto", torch.device("cuda")) == "fp32"
    with pytest.raises(ValueError, match="this CPU has no native bf16"):
        generator = Generator(num_blocks=1, num_channels=4)
        upscale_tensor(generator, torch.rand(1, 3, 8, 8), precision="bf16")
    with pytest.raises(ConfigError, match="runtime.precision: bf16: this CPU has no native bf16"):
        setup_runtime(RuntimeConfig(device="cpu", precision="bf16"))
    assert setup_runtime(RuntimeConfig(device="cpu", precision="auto")).precision == "fp32"
    monkeypatch.setattr(machine, "bf16_native", lambda device: True)
    assert setup_runtime(RuntimeConfig(device="cpu", precision="auto")).precision == "bf16"


@pytest.mark.usefixtures("photo_and_model")
def test_one_device_rule_for_training_and_the_scripts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`srgan.machine.resolve_device`: "auto" takes CUDA only where it is available, and "cuda"
    without it is one line naming the option (training's key, the scripts' --device)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert machine.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine.resolve_device("auto") == machine.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="runtime.device: cuda was asked for, but CUDA is not"):
        setup_runtime(RuntimeConfig(device="cuda"))
    assert run_upscale(["photo.png", "--device", "cuda"], monkeypatch) == 2
    assert "error: --device cuda was asked for, but CUDA is not" in capsys.readouterr().err


def test_small_images_run_whole_large_ones_in_the_largest_tiles_that_fit() -> None:
    per_pixel = bytes_per_lr_pixel(PAPER_MODEL)
    assert per_pixel == 3 * 64 * 16 * 4  # three 64-channel maps at 4x4 the LR size, fp32
    # The 451x300 photo that tiles of 192 slowed down (105 s against 68 s): 1.7 GB, whole.
    assert choose_tile(300, 451, PAPER_MODEL, OVERLAP, available=8 * GIB) == 0
    # Too big for half of 2 GiB: tiles whose peak, context included, just fits.
    tile = choose_tile(1000, 1500, PAPER_MODEL, OVERLAP, available=2 * GIB)
    budget = 2 * GIB * MEMORY_SHARE
    assert tile == 215
    assert (
        (tile + 2 * OVERLAP) ** 2 * per_pixel <= budget < (tile + 1 + 2 * OVERLAP) ** 2 * per_pixel
    )
    # A batch needs its share for every image.
    assert choose_tile(300, 451, PAPER_MODEL, OVERLAP, available=8 * GIB, batch=8) > 0
    # Very little memory: never below SMALLEST_TILE; unknown memory: the old fixed size.
    assert choose_tile(1000, 1000, PAPER_MODEL, OVERLAP, available=10**8) == SMALLEST_TILE
    assert choose_tile(1000, 1000, PAPER_MODEL, OVERLAP, available=None) == FALLBACK_TILE


def test_automatic_tiling_gives_the_untiled_result(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    generator = Generator(num_blocks=2, num_channels=8).eval()
    lr_image = torch.rand(1, 3, 70, 90)
    whole = upscale_tensor(generator, lr_image, tile=0)
    chosen = []
    real_choose = choose_tile

    def spy(*args, **kwargs) -> int:
        chosen.append(real_choose(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr("srgan.inference.tiles.choose_tile", spy)
    # Little memory left: the image is tiled, and the tiles make the same image.
    monkeypatch.setattr("srgan.inference.tiles.available_memory", lambda device: 10**6)
    assert torch.allclose(upscale_tensor(generator, lr_image, tile=None), whole, atol=1e-5)
    assert chosen[-1] == SMALLEST_TILE < 70
    monkeypatch.setattr("srgan.inference.tiles.available_memory", lambda device: 8 * GIB)
    assert torch.equal(upscale_tensor(generator, lr_image, tile=None), whole)
    assert chosen[-1] == 0
