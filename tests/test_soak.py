"""Soak: a run SIGKILLed again and again, some kills landing mid-save, ends bit-identical.

A tiny pretraining of 30 steps saves a checkpoint at every step and keeps 2. It is killed at
random moments (`SRGAN_SOAK_CYCLES` times, 6 by default so the suite stays fast; the long form
is `SRGAN_SOAK_CYCLES=20 bash scripts/test.sh tests/test_soak.py`), resumed with
`--resume auto` each time, and finally run to its end. Its final checkpoint must equal an
uninterrupted run's bit for bit, with no temp file left and one metrics row per step.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import SCRIPT_ENV, SCRIPTS, describe
from test_resume import RESUME_OVERRIDES, differences, last_logged_step

from srgan.checkpoint import load_checkpoint

STEPS = 30
CYCLES = int(os.environ.get("SRGAN_SOAK_CYCLES", "6"))


def pretrain_command(tiny_dataset, run_dir: Path) -> list[str]:
    overrides = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
        *RESUME_OVERRIDES,
        f"pretrain.epochs={STEPS}",
        "pretrain.validate_every=5",
        "runtime.checkpoint_every=1",
        "runtime.keep_checkpoints=2",
    ]
    command = [sys.executable, str(SCRIPTS / "pretrain.py"), "--config"]
    command += [str(tiny_dataset.config_file), "--run-dir", str(run_dir), "--resume", "auto"]
    for override in overrides:
        command += ["--set", override]
    return command


def kill_after(process: subprocess.Popen, metrics_file: Path, step: int, delay: float) -> None:
    """SIGKILL `delay` s after the run logs `step`; returns when the process is gone."""
    while process.poll() is None:
        if last_logged_step(metrics_file) >= step:
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=120)


def final_state(run_dir: Path) -> dict:
    state = load_checkpoint(run_dir / "checkpoints" / "srresnet_x4_tiny_final.pt")
    state["metrics"].pop("steps_per_second")
    return state


def test_repeated_kills_and_resumes_end_bit_identical(tiny_dataset, tmp_path: Path) -> None:
    reference_dir, soaked_dir = tmp_path / "reference", tmp_path / "soaked"
    command = pretrain_command(tiny_dataset, soaked_dir)
    reference = subprocess.Popen(
        pretrain_command(tiny_dataset, reference_dir), env=SCRIPT_ENV, stdout=subprocess.DEVNULL
    )
    rng = random.Random(0)
    metrics_file = soaked_dir / "metrics.jsonl"
    kills = 0
    for _ in range(CYCLES):
        reached = last_logged_step(metrics_file)
        if reached >= STEPS - 2:
            break
        process = subprocess.Popen(
            command, env=SCRIPT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Up to 4 ms after a logged step: during its checkpoint write, or the next step.
        kill_after(process, metrics_file, reached + rng.randint(1, 3), rng.uniform(0, 0.004))
        kills += process.returncode == -signal.SIGKILL
    finished = subprocess.run(command, env=SCRIPT_ENV, capture_output=True, text=True)
    assert finished.returncode == 0, describe(finished)
    assert reference.wait(timeout=300) == 0
    assert kills >= min(CYCLES, 3)

    assert differences(final_state(reference_dir), final_state(soaked_dir)) == []
    checkpoints = soaked_dir / "checkpoints"
    assert not list(checkpoints.glob(".*.tmp")), "temp files left behind"
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert [row["step"] for row in rows if "event" not in row] == list(range(1, STEPS + 1))
    periodic = sorted(path.name for path in checkpoints.glob("*_step*.pt"))
    assert len(periodic) <= 2, periodic
    assert (soaked_dir / ".lock").read_text() == ""
    generator = torch.load(checkpoints / "srresnet_x4_tiny_final.pt", weights_only=True)
    assert generator["step"] == STEPS
