"""GAN-stage options: gan.content_loss (the paper's SRGAN-MSE builds no VGG, and a resume
cannot switch variants) and gan.discriminator_lr_factor."""

import json
from pathlib import Path

import pytest
import torch
import torchvision.models
from conftest import TINY_RUN_NAME, run_in_process
from test_resume import write_generator_checkpoint

import srgan.models.losses
from srgan.train.stages import train_gan

# ContentLoss looks `load_vgg_features` (srgan/models/vgg.py) up in srgan.models.losses, so the
# fixture patches it there; torchvision's vgg19 is patched too, for any other way to a VGG.
LOAD_VGG_FEATURES = srgan.models.losses.load_vgg_features
VGG19 = torchvision.models.vgg19

GAN_PREFIX = f"srgan_x4_{TINY_RUN_NAME}"


def no_vgg(*args, **kwargs):
    raise AssertionError("a VGG19 was built")


@pytest.fixture
def gan_args(tiny_config_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny GAN run in tmp_path/run, from a fresh pretrained file; building a VGG fails."""
    monkeypatch.setattr(srgan.models.losses, "load_vgg_features", no_vgg)
    monkeypatch.setattr("torchvision.models.vgg19", no_vgg)
    pretrained = write_generator_checkpoint(tmp_path / "pretrained.pt")
    # imagenet weights cannot be downloaded here: a VGG run would fail even without the patch.
    args = [*tiny_config_args, "--set", f"gan.pretrained_generator={pretrained}"]
    args += ["--set", "gan.vgg_weights=imagenet", "--run-dir", str(tmp_path / "run")]
    return args, tmp_path / "run"


def test_mse_content_loss_builds_no_vgg_and_equals_the_pixel_mse(
    gan_args, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = gan_args
    args = [*args, "--set", "gan.content_loss=mse", "--max-steps", "2"]
    code, _, err = run_in_process(train_gan, args, monkeypatch, capsys)
    assert code == 0, err
    state = torch.load(run_dir / "checkpoints" / f"{GAN_PREFIX}_step00000002.pt", weights_only=True)
    assert state["vgg_weights"] == "none" and state["config"]["gan"]["content_loss"] == "mse"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row.get("stage") == "gan" and "loss/content" in row]
    assert len(rows) == 2
    for row in rows:  # SRGAN-MSE's content term is the pixel MSE itself
        assert row["loss/content"] == pytest.approx(row["loss/pixel"], rel=1e-6)


def test_vgg_content_loss_does_build_one(
    gan_args, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The patch above is live: the same run with a VGG content loss trips it."""
    args, _ = gan_args
    args = [*args, "--set", "gan.content_loss=vgg22", "--max-steps", "1"]
    with pytest.raises(AssertionError, match="a VGG19 was built"):
        run_in_process(train_gan, args, monkeypatch, capsys)


def test_a_resume_that_changes_the_content_loss_is_refused(
    gan_args, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = gan_args
    code, _, err = run_in_process(
        train_gan, [*args, "--set", "gan.content_loss=mse", "--max-steps", "2"], monkeypatch, capsys
    )
    assert code == 0, err
    monkeypatch.setattr(srgan.models.losses, "load_vgg_features", LOAD_VGG_FEATURES)
    monkeypatch.setattr("torchvision.models.vgg19", VGG19)
    resumed = [*args, "--set", "gan.content_loss=vgg22", "--set", "gan.vgg_weights=random"]
    code, _, err = run_in_process(
        train_gan, [*resumed, "--resume", "auto", "--max-steps", "3"], monkeypatch, capsys
    )
    assert code == 2 and "Traceback" not in err
    assert 'gan.content_loss: "mse" -> "vgg22"' in err.strip().splitlines()[-1]
    assert not (run_dir / "checkpoints" / f"{GAN_PREFIX}_step00000003.pt").exists()


def test_discriminator_lr_factor_scales_the_discriminator_only(
    gan_args, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = gan_args
    args = [*args, "--set", "gan.content_loss=mse", "--set", "gan.discriminator_lr_factor=10"]
    args += ["--set", 'gan.lr_phases=[{"epochs": 10, "lr": 2e-5}]', "--max-steps", "2"]
    code, _, err = run_in_process(train_gan, args, monkeypatch, capsys)
    assert code == 0, err
    state = torch.load(run_dir / "checkpoints" / f"{GAN_PREFIX}_step00000002.pt", weights_only=True)
    learning_rates = {
        name: [group["lr"] for group in optimizer["param_groups"]]
        for name, optimizer in state["optimizers"].items()
    }
    assert learning_rates == {"generator": [2e-5], "discriminator": [pytest.approx(2e-4)]}
