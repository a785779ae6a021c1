"""Exact resume: a run killed at a random step and resumed ends bit-identical to an unkilled one.

A step's batch is a pure function of (seed, stage, epoch, step), the learning rate a pure
function of the step, and no training step draws from a global RNG (checked below), so a
periodic checkpoint (weights, optimizer and scaler states, step, best PSNR) holds all a run's
future depends on. The trials SIGKILL scripts/pretrain.py and scripts/train.py at a random
step after their first checkpoint, resume them with `--resume auto`, and compare every tensor
of the final checkpoint with an uninterrupted run's with torch.equal (bit-identical, not close).
"""

import json
import os
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

from srgan.checkpoint import load_checkpoint, resumable_checkpoints, save_checkpoint
from srgan.config import load_config
from srgan.data import TrainCrops, load_images
from srgan.discriminator import Discriminator
from srgan.generator import Generator
from srgan.loop import RunPaths, Stage, prepare_validation, run_stage
from srgan.losses import ContentLoss
from srgan.runtime import Runtime
from srgan.steps import LossWeights, gan_step, pretrain_step

# 12 epochs of one step each (3 tiny images, batch 2); GAN learning rate drops after 6.
RESUME_OVERRIDES = [
    "model.num_blocks=2",
    "model.num_channels=8",
    "model.discriminator_channels=8",
    "data.crop_size=32",
    "pretrain.epochs=12",
    "pretrain.batch_size=2",
    "pretrain.validate_every=2",
    'gan.stages=[{"epochs": 6, "lr": 1e-4}, {"epochs": 6, "lr": 1e-5}]',
    "gan.batch_size=2",
    "gan.validate_every=2",
    "gan.vgg_weights=random",
    "gan.content_layer=vgg22",
    "runtime.device=cpu",
    "runtime.precision=fp32",
    "runtime.deterministic=true",
    "runtime.log_every=1",  # one metrics row per step: the trials watch it to time the kill
    "runtime.keep_checkpoints=3",
]
CHECKPOINT_EVERY = 2
SCRIPT_TIMEOUT = 240


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
    args: dict[str, list[str]]  # script -> arguments, without --run-dir
    end_step: int
    gan_lr_drop: int  # first step at the GAN's second learning rate


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: TinyDataset) -> Setup:
    folder = tmp_path_factory.mktemp("resume")
    pretrained = write_generator_checkpoint(folder / "pretrained.pt")
    common = ["--config", str(tiny_dataset.config_file)]
    overrides = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
        f"gan.pretrained_generator={pretrained}",
        *RESUME_OVERRIDES,
    ]
    for override in overrides:
        common += ["--set", override]
    common += ["--checkpoint-every", str(CHECKPOINT_EVERY)]
    config = load_config(tiny_dataset.config_file, overrides)
    crops = TrainCrops(load_images(tiny_dataset.train_dir, 32), 32)
    steps_per_epoch = crops.steps_per_epoch(config.pretrain.batch_size)
    assert config.gan.batch_size == config.pretrain.batch_size
    end_step = config.pretrain.epochs * steps_per_epoch
    assert end_step == sum(s.epochs for s in config.gan.stages) * steps_per_epoch >= 10
    gan_lr_drop = config.gan.stages[0].epochs * steps_per_epoch
    return Setup(folder, {"pretrain.py": common, "train.py": common}, end_step, gan_lr_drop)


def start(script: str, args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(SCRIPTS / script), *args],
            env=SCRIPT_ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def last_logged_step(metrics_file: Path) -> int:
    if not metrics_file.is_file():
        return 0
    steps = [0]
    for line in metrics_file.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:  # a line still being written
            pass
    return max(steps)


def signal_after_step(
    process: subprocess.Popen, metrics_file: Path, step: int, number: int, delay: float
) -> None:
    """Send signal `number` `delay` seconds after the run logs `step` (poll every 2 ms)."""
    while process.poll() is None:
        if last_logged_step(metrics_file) >= step:
            time.sleep(delay)
            process.send_signal(number)
            break
        time.sleep(0.002)
    process.wait(timeout=SCRIPT_TIMEOUT)


def resume(script: str, setup: Setup, run_dir: Path) -> subprocess.CompletedProcess:
    args = [*setup.args[script], "--run-dir", str(run_dir), "--resume", "auto"]
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        env=SCRIPT_ENV,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )


@dataclass(frozen=True)
class Trial:
    script: str
    seed: int  # picks the step and the moment of the interruption
    earliest: int  # interrupt after this step at the earliest (the first checkpoint is at 2)
    latest_before_end: int = 3  # ... and at the latest this many steps before the end
    truncate_newest: bool = False  # cut the newest checkpoint in half before resuming
    signal_number: int = signal.SIGKILL


