"""Exact resume: a run killed at a random step and resumed ends bit-identical to an unkilled one.

A step's batch is a pure function of (seed, stage, epoch, step), the learning rate a pure
function of the step, and no training step draws from a global RNG (checked below), so a
periodic checkpoint (weights, optimizer and scaler states, step, best PSNR) holds all a run's
future depends on. The trials SIGKILL scripts/pretrain.py and scripts/train.py at a random
step after their first checkpoint, resume them with `--resume auto`, and compare every tensor
of the final checkpoint with an uninterrupted run's with torch.equal (bit-identical, not close).
"""

import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PARALLEL_SCRIPTS, SCRIPT_ENV, SCRIPTS, TinyDataset, describe

from srgan.benchmark.device_checks import state_differences
from srgan.checkpoint import load_checkpoint, save_checkpoint
from srgan.config import load_config
from srgan.data.crops import TrainCrops, load_images
from srgan.eval.protocol import load_validation_images
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator
from srgan.models.losses import ContentLoss, GanLosses
from srgan.run.checkpoints import resumable_checkpoints
from srgan.run.folder import RunPaths
from srgan.run.runtime import Runtime
from srgan.train.loop import Stage, run_stage
from srgan.train.networks import Network
from srgan.train.steps import Batch, gan_step, pretrain_step

# 20 epochs of one step each (3 tiny images, batch 2); the GAN's learning rate drops after 10.
# The last few steps are a margin: on a busy machine the signal may land steps after its aim.
END_STEP = 20
LR_DROP = 10
CHECKPOINT_EVERY = 2
RESUME_OVERRIDES = [
    "model.num_blocks=2",
    "model.num_channels=8",
    "model.discriminator_channels=8",
    "data.crop_size=32",
    "pretrain.epochs=20",
    "pretrain.batch_size=2",
    "pretrain.validate_every=2",
    'gan.lr_phases=[{"epochs": 10, "lr": 1e-4}, {"epochs": 10, "lr": 1e-5}]',
    "gan.batch_size=2",
    "gan.validate_every=2",
    "gan.vgg_weights=random",
    "gan.content_loss=vgg22",
    "runtime.device=cpu",
    "runtime.precision=fp32",
    "runtime.deterministic=true",
    "runtime.log_every=1",  # one metrics row per step: the trials watch it to time the kill
    "runtime.keep_checkpoints=3",
]
SCRIPT_TIMEOUT = 240
KIND = {"pretrain.py": "srresnet", "train.py": "srgan"}


def write_generator_checkpoint(
    path: Path, *, scale: int = 4, num_blocks: int = 2, num_channels: int = 8
) -> Path:
    """A pretrained-SRResNet checkpoint as scripts/train.py expects (generator only)."""
    torch.manual_seed(0)
    generator = Generator(scale=scale, num_blocks=num_blocks, num_channels=num_channels)
    model = {"scale": scale, "num_blocks": num_blocks, "num_channels": num_channels}
    state = {"kind": "srresnet", "stage": "pretrain", "step": 0, "model": model}
    save_checkpoint({**state, "generator": generator.state_dict(), "best_psnr_y": 0.0}, path)
    return path


@dataclass(frozen=True)
class Setup:
    folder: Path
    args: list[str]  # for both scripts, without --run-dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: TinyDataset) -> Setup:
    folder = tmp_path_factory.mktemp("resume")
    overrides = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
        f"gan.pretrained_generator={write_generator_checkpoint(folder / 'pretrained.pt')}",
        *RESUME_OVERRIDES,
    ]
    # END_STEP and LR_DROP assume one step per epoch: check the shared dataset still gives that.
    assert TrainCrops(load_images(tiny_dataset.train_dir, 32), 32).steps_per_epoch(2) == 1
    args = ["--config", str(tiny_dataset.config_file)]
    for override in overrides:
        args += ["--set", override]
    return Setup(folder, [*args, "--checkpoint-every", str(CHECKPOINT_EVERY)])


def script_command(script: str, setup: Setup, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / script), *setup.args, "--run-dir", str(run_dir), *extra]


def run_command(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env=SCRIPT_ENV, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT
    )


def last_logged_step(metrics_file: Path) -> int:
    if not metrics_file.is_file():
        return 0
    steps = [0]
    for line in metrics_file.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line still being written
            steps.append(json.loads(line)["step"])
    return max(steps)


