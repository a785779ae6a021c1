"""Soak: runs SIGKILLed again and again lose nothing and end where an unkilled run ends.

A tiny pretraining of 30 steps saves a checkpoint at every step, keeps 2 and validates every
5 steps on two 256 px images (about 0.4 s, far longer than a step). It is killed
`SRGAN_SOAK_CYCLES` times (6 by default so the suite stays fast; the long form is
`SRGAN_SOAK_CYCLES=20 bash scripts/test.sh tests/test_soak.py`), each time resumed with
`--resume auto`, and finally run to its end:
- half the kills land at random moments around a logged step: during its checkpoint write,
  or the next step;
- the other half aim at a validation: 30-250 ms after the step before it is logged, and count
  only if the validated step's metrics row was not written yet (the kill came before the
  validation ended).
Its final checkpoint and sample strips must equal an uninterrupted run's bit for bit, with no
temp file left and one metrics row per step.

Then the finished run is started over with `--fresh` (another seed), killed while it moves the
earlier run's files aside and while it trains, started over again, and run for 10 steps: every
file and metrics row of the earlier run must still exist, in its place or under old-<time>/,
and the folder itself must hold the new run's records only.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SCRIPT_ENV, SCRIPTS, TinyDataset, describe, smooth_image
from PIL import Image
from test_resume import RESUME_OVERRIDES, last_logged_step

from srgan.benchmark.device_checks import state_differences
from srgan.checkpoint import load_checkpoint

STEPS = 30
VALIDATE_EVERY = 5  # steps: one step per epoch
CYCLES = int(os.environ.get("SRGAN_SOAK_CYCLES", "6"))
TIMEOUT = 300


@dataclass(frozen=True)
class Soak:
    reference: Path  # run folders: uninterrupted
    soaked: Path  # killed CYCLES times, resumed each time, finished
    command: list[str]  # the soaked run's command (with --resume auto)
    kills: int
    validation_kills: int


def pretrain_command(tiny_dataset: TinyDataset, valid_dir: Path, run_dir: Path) -> list[str]:
    overrides = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={valid_dir}",
        *RESUME_OVERRIDES,
        f"pretrain.epochs={STEPS}",
        f"pretrain.validate_every={VALIDATE_EVERY}",
        "runtime.checkpoint_every=1",
        "runtime.keep_checkpoints=2",
    ]
    command = [sys.executable, str(SCRIPTS / "pretrain.py"), "--config"]
    command += [str(tiny_dataset.config_file), "--run-dir", str(run_dir), "--resume", "auto"]
    for override in overrides:
        command += ["--set", override]
    return command


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=SCRIPT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def kill_after(process: subprocess.Popen, metrics_file: Path, step: int, delay: float) -> None:
    """SIGKILL `delay` s after the run logs `step`; returns when the process is gone."""
    while process.poll() is None:
        if last_logged_step(metrics_file) >= step:
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=TIMEOUT)


def kill_cycle(command: list[str], metrics_file: Path, rng: random.Random, aim: str) -> tuple:
    """One run killed as `aim` says ("step" or "validation"): (killed, landed in validation)."""
    reached = last_logged_step(metrics_file)
    process = start(command)
    if aim == "validation":
        validated = (reached // VALIDATE_EVERY + 1) * VALIDATE_EVERY
        kill_after(process, metrics_file, validated - 1, rng.uniform(0.03, 0.25))
        landed = last_logged_step(metrics_file) == validated - 1
    else:  # up to 4 ms after a logged step: during its checkpoint write, or the next step
        kill_after(process, metrics_file, reached + rng.randint(1, 3), rng.uniform(0, 0.004))
        landed = False
    killed = process.returncode == -signal.SIGKILL
    return killed, killed and landed


@pytest.fixture(scope="module")
def soak(tiny_dataset: TinyDataset, tmp_path_factory: pytest.TempPathFactory) -> Soak:
    root = tmp_path_factory.mktemp("soak")
    valid_dir = root / "valid"  # large enough that a validation outlasts many steps
    valid_dir.mkdir()
    rng_images = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(smooth_image(rng_images, 256, 256)).save(valid_dir / f"{index}.png")
    reference_dir, soaked_dir = root / "reference", root / "soaked"
    command = pretrain_command(tiny_dataset, valid_dir, soaked_dir)
    reference = start(pretrain_command(tiny_dataset, valid_dir, reference_dir))
    rng = random.Random(0)
    metrics_file = soaked_dir / "metrics.jsonl"
    kills = validation_kills = 0
    for cycle in range(CYCLES):
        if last_logged_step(metrics_file) >= STEPS - VALIDATE_EVERY:
            break
        killed, in_validation = kill_cycle(
            command, metrics_file, rng, "validation" if cycle % 2 else "step"
        )
        kills += killed
        validation_kills += in_validation
    finished = subprocess.run(command, env=SCRIPT_ENV, capture_output=True, text=True)
    assert finished.returncode == 0, describe(finished)
    assert reference.wait(timeout=TIMEOUT) == 0
    return Soak(reference_dir, soaked_dir, command, kills, validation_kills)


def final_state(run_dir: Path) -> dict:
    state = load_checkpoint(run_dir / "checkpoints" / "srresnet_x4_tiny_final.pt")
    state["metrics"].pop("steps_per_second")
    return state


def strips(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "samples").iterdir())}


def test_repeated_kills_and_resumes_end_bit_identical(soak: Soak) -> None:
    assert soak.kills >= min(CYCLES, 3)
    assert soak.validation_kills >= min(CYCLES // 2, 2)
    assert state_differences(final_state(soak.reference), final_state(soak.soaked)) == []
    validated = range(VALIDATE_EVERY, STEPS + 1, VALIDATE_EVERY)
    assert list(strips(soak.soaked)) == [f"pretrain_step{step:08d}.png" for step in validated]
    assert strips(soak.soaked) == strips(soak.reference)  # the same pictures, byte for byte
    checkpoints = soak.soaked / "checkpoints"
    assert not list(checkpoints.glob(".*.tmp")), "temp files left behind"
    rows = [json.loads(line) for line in (soak.soaked / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "event" not in row] == list(range(1, STEPS + 1))
    periodic = sorted(path.name for path in checkpoints.glob("*_step*.pt"))
    assert len(periodic) <= 2, periodic
    assert (soak.soaked / ".lock").read_text() == ""
    generator = torch.load(checkpoints / "srresnet_x4_tiny_final.pt", weights_only=True)
    assert generator["step"] == STEPS


def everything(run_dir: Path) -> tuple[list[bytes], list[dict]]:
    """The bytes of every file under `run_dir` (archives included), and every metrics row.
    Left out: the lock, and curves.png, a picture of the metrics (archived with the rows)."""
    files = [
        path.read_bytes()
        for path in run_dir.rglob("*")
        if path.is_file() and path.name not in (".lock", "curves.png")
    ]
    rows = []
    for metrics in run_dir.rglob("metrics.jsonl"):
        for line in metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a copy cut short by a kill: another copy is whole
                continue
    return files, rows


def fresh_attempt(command: list[str], run_dir: Path, rng: random.Random, aim: str) -> bool:
    """Start `command` (a --fresh run) and SIGKILL it, aiming at the moment it moves the
    earlier run's files aside (`aim` "archive": a new old-<time>/ folder appears, or training
    starts when there was nothing to move) or at its first steps ("training": a checkpoint
    of its own appears). Returns whether it was killed."""
    checkpoints, config = run_dir / "checkpoints", run_dir / "config.json"
    archives, steps = set(checkpoints.glob("old-*")), set(checkpoints.glob("*_step*.pt"))
    config_written = config.stat().st_mtime_ns
    process = start(command)
    while process.poll() is None:
        if aim == "archive":
            began = set(checkpoints.glob("old-*")) != archives
            began |= config.stat().st_mtime_ns != config_written
        else:
            began = bool(set(checkpoints.glob("*_step*.pt")) - steps)
        if began:
            break
        time.sleep(0.0005)
    # Moving a finished run aside takes a few ms: about one archive kill in four lands in it.
    time.sleep(rng.uniform(0, 0.002) if aim == "archive" else rng.uniform(0, 0.05))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    return process.returncode == -signal.SIGKILL


def test_kills_during_fresh_lose_nothing_of_the_earlier_run(soak: Soak, tmp_path: Path) -> None:
    run_dir = tmp_path / "soaked"
    shutil.copytree(soak.soaked, run_dir)
    earlier_files, earlier_rows = everything(run_dir)
    command = [*soak.command, "--seed", "1"]  # another run: its files differ from the earlier
    command[command.index("--run-dir") + 1] = str(run_dir)
    command.remove("auto")
    command[command.index("--resume")] = "--fresh"
    rng = random.Random(1)
    # The third attempt moves aside the run the second one had begun.
    aims = ("archive", "training", "archive")
    kills = sum(fresh_attempt(command, run_dir, rng, aim) for aim in aims)
    last = [*command, "--max-steps", str(2 * VALIDATE_EVERY)]  # enough to compare strips
    finished = subprocess.run(last, env=SCRIPT_ENV, capture_output=True, text=True)
    assert finished.returncode == 0, describe(finished)
    assert kills == len(aims)

    files, rows = everything(run_dir)
    lost = [index for index, data in enumerate(earlier_files) if data not in files]
    assert lost == [], f"{len(lost)} of the earlier run's files are gone"
    assert [row for row in earlier_rows if row not in rows] == []
    # The folder itself holds the new run only: its metrics, strips and config.
    new_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in new_rows] == list(range(1, 2 * VALIDATE_EVERY + 1))
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 1
    new_strips, earlier_strips = strips(run_dir), strips(soak.soaked)
    assert list(new_strips) == [f"pretrain_step{step:08d}.png" for step in (5, 10)]
    assert all(new_strips[name] != earlier_strips[name] for name in new_strips)
    assert not list(run_dir.rglob(".*.tmp")), "temp files left behind"
