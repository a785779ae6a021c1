"""The training loop shared by both stages: batches, learning rate, one step each, and at log
steps the run's checks in the order they must happen.

The loop knows nothing about losses: it prepares each batch (`srgan.train.steps`), calls
`stage.step(batch)` and hands the loss terms to the stage's `Run` (`srgan.run.run`), which
keeps every record and checkpoint. The learning rate is a pure function of the step and each
batch a pure function of (seed, stage, epoch, step) (see `srgan.data.crops`), and no step
draws from a global RNG, so a run resumed from a periodic checkpoint continues bit for bit
where it stopped.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from srgan.config import Config
from srgan.data.crops import BatchStream, TrainCrops
from srgan.eval.protocol import EvalImage
from srgan.files import WriteError
from srgan.run.folder import RunPaths
from srgan.run.run import Schedule, open_run
from srgan.run.runtime import Runtime
from srgan.run.signals import StopNow, StoppedBySignal
from srgan.train.averaging import WeightAverage
from srgan.train.networks import Network
from srgan.train.steps import Batch, Degradation, prepare_batch

StepFn = Callable[[Batch], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Stage:
    """What differs between pretraining and GAN training, for the shared loop."""

    name: str  # "pretrain" or "gan", the stage label in the logs
    kind: str  # "srresnet" or "srgan", the checkpoint file prefix
    stage_id: int  # part of the data seed, so the two stages draw different crops
    batch_size: int
    epochs: int
    validate_every: int  # in epochs
    lr_at: Callable[[int], float]  # learning rate as a function of the global step
    networks: dict[str, Network]  # "generator" first; all are checkpointed
    step: StepFn  # one optimizer step on a prepared batch -> its loss terms
    extra_state: dict = field(default_factory=dict)  # saved as is (e.g. which VGG weights)
    # Each network's learning rate is lr_at(step) times its factor here (default 1).
    lr_factors: dict[str, float] = field(default_factory=dict)
    # {file name: text} written into the log folder with config.json, once the run folder's
    # checks pass (e.g. a warning that the VGG weights are random).
    log_files: dict[str, str] = field(default_factory=dict)
    # The generator's weight average, when kept: validated and saved in place of the generator.
    average: WeightAverage | None = None
    # With an average: also score the trained generator (`valid_trained/*` in the metrics).
    validate_trained: bool = False


def set_learning_rate(
    networks: dict[str, Network], learning_rate: float, factors: dict[str, float]
) -> None:
    for name, network in networks.items():
        for group in network.optimizer.param_groups:
            group["lr"] = learning_rate * factors.get(name, 1.0)


def run_stage(
    stage: Stage,
    *,
    config: Config,
    runtime: Runtime,
    crops: TrainCrops,
    validation: list[EvalImage],
    paths: RunPaths,
    resume: str | None = None,
    fresh: bool = False,
    max_steps: int | None = None,
) -> dict:
    """Train one stage to its end (or `max_steps`); returns {"step", "best_psnr_y", "final"}.
    `resume`: "auto" or a checkpoint path; None starts at step 0, refused in a folder holding an
    earlier run of the stage unless `fresh` (which moves its files aside)."""
    schedule = stage_schedule(stage, config, crops, max_steps)
    run = open_run(stage, config, runtime, paths, validation, schedule)
    step = run.start(resume, fresh)
    if step is None:
        return run.finished_earlier()
    data = config.data
    degradation = Degradation(config.model.scale, data.degradation, data.gaussian_sigma)
    steps = range(step, schedule.end_step)
    try:
        # The stream closes (its thread joined) on every way out, before the guard goes.
        with run.signals, stage_batches(stage, config, runtime, crops, steps) as batches:
            for hr_uint8 in batches:
                batch = prepare_batch(hr_uint8, step, runtime, degradation)
                learning_rate = stage.lr_at(step)
                set_learning_rate(stage.networks, learning_rate, stage.lr_factors)
                losses = stage.step(batch)
                step += 1
                run.after_step(step, losses)
                if not (schedule.logs(step) or run.stop_requested()):
                    continue
                metrics = run.summarize(step, learning_rate)
                if schedule.validates(step):
                    run.validate(step, metrics)
                run.write(step, metrics)
                # All ranks stop together, at a log step: one stopping alone would hang the others.
                stop = run.stop_agreed()
                if schedule.checkpoints(step) or stop:
                    run.save(step, stop)
        return run.finish(step)
    except (StopNow, StoppedBySignal) as stop:  # a second signal, or one outside the steps
        raise run.interrupted(stop.signal_number) from None
    except WriteError as error:
        raise run.write_failed(error) from error
    finally:
        run.close()


def stage_schedule(
    stage: Stage, config: Config, crops: TrainCrops, max_steps: int | None
) -> Schedule:
    steps_per_epoch = crops.steps_per_epoch(stage.batch_size)
    total_steps = stage.epochs * steps_per_epoch
    return Schedule(
        steps_per_epoch=steps_per_epoch,
        validate_every=stage.validate_every,
        log_every=config.runtime.log_every,
        checkpoint_every=config.runtime.checkpoint_every,
        total_steps=total_steps,
        end_step=total_steps if max_steps is None else min(total_steps, max_steps),
    )


def stage_batches(
    stage: Stage, config: Config, runtime: Runtime, crops: TrainCrops, steps: range
) -> BatchStream:
    """The uint8 HR batches of `steps`, this process's rows of each (DDP splits the batch)."""
    rows = slice(
        runtime.rank * stage.batch_size // runtime.world_size,
        (runtime.rank + 1) * stage.batch_size // runtime.world_size,
    )
    return BatchStream(
        crops,
        steps,
        seed=config.seed,
        stage=stage.stage_id,
        batch_size=stage.batch_size,
        rows=rows,
        pin_memory=runtime.device.type == "cuda",
    )
