"""End-to-end smoke runs of the scripts, as a user runs them: a tiny model on synthetic data.

scripts/pretrain.py runs once per session (`pretrained_run`); scripts/train.py continues from
a copy of that run. Each subprocess costs seconds (importing torch), so `--help` runs in
process: the script file is executed as __main__, exactly as `python scripts/x.py` would.
"""

import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    REPO,
    SCRIPTS,
    TINY_MAX_STEPS,
    TINY_RUN_NAME,
    PretrainedRun,
    describe,
    run_in_process,
    run_scripts,
)
from PIL import Image

from srgan.checkpoint import generator_from_checkpoint, load_checkpoint
from srgan.commands import pretrain as pretrain_command
from srgan.commands import train as train_command
from srgan.train.stages import pretrain

# The flags every training script shares (srgan/commands/common.py); each script's own come
# from its source.
TRAINING_FLAGS = (
    "--config",
    "--set",
    "--device",
    "--run-dir",
    "--max-steps",
    "--checkpoint-every",
    "--resume",
    "--seed",
    "--debug",
)
ALL_SCRIPTS = sorted(path.name for path in SCRIPTS.glob("*.py"))


@pytest.fixture(scope="module")
def script_runs(
    tmp_path_factory: pytest.TempPathFactory,
    pretrained_run: PretrainedRun,
    tiny_config_args: list[str],
) -> dict[str, subprocess.CompletedProcess]:
    """train.py on a copy of the pretrained run and train.py on an empty run, side by side."""
    folder = tmp_path_factory.mktemp("script_runs")
    gan_run = folder / "gan_run"
    shutil.copytree(pretrained_run.run_dir, gan_run)
    four_epochs = ["--set", f'gan.lr_phases=[{{"epochs": {TINY_MAX_STEPS}, "lr": 1e-4}}]']
    commands = {
        "train": ("train.py", [*tiny_config_args, "--run-dir", str(gan_run), *four_epochs]),
        "train without pretrained": (
            "train.py",
            [*tiny_config_args, "--run-dir", str(folder / "empty_run"), *four_epochs],
        ),
    }
    return run_scripts(commands, cwd=folder)


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def check_generator(checkpoint: dict, source: Path) -> None:
    generator = generator_from_checkpoint(checkpoint, str(source))
    assert generator.scale == 4 and len(generator.blocks) == 2
    with torch.no_grad():
        sr_image = generator(torch.rand(1, 3, 8, 8))
    assert sr_image.shape == (1, 3, 32, 32) and torch.isfinite(sr_image).all()