@dataclass
class TrialRun:
    run_dir: Path
    interrupted_at: int  # the step the run had logged when it was signalled
    interrupted: subprocess.CompletedProcess
    resumed: subprocess.CompletedProcess
    truncated: Path | None


TRIALS = {
    "pretrain-kill-1": Trial("pretrain.py", seed=1, earliest=3),
    # Two checkpoints exist from step 5 on, so the previous one is there to fall back to.
    "pretrain-kill-2": Trial("pretrain.py", seed=2, earliest=5, truncate_newest=True),
    "pretrain-sigterm": Trial("pretrain.py", seed=3, earliest=3, signal_number=signal.SIGTERM),
    # Killed before the learning-rate drop (step 6): the resumed run crosses it.
    "gan-kill-1": Trial("train.py", seed=1, earliest=3, latest_before_end=7),
    "gan-kill-2": Trial("train.py", seed=2, earliest=3),
}


def run_trial(label: str, trial: Trial, setup: Setup) -> TrialRun:
    rng = random.Random(trial.seed)
    # A busy machine may let a run finish before the signal lands: try again in a new folder.
    for attempt in range(3):
        run_dir = setup.folder / f"{label}-{attempt}"
        run_dir.mkdir()
        target = rng.randint(trial.earliest, setup.end_step - trial.latest_before_end)
        log = run_dir / "interrupted.log"
        args = [*setup.args[trial.script], "--run-dir", str(run_dir)]
        process = start(trial.script, args, log)
        # The delay puts the signal anywhere in the next step: mid-step, mid-save, mid-log.
        signal_after_step(
            process, run_dir / "metrics.jsonl", target, trial.signal_number, rng.uniform(0, 0.05)
        )
        interrupted_at = last_logged_step(run_dir / "metrics.jsonl")
        if process.returncode != 0:
            break
    interrupted = subprocess.CompletedProcess(process.args, process.returncode, log.read_text())
    truncated = None
    if trial.truncate_newest:
        truncated = resumable_checkpoints(run_dir / "checkpoints", "srresnet_x4_tiny")[0]
        truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    resumed = resume(trial.script, setup, run_dir)
    return TrialRun(run_dir, interrupted_at, interrupted, resumed, truncated)


@pytest.fixture(scope="module")
def runs(setup: Setup) -> dict[str, TrialRun | subprocess.CompletedProcess]:
    """The two uninterrupted reference runs and every trial, a few at a time."""
    with ThreadPoolExecutor(PARALLEL_SCRIPTS) as pool:
        references = {}
        for script in ("pretrain.py", "train.py"):
            run_dir = setup.folder / f"reference-{script}"
            args = [*setup.args[script], "--run-dir", str(run_dir)]
            references[script] = pool.submit(
                subprocess.run,
                [sys.executable, str(SCRIPTS / script), *args],
                env=SCRIPT_ENV,
                capture_output=True,
                text=True,
                timeout=SCRIPT_TIMEOUT,
            )
        trials = {label: pool.submit(run_trial, label, t, setup) for label, t in TRIALS.items()}
        return {
            **{script: future.result() for script, future in references.items()},
            **{label: future.result() for label, future in trials.items()},
        }


def final_state(run_dir: Path, script: str) -> dict:
    kind = "srresnet" if script == "pretrain.py" else "srgan"
    state = load_checkpoint(run_dir / "checkpoints" / f"{kind}_x4_tiny_final.pt")
    state["metrics"].pop("steps_per_second")  # the only value that may differ
    return state


def differences(reference: object, resumed: object, where: str = "") -> list[str]:
    """Paths in two nested checkpoint states where they differ (tensors: bit for bit)."""
    if isinstance(reference, torch.Tensor):
        same = isinstance(resumed, torch.Tensor) and reference.dtype == resumed.dtype
        return [] if same and torch.equal(reference, resumed) else [where]
    if isinstance(reference, dict):
        if not isinstance(resumed, dict) or reference.keys() != resumed.keys():
            return [f"{where} (keys)"]
        return [d for k in reference for d in differences(reference[k], resumed[k], f"{where}.{k}")]
    if isinstance(reference, list | tuple):
        if not isinstance(resumed, list | tuple) or len(reference) != len(resumed):
            return [f"{where} (length)"]
        pairs = zip(reference, resumed, strict=True)
        return [d for i, (a, b) in enumerate(pairs) for d in differences(a, b, f"{where}[{i}]")]
    return [] if reference == resumed else [where]


def metrics_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "steps_per_second"} for row in rows]