def signal_after_step(
    process: subprocess.Popen, metrics_file: Path, step: int, number: int, delay: float
) -> None:
    """Send signal `number` `delay` seconds after the run logs `step` (polled every 2 ms)."""
    while process.poll() is None:
        if last_logged_step(metrics_file) >= step:
            time.sleep(delay)
            process.send_signal(number)
            break
        time.sleep(0.002)
    process.wait(timeout=SCRIPT_TIMEOUT)


@dataclass(frozen=True)
class Trial:
    script: str
    seed: int  # picks the step and the moment of the interruption
    steps: tuple[int, int]  # interrupt after a step in this range (first checkpoint: step 2)
    truncate_newest: bool = False  # cut the newest checkpoint in half before resuming
    signal_number: int = signal.SIGKILL


@dataclass
class TrialRun:
    run_dir: Path
    interrupted_at: int  # the last step the run logged before it died
    interrupted: subprocess.CompletedProcess  # stdout: stdout and stderr together
    resumed: subprocess.CompletedProcess
    truncated: Path | None


TRIALS = {
    "pretrain-kill-1": Trial("pretrain.py", seed=1, steps=(3, END_STEP - 8)),
    # From step 5 on two checkpoints exist, so there is a previous one to fall back to.
    "pretrain-kill-2": Trial("pretrain.py", 2, (5, END_STEP - 8), truncate_newest=True),
    "pretrain-sigterm": Trial("pretrain.py", 3, (3, END_STEP - 8), signal_number=signal.SIGTERM),
    # Killed before the learning-rate drop, so that the resumed run crosses it.
    "gan-kill-1": Trial("train.py", seed=1, steps=(3, LR_DROP - 4)),
    "gan-kill-2": Trial("train.py", seed=2, steps=(3, END_STEP - 8)),
}


def run_trial(label: str, trial: Trial, setup: Setup) -> TrialRun:
    rng = random.Random(trial.seed)
    # A busy machine may let a run reach its end before the signal lands: then try again.
    for attempt in range(3):
        run_dir = setup.folder / f"{label}-{attempt}"
        run_dir.mkdir()
        log = run_dir / "interrupted.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                script_command(trial.script, setup, run_dir),
                env=SCRIPT_ENV,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        # The delay puts the signal anywhere in the next step: mid-step, mid-save, mid-log.
        metrics_file = run_dir / "metrics.jsonl"
        target, delay = rng.randint(*trial.steps), rng.uniform(0, 0.03)
        signal_after_step(process, metrics_file, target, trial.signal_number, delay)
        interrupted_at = last_logged_step(metrics_file)
        if process.returncode != 0 and interrupted_at < END_STEP:
            break
    interrupted = subprocess.CompletedProcess(process.args, process.returncode, log.read_text())
    truncated = None
    if trial.truncate_newest:
        prefix = f"{KIND[trial.script]}_x4_tiny"
        truncated = resumable_checkpoints(run_dir / "checkpoints", prefix)[0]
        truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    resumed = run_command(script_command(trial.script, setup, run_dir, "--resume", "auto"))
    return TrialRun(run_dir, interrupted_at, interrupted, resumed, truncated)


@pytest.fixture(scope="module")
def runs(setup: Setup) -> dict[str, TrialRun | subprocess.CompletedProcess]:
    """The uninterrupted reference run of each script and every trial, a few at a time."""
    with ThreadPoolExecutor(PARALLEL_SCRIPTS) as pool:
        references = {
            script: pool.submit(
                run_command, script_command(script, setup, setup.folder / f"reference-{script}")
            )
            for script in KIND
        }
        trials = {label: pool.submit(run_trial, label, t, setup) for label, t in TRIALS.items()}
        return {
            **{script: future.result() for script, future in references.items()},
            **{label: future.result() for label, future in trials.items()},
        }


def final_state(run_dir: Path, script: str) -> dict:
    state = load_checkpoint(run_dir / "checkpoints" / f"{KIND[script]}_x4_tiny_final.pt")
    state["metrics"].pop("steps_per_second")  # the only value that may differ
    return state


def metrics_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "steps_per_second"} for row in rows]


