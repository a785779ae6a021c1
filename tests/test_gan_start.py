"""What GAN training starts from and logs: a warning when "auto" takes the `_best` of a
pretraining that has not finished, and no `loss/pixel` copy of SRGAN-MSE's content term."""

import json
from pathlib import Path

import pytest
from conftest import TINY_RUN_NAME, run_in_process
from test_resume import write_generator_checkpoint

from srgan.train.stages import pretrain, train_gan

PREFIX = f"srresnet_x4_{TINY_RUN_NAME}"


def gan_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["stage"] == "gan" and "event" not in row]


def test_auto_pretrained_generator_of_an_unfinished_pretraining_says_so(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run_dir = tmp_path / "run"
    args = [*tiny_config_args, "--set", "pretrain.epochs=4", "--run-dir", str(run_dir)]
    assert run_in_process(pretrain, [*args, "--max-steps", "2"], monkeypatch, capsys)[0] == 0
    gan = [*args, "--set", "gan.content_loss=mse", "--max-steps", "1"]
    code, out, err = run_in_process(train_gan, gan, monkeypatch, capsys)
    assert code == 0, err
    best = run_dir / "checkpoints" / f"{PREFIX}_best.pt"
    warning = (
        f"warning: pretraining has not finished (no {PREFIX}_final.pt): GAN training starts from "
        f"its best checkpoint so far, {best} (step 2)"
    )
    assert warning in out.splitlines()
    # Once pretraining has finished, its _best is what "auto" means: no warning.
    assert run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)[0] == 0
    code, out, err = run_in_process(train_gan, [*gan, "--fresh"], monkeypatch, capsys)
    assert code == 0, err
    assert f"GAN training from the SRResNet {best}" in out and "has not finished" not in out


@pytest.mark.parametrize(
    ("content_loss", "pixel_weight", "logs_pixel"),
    [("mse", 0, False), ("mse", 0.5, True), ("vgg22", 0, True)],
)
def test_loss_pixel_is_logged_unless_it_copies_the_content_term(
    tiny_config_args: list[str],
    tmp_path: Path,
    content_loss: str,
    pixel_weight: float,
    logs_pixel: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    pretrained = write_generator_checkpoint(tmp_path / "pretrained.pt")
    args = [*tiny_config_args, "--set", f"gan.pretrained_generator={pretrained}"]
    args += [
        "--set",
        f"gan.content_loss={content_loss}",
        "--set",
        f"gan.pixel_weight={pixel_weight}",
    ]
    args += ["--run-dir", str(tmp_path / "run"), "--max-steps", "2"]
    code, _, err = run_in_process(train_gan, args, monkeypatch, capsys)
    assert code == 0, err
    rows = gan_rows(tmp_path / "run")
    assert len(rows) == 2
    terms = ["content", "adversarial", "generator", "discriminator", "d_real", "d_fake"]
    expected = {f"loss/{term}" for term in terms} | ({"loss/pixel"} if logs_pixel else set())
    for row in rows:
        assert {key for key in row if key.startswith("loss/")} == expected