@pytest.mark.parametrize("label", list(TRIALS))
def test_interrupted_run_resumes_bit_identical(
    runs: dict, setup: Setup, label: str
) -> None:
    trial, run = TRIALS[label], runs[label]
    reference = runs[trial.script]
    assert reference.returncode == 0, describe(reference)
    expected_code = -signal.SIGKILL if trial.signal_number == signal.SIGKILL else 143
    assert run.interrupted.returncode == expected_code, describe(run.interrupted)
    assert trial.earliest <= run.interrupted_at < setup.end_step
    assert run.resumed.returncode == 0, describe(run.resumed)
    stage = "pretrain" if trial.script == "pretrain.py" else "gan"
    resumed_line = next(line for line in run.resumed.stdout.splitlines() if "resumed" in line)
    resumed_from, resumed_step = resumed_line.split(" from ")[1].rsplit(" at step ", 1)
    assert resumed_line.startswith(f"resumed {stage} from ")
    assert CHECKPOINT_EVERY <= int(resumed_step) <= run.interrupted_at
    if trial.truncate_newest:
        assert f"skipping unusable checkpoint: {run.truncated} is truncated" in run.resumed.stdout
        assert Path(resumed_from) != run.truncated
    if trial.script == "train.py" and trial.latest_before_end > 3:
        assert int(resumed_step) < setup.gan_lr_drop  # the resumed part crosses the drop
    reference_dir = setup.folder / f"reference-{trial.script}"
    expected = final_state(reference_dir, trial.script)
    resumed = final_state(run.run_dir, trial.script)
    assert expected["step"] == setup.end_step
    assert differences(expected, resumed) == []
    modules = ["generator"] if stage == "pretrain" else ["generator", "discriminator"]
    assert all(name in resumed for name in modules)
    # The log is rewound to the checkpoint and redone: the same rows, none twice.
    assert metrics_rows(run.run_dir) == metrics_rows(reference_dir)
    # No temp file of a save cut short by the kill is left behind.
    assert not list((run.run_dir / "checkpoints").glob(".*.tmp"))


def test_sigterm_saves_after_the_step_and_tells_how_to_resume(runs: dict, setup: Setup) -> None:
    run = runs["pretrain-sigterm"]
    lines = run.interrupted.stdout.strip().splitlines()
    assert lines[-1].startswith("resume with: python "), describe(run.interrupted)
    assert lines[-1].endswith(" --resume auto")
    assert f"--run-dir {run.run_dir}" in lines[-1]
    stopped, saved = lines[-2].split("; checkpoint ")
    step = int(stopped.rsplit(" ", 1)[1])
    assert stopped == f"stopped by SIGTERM after step {step}"
    assert step >= run.interrupted_at  # it finished the step it was in, then saved
    assert load_checkpoint(saved)["step"] == step
    assert f"resumed pretrain from {saved} at step {step}" in run.resumed.stdout


def test_training_draws_nothing_from_global_rngs(
    tiny_dataset: TinyDataset, content_losses: dict[str, ContentLoss], tmp_path: Path
) -> None:
    """So no RNG state needs saving: the GAN loop, validation included, leaves them untouched."""
    config = load_config(None, [f"data.train_dir={tiny_dataset.train_dir}", *RESUME_OVERRIDES])
    runtime = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)
    crops = TrainCrops(load_images(tiny_dataset.train_dir, 32), 32)
    validation = prepare_validation([("valid", load_images(tiny_dataset.valid_dir, 32)[0])], config)
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    discriminator = Discriminator(crop_size=32, num_channels=8)
    optimizers = {
        "generator": torch.optim.Adam(generator.parameters()),
        "discriminator": torch.optim.Adam(discriminator.parameters()),
    }
    scalers = {"generator": runtime.grad_scaler(), "discriminator": runtime.grad_scaler()}

    def step_fn(lr_image: torch.Tensor, hr_image: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = gan_step(
            generator,
            discriminator,
            discriminator,
            content_losses["vgg22"],
            *optimizers.values(),
            *scalers.values(),
            LossWeights(),
            runtime,
            lr_image,
            hr_image,
        )
        pretrain_step(generator, optimizers["generator"], scalers["generator"], runtime, lr_image, hr_image)
        return losses

    stage = Stage(
        name="gan",
        kind="srgan",
        stage_id=1,
        batch_size=2,
        epochs=4,
        validate_every=1,
        lr_at=lambda step: 1e-4,
        modules={"generator": generator, "discriminator": discriminator},
        optimizers=optimizers,
        scalers=scalers,
    )
    before = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    result = run_stage(
        stage,
        step_fn,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=validation,
        paths=RunPaths(tmp_path, tmp_path / "checkpoints"),
        checkpoint_every=2,
    )
    assert result["step"] == 4 and result["best_psnr_y"] > 0  # it trained and validated
    after = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    assert torch.equal(before[0], after[0])
    assert differences(list(before[1]), list(after[1])) == [] and before[2] == after[2]
    for module in (generator, discriminator):
        assert not any(isinstance(m, torch.nn.Dropout) for m in module.modules())