@pytest.mark.parametrize("label", list(TRIALS))
def test_interrupted_run_resumes_bit_identical(runs: dict, setup: Setup, label: str) -> None:
    trial, run = TRIALS[label], runs[label]
    reference = runs[trial.script]
    assert reference.returncode == 0, describe(reference)
    killed = trial.signal_number == signal.SIGKILL
    assert run.interrupted.returncode == (-signal.SIGKILL if killed else 143), run.interrupted
    assert trial.steps[0] <= run.interrupted_at < END_STEP
    assert run.resumed.returncode == 0, describe(run.resumed)
    stage = "pretrain" if trial.script == "pretrain.py" else "gan"
    resumed_line = next(line for line in run.resumed.stdout.splitlines() if "resumed" in line)
    assert resumed_line.startswith(f"resumed {stage} from "), resumed_line
    resumed_from, resumed_step = resumed_line.split(" from ")[1].rsplit(" at step ", 1)
    assert CHECKPOINT_EVERY <= int(resumed_step) <= run.interrupted_at
    if trial.truncate_newest:
        assert f"skipping unusable checkpoint: {run.truncated} is truncated" in run.resumed.stdout
        assert Path(resumed_from) != run.truncated
    if trial.steps[1] < LR_DROP:  # the resumed part crosses the learning-rate drop
        assert int(resumed_step) < LR_DROP, resumed_line
    reference_dir = setup.folder / f"reference-{trial.script}"
    expected = final_state(reference_dir, trial.script)
    resumed = final_state(run.run_dir, trial.script)
    assert expected["step"] == END_STEP
    assert state_differences(expected, resumed) == []
    assert "generator" in resumed and ("discriminator" in resumed) == (stage == "gan")
    # The log is rewound to the checkpoint and redone: the same rows, none twice.
    assert metrics_rows(run.run_dir) == metrics_rows(reference_dir)
    # No temp file of a save cut short by the kill is left behind.
    assert not list((run.run_dir / "checkpoints").glob(".*.tmp"))


def test_sigterm_saves_after_the_step_and_tells_how_to_resume(runs: dict) -> None:
    run = runs["pretrain-sigterm"]
    lines = run.interrupted.stdout.strip().splitlines()
    assert lines[-1].startswith("resume with: python "), run.interrupted.stdout
    assert lines[-1].endswith(f"--run-dir {run.run_dir} --resume auto")
    stopped, saved = lines[-2].split("; checkpoint ")
    # It finished the step it was in, logged it, saved it, and stopped; the resume starts there.
    assert stopped == f"stopped by SIGTERM after step {run.interrupted_at}"
    assert saved.endswith(f"_step{run.interrupted_at:08d}.pt")
    assert f"resumed pretrain from {saved} at step {run.interrupted_at}" in run.resumed.stdout


@pytest.mark.parametrize("stage_name", ["pretrain", "gan"])
def test_training_draws_nothing_from_global_rngs(
    stage_name: str,
    tiny_dataset: TinyDataset,
    content_losses: dict[str, ContentLoss],
    tmp_path: Path,
) -> None:
    """So no RNG state needs saving: the loop, steps and validation leave the RNGs untouched."""
    folders = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
    ]
    config = load_config(None, [*folders, *RESUME_OVERRIDES, "runtime.checkpoint_every=2"])
    runtime = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    discriminator = Discriminator(crop_size=32, num_channels=8)
    modules = {"generator": generator, "discriminator": discriminator}
    networks = {
        name: Network.plain(module, torch.optim.Adam(module.parameters()), runtime.grad_scaler())
        for name, module in modules.items()
    }
    if stage_name == "pretrain":
        del networks["discriminator"]

    def step_fn(batch: Batch) -> dict[str, torch.Tensor]:
        if stage_name == "pretrain":
            return pretrain_step(networks["generator"], runtime, batch)
        return gan_step(*networks.values(), GanLosses(content_losses["vgg22"]), runtime, batch)

    stage = Stage(
        name=stage_name,
        kind=KIND["pretrain.py" if stage_name == "pretrain" else "train.py"],
        stage_id=0,
        batch_size=2,
        epochs=4,
        validate_every=1,
        lr_at=lambda step: 1e-4,
        networks=networks,
        step=step_fn,
    )
    before = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    result = run_stage(
        stage,
        config=config,
        runtime=runtime,
        crops=TrainCrops(load_images(tiny_dataset.train_dir, 32), 32),
        validation=load_validation_images(tiny_dataset.valid_dir, 4),
        paths=RunPaths(tmp_path, tmp_path / "checkpoints"),
    )
    assert result["step"] == 4 and result["best_psnr_y"] > 0  # it trained and validated
    after = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    assert torch.equal(before[0], after[0])
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1], strict=True))
    assert before[2] == after[2]
    for module in modules.values():  # nothing random in the forward passes either
        assert not any(isinstance(m, torch.nn.Dropout) for m in module.modules())
