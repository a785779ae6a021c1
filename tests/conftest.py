"""Shared fixtures: tiny synthetic data and config, random-VGG content losses, one pretraining run.

Subprocesses cost a few seconds each (importing torch), so the pretraining run that several
test files need is made once per session, and independent script runs go through
`run_scripts`, which runs a few of them at the same time.
"""

import errno
import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan.commands.common import stage_main
from srgan.models.losses import ContentLoss

# The tests use tiny tensors: on a shared 2-core machine a second intra-op thread only spins
# against other processes (20 tiny generator steps: 0.3 s with one thread, up to 9 s with two).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
# Two CPUs shared with others: one thread per script, a few scripts at a time.
SCRIPT_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PARALLEL_SCRIPTS = 3
TINY_RUN_NAME = "tiny"
TINY_MAX_STEPS = 4


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random HxWx3 uint8 image with smooth structure (a coarse random grid, upsampled)."""
    coarse = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


@dataclass(frozen=True)
class TinyDataset:
    root: Path
    train_dir: Path
    valid_dir: Path
    config_file: Path  # {"name": "tiny"}: everything else comes from --set overrides


TRAIN_SIZES = ((96, 80), (128, 112), (72, 128))
VALID_SIZES = ((64, 64), (80, 72))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> TinyDataset:
    """Three training and two validation PNGs of 64-128 px, never modified by the tests."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    rng = np.random.default_rng(2016)
    for folder, sizes in (("train", TRAIN_SIZES), ("valid", VALID_SIZES)):
        (root / folder).mkdir()
        for index, (height, width) in enumerate(sizes):
            image = smooth_image(rng, height, width)
            Image.fromarray(image).save(root / folder / f"{folder}{index}.png")
    config_file = root / "tiny.json"
    config_file.write_text(json.dumps({"name": TINY_RUN_NAME}))
    return TinyDataset(root, root / "train", root / "valid", config_file)


@pytest.fixture(scope="session")
def tiny_overrides(tiny_dataset: TinyDataset) -> list[str]:
    """`key=value` overrides for a tiny, fast, deterministic CPU run on `tiny_dataset`.

    3 training images, batch 2 -> 1 step per epoch, so validation runs every other step.
    """
    return [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
        "data.crop_size=32",
        "model.num_blocks=2",
        "model.num_channels=8",
        "model.discriminator_channels=8",
        "pretrain.epochs=10",
        "pretrain.batch_size=2",
        "pretrain.validate_every=2",
        'gan.lr_phases=[{"epochs": 10, "lr": 1e-4}]',
        "gan.batch_size=2",
        "gan.validate_every=2",
        "gan.vgg_weights=random",
        "gan.content_loss=vgg22",
        "runtime.device=cpu",
        "runtime.precision=fp32",
        "runtime.log_every=1",
    ]


@pytest.fixture(scope="session")
def tiny_config_args(tiny_dataset: TinyDataset, tiny_overrides: list[str]) -> list[str]:
    """Command-line arguments of scripts/pretrain.py and scripts/train.py for the tiny run."""
    args = ["--config", str(tiny_dataset.config_file)]
    for override in tiny_overrides:
        args += ["--set", override]
    return args


def run_script(
    script: str, args: list[str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run scripts/<script> with this interpreter; text output captured."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        env=SCRIPT_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_scripts(
    commands: dict[str, tuple[str, list[str]]], cwd: Path
) -> dict[str, subprocess.CompletedProcess]:
    """Run {label: (script, args)} a few at a time; returns {label: completed process}."""
    with ThreadPoolExecutor(PARALLEL_SCRIPTS) as pool:
        futures = {
            label: pool.submit(run_script, script, args, cwd)
            for label, (script, args) in commands.items()
        }
        return {label: future.result() for label, future in futures.items()}


def describe(result: subprocess.CompletedProcess) -> str:
    """Exit code and output of a script run, for assertion messages."""
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.fixture(scope="session")
def content_losses() -> dict[str, ContentLoss]:
    """One random-weight ContentLoss per layer, shared: building VGG19 takes over a second."""
    torch.manual_seed(0)
    losses = {}
    for layer in ("vgg22", "vgg54"):
        with pytest.warns(UserWarning, match="RANDOM"):
            losses[layer] = ContentLoss(layer=layer, weights="random")
    return losses


@dataclass(frozen=True)
class PretrainedRun:
    run_dir: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def pretrained_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_config_args: list[str]
) -> PretrainedRun:
    """scripts/pretrain.py, a whole stage of TINY_MAX_STEPS steps, into a fresh --run-dir (run
    once): it ends with a `_final` checkpoint."""
    run_dir = tmp_path_factory.mktemp("pretrained_run")
    epochs = ["--set", f"pretrain.epochs={TINY_MAX_STEPS}"]  # one step per epoch
    args = [*tiny_config_args, *epochs, "--run-dir", str(run_dir)]
    result = run_script("pretrain.py", args, cwd=run_dir)
    assert result.returncode == 0, describe(result)
    return PretrainedRun(run_dir, result)


def run_in_process(
    stage_fn: Callable,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> tuple[int, str, str]:
    """scripts/pretrain.py or train.py (`stage_fn`) with `args`, as they run, in this process
    (no torch import per run): (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["scripts/script.py", *args])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # run_main sets it
    with pytest.raises(SystemExit) as exit_info:
        stage_main(stage_fn, "test", "")
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def read_only_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every folder fails `srgan.files.check_writable_folder`'s write test as a read-only mount
    does (simulated: the tests may run as root, which chmod does not stop)."""
    real_mkstemp = tempfile.mkstemp

    def read_only(dir: str, prefix: str, **options: str) -> tuple[int, str]:
        if prefix == ".write-test-":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(dir=dir, prefix=prefix, **options)

    monkeypatch.setattr("srgan.files.tempfile.mkstemp", read_only)