def test_pretrain_writes_loadable_checkpoint_logs_and_curves(
    pretrained_run: PretrainedRun,
) -> None:
    run_dir = pretrained_run.run_dir
    assert "pretraining SRResNet done at step 4" in pretrained_run.result.stdout
    final = run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_final.pt"
    checkpoint = load_checkpoint(final)
    assert checkpoint["kind"] == "srresnet" and checkpoint["step"] == TINY_MAX_STEPS
    assert checkpoint["model"] == {
        "scale": 4,
        "num_blocks": 2,
        "num_channels": 8,
        "upsample_blur": False,
    }
    assert set(checkpoint["optimizers"]) == {"generator"}
    check_generator(checkpoint, final)
    best = load_checkpoint(run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_best.pt")
    assert best["step"] in (2, 4) and best["best_psnr_y"] > 10

    rows = read_metrics(run_dir)
    assert [(row["stage"], row["step"]) for row in rows] == [("pretrain", s) for s in (1, 2, 3, 4)]
    # 3 training images, batch 2: one step per epoch, validation every 2 epochs.
    assert ["valid/psnr_y" in row for row in rows] == [False, True, False, True]
    assert all(row["loss/pixel"] > 0 for row in rows)
    with Image.open(run_dir / "curves.png") as curves:
        assert curves.format == "PNG" and min(curves.size) > 100


def test_train_continues_from_pretrained_run(
    script_runs: dict[str, subprocess.CompletedProcess], pretrained_run: PretrainedRun
) -> None:
    result = script_runs["train"]
    assert result.returncode == 0, describe(result)
    assert "training SRGAN done at step 4" in result.stdout
    run_dir = Path(result.args[result.args.index("--run-dir") + 1])
    final = run_dir / "checkpoints" / f"srgan_x4_{TINY_RUN_NAME}_final.pt"
    checkpoint = load_checkpoint(final)
    assert checkpoint["kind"] == "srgan" and checkpoint["step"] == TINY_MAX_STEPS
    assert checkpoint["vgg_weights"] == "random"
    assert checkpoint["pretrained_from"].endswith(f"srresnet_x4_{TINY_RUN_NAME}_best.pt")
    assert set(checkpoint["optimizers"]) == {"generator", "discriminator"}
    assert "discriminator" in checkpoint
    check_generator(checkpoint, final)
    # GAN training moved the generator away from its pretrained weights.
    pretrained = load_checkpoint(Path(checkpoint["pretrained_from"]))["generator"]
    assert any(
        not torch.equal(value, pretrained[name]) for name, value in checkpoint["generator"].items()
    )

    gan_rows = [row for row in read_metrics(run_dir) if row["stage"] == "gan"]
    assert [row["step"] for row in gan_rows] == [1, 2, 3, 4]
    for key in ("loss/content", "loss/adversarial", "loss/discriminator", "loss/pixel"):
        assert all(key in row for row in gan_rows), key
    assert (run_dir / "curves.png").is_file()
    assert (run_dir / "WARNING_random_vgg_weights.txt").is_file()


def test_train_without_pretrained_generator_names_the_run(
    script_runs: dict[str, subprocess.CompletedProcess],
) -> None:
    result = script_runs["train without pretrained"]
    assert result.returncode == 2, describe(result)
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: "), describe(result)
    assert f"run '{TINY_RUN_NAME}'" in last_line and "scripts/pretrain.py" in last_line
    assert "Traceback" not in result.stderr


def option_help(help_text: str) -> dict[str, str]:
    """{flag: its explanation} from argparse's options listing (wrapped lines joined)."""
    explanations: dict[str, str] = {}
    flags: list[str] = []
    for line in help_text.splitlines():
        entry = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if entry:
            flags = re.findall(r"(?:^|, )(-[-\w]+)", entry.group(1))
            for flag in flags:
                explanations[flag] = entry.group(2) or ""
        elif flags and line.startswith(" " * 4) and line.strip():
            for flag in flags:
                explanations[flag] = f"{explanations[flag]} {line.strip()}".strip()
        else:
            flags = []
    return explanations


def expected_flags(script: str) -> set[str]:
    """The flags the command behind scripts/<script> declares (read from its source)."""
    command = re.search(r"from srgan\.commands\.(\w+) import main", (SCRIPTS / script).read_text())
    assert command, f"{script} is not a thin wrapper of an srgan.commands module"
    source = (REPO / "srgan" / "commands" / f"{command[1]}.py").read_text()
    flags = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", source))
    if "stage_main" in source:
        flags.update(TRAINING_FLAGS)
    return flags


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_help_explains_every_flag(
    script: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = SCRIPTS / script
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage:")
    explanations = option_help(help_text)
    flags = expected_flags(script)
    assert flags, f"no flags found for {script}"
    for flag in flags:
        assert flag in explanations, f"{script} --help does not list {flag}"
        assert len(explanations[flag]) > 10, f"{script} --help does not explain {flag}"


def script_help(script: str, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    path = SCRIPTS / script
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(path), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [pretrain_command, train_command])
def test_training_help_keeps_the_example_commands(
    command, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = f"{command.__name__.rsplit('.', 1)[-1]}.py"
    help_lines = [line.strip() for line in script_help(script, monkeypatch, capsys).splitlines()]
    examples = [
        line.strip()
        for line in command.__doc__.splitlines()
        if line.strip().startswith(("python ", "torchrun "))
    ]
    assert len(examples) == 2
    for example in examples:  # each on a line of its own, not run into the prose
        assert example in help_lines


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_help_says_each_default_once(
    script: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for flag, explanation in option_help(script_help(script, monkeypatch, capsys)).items():
        assert "(default: None)" not in explanation, f"{script} {flag}: {explanation}"
        assert explanation.count("(default") <= 1, f"{script} {flag}: {explanation}"


def test_stage_stopped_before_validation_says_so(
    tiny_config_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args = [*tiny_config_args, "--run-dir", str(tmp_path / "run"), "--max-steps", "1"]
    code, out, _ = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 0
    last_line = out.strip().splitlines()[-1]
    assert "-inf" not in last_line
    assert last_line.startswith(
        "test done at step 1: no validation yet (the stage stopped before its first; "
        "see validate_every)"
    )
