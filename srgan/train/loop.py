"""The training loop shared by both stages: batches, schedule, logging, validation, checkpoints.

The loop knows nothing about losses: it prepares each batch (`srgan.train.steps`), calls
`stage.step(batch)` and gets the loss terms back. The learning rate is a pure function of the
step and each batch a pure function of (seed, stage, epoch, step) (see `srgan.data.crops`),
and no step draws from a global RNG, so a run resumed from a periodic checkpoint continues bit
for bit where it stopped. Its helpers each do one job: `SignalGuard` (stop cleanly on
SIGINT/SIGTERM), `MetricsLog` (losses, NaN checks, metrics.jsonl) and `StageCheckpoints` (what
is saved, when, and resuming).
"""

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from srgan.config import Config
from srgan.data.crops import BatchStream, TrainCrops
from srgan.eval.protocol import EvalImage
from srgan.files import WriteError
from srgan.run.checkpoints import StageCheckpoints
from srgan.run.folder import RunPaths
from srgan.run.metrics import MetricsLog, NonFiniteLossError, progress_text
from srgan.run.resume import start_stage
from srgan.run.runtime import Runtime
from srgan.run.signals import Interrupted, SignalGuard, StopNow, StoppedBySignal
from srgan.run.validation import Monitors, Validation, validate
from srgan.train.averaging import WeightAverage
from srgan.train.networks import Network
from srgan.train.steps import Batch, Degradation, prepare_batch

__all__ = ["Interrupted", "NonFiniteLossError", "RunPaths", "Stage", "run_stage"]

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


@dataclass(frozen=True)
class Cadence:
    """Which steps log, validate and checkpoint."""

    steps_per_epoch: int
    validate_every: int  # epochs
    log_every: int
    checkpoint_every: int
    end_step: int

    def validates(self, step: int) -> bool:
        epoch, rest = divmod(step, self.steps_per_epoch)
        return rest == 0 and epoch % self.validate_every == 0

    def checkpoints(self, step: int) -> bool:
        return step % self.checkpoint_every == 0


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

    `resume`: "auto" or a checkpoint path; None starts from step 0, which a folder holding an
    earlier run of the stage refuses unless `fresh` (its files are then moved aside).
    """
    steps_per_epoch = crops.steps_per_epoch(stage.batch_size)
    total_steps = stage.epochs * steps_per_epoch
    cadence = Cadence(
        steps_per_epoch=steps_per_epoch,
        validate_every=stage.validate_every,
        log_every=config.runtime.log_every,
        checkpoint_every=config.runtime.checkpoint_every,
        end_step=total_steps if max_steps is None else min(total_steps, max_steps),
    )
    checkpoints = stage_checkpoints(stage, config, runtime, paths, steps_per_epoch)
    log = MetricsLog(paths.metrics_file, stage.name, enabled=runtime.is_main)
    step = start_stage(stage, checkpoints, log, config, runtime, paths, resume, fresh)
    if step is None:  # finished earlier: its _final stays as it is
        step, final = checkpoints.last_saved_step, checkpoints.last_saved
        return {"step": step, "best_psnr_y": checkpoints.best_psnr, "final": final}
    progress = tqdm(
        total=cadence.end_step,
        initial=step,
        desc=stage.name,
        disable=not runtime.is_main,
        dynamic_ncols=True,
        file=sys.stdout,
    )
    monitors = (
        Monitors(config, paths.log_dir, stage.name, step, validation)
        if runtime.is_main
        else Monitors.none()
    )
    degradation = Degradation(
        config.model.scale, config.data.degradation, config.data.gaussian_sigma
    )
    loop = Loop(
        stage, runtime, degradation, cadence, checkpoints, log, progress, validation, monitors
    )
    loop.step = step  # a stop before the first step names the step it started from
    steps = range(step, cadence.end_step)
    try:
        # The stream closes (its thread joined) on every way out, before the guard goes.
        with (
            SignalGuard() as loop.signals,
            stage_batches(stage, config, runtime, crops, steps) as batches,
        ):
            step = loop.train(batches, step)
        final = finish(checkpoints, log, step, total_steps)
    except (StopNow, StoppedBySignal) as stop:  # a second signal, or one after the loop
        raise Interrupted(stop.signal_number, checkpoints.last_saved, loop.step) from None
    except WriteError as error:
        raise error.with_note(f"; {checkpoints.last_good()}") from error
    finally:
        progress.close()
        monitors.close()
    return {"step": step, "best_psnr_y": checkpoints.best_psnr, "final": final}


def stage_checkpoints(
    stage: Stage, config: Config, runtime: Runtime, paths: RunPaths, steps_per_epoch: int
) -> StageCheckpoints:
    return StageCheckpoints(
        stage_name=stage.name,
        kind=stage.kind,
        networks=stage.networks,
        average=stage.average,
        extra_state=stage.extra_state,
        config=config,
        folder=paths.checkpoint_dir,
        steps_per_epoch=steps_per_epoch,
        is_main=runtime.is_main,
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


def finish(
    checkpoints: StageCheckpoints, log: MetricsLog, step: int, total_steps: int
) -> Path | None:
    """`_final` for a stage that ran to its end; a `--max-steps` stop saves a periodic
    checkpoint instead (to resume from), since the stage is not done."""
    final = None
    if step >= total_steps:
        final = checkpoints.save("final", step, log.last_row)
    elif step > checkpoints.last_saved_step:
        checkpoints.save_periodic(step, log.last_row)
    log.plot()
    return final


@dataclass
class Loop:
    """The loop over one stage's steps; `step` is the number of finished steps."""

    stage: Stage
    runtime: Runtime
    degradation: Degradation
    cadence: Cadence
    checkpoints: StageCheckpoints
    log: MetricsLog
    progress: tqdm
    validation: list[EvalImage]
    monitors: Monitors
    signals: SignalGuard = field(default_factory=SignalGuard)
    step: int = 0
    last_log_step: int = 0
    last_validation: dict = field(default_factory=dict)

    def train(self, batches: Iterator[torch.Tensor], step: int) -> int:
        self.step = step
        started, start_step = time.perf_counter(), step
        for hr_uint8 in batches:
            batch = prepare_batch(hr_uint8, self.step, self.runtime, self.degradation)
            learning_rate = self.stage.lr_at(self.step)
            set_learning_rate(self.stage.networks, learning_rate, self.stage.lr_factors)
            self.log.add(self.stage.step(batch))
            self.step += 1
            self.progress.update(1)
            step = self.step
            validate_now = self.cadence.validates(step)
            # Several processes act on a signal at a log step only, once they agree on it
            # (in `finish_interval`): a rank stopping early would leave the others hanging.
            checkpoint_now = self.cadence.checkpoints(step) or (
                self.signals.stop_requested() and not self.runtime.distributed
            )
            if step % self.cadence.log_every and not (
                validate_now or checkpoint_now or step == self.cadence.end_step
            ):
                continue
            interval = step - max(self.last_log_step, start_step)
            self.last_log_step = step
            metrics = self.log.summarize(step, self.checkpoints.last_good())
            self.log.warn_if_all_skipped(metrics, interval)
            metrics["lr"] = learning_rate
            metrics["steps_per_second"] = (step - start_step) / (time.perf_counter() - started)
            self.finish_interval(metrics, validate_now, checkpoint_now)
        return self.step

    def score(
        self, generator: torch.nn.Module, keep_outputs: tuple[str, ...] = ()
    ) -> Validation | None:
        return validate(
            generator,
            self.validation,
            generator.scale,
            self.runtime.device,
            should_stop=self.signals.stop_requested,
            keep_outputs=keep_outputs,
        )

    def validate(self, metrics: dict) -> None:
        """Score the evaluated generator (and, if asked, the trained one beside its average)
        on the validation images into `metrics`; `_best` and the samples follow the first."""
        result = self.score(self.checkpoints.evaluated_generator(), self.monitors.sample_names())
        if result is None:
            return
        self.last_validation = result.scores | self.monitors.reference
        metrics.update(self.last_validation)
        self.checkpoints.record_validation(self.step, metrics)
        self.monitors.validated(self.stage.name, self.step, result)
        if self.stage.validate_trained and self.stage.average is not None:
            trained = self.score(self.stage.networks["generator"].bare)
            if trained is not None:
                metrics.update({f"valid_trained/{k[6:]}": v for k, v in trained.scores.items()})

    def finish_interval(self, metrics: dict, validate_now: bool, checkpoint_now: bool) -> None:
        """At a log step: validate, write metrics, save; stop if a signal came."""
        step, runtime = self.step, self.runtime
        if validate_now and runtime.is_main:
            self.validate(metrics)
        self.log.write(step, step / self.cadence.steps_per_epoch, metrics)
        self.monitors.scalars(step, metrics)
        if runtime.is_main:
            self.progress.set_postfix_str(progress_text(metrics, self.last_validation))
            if validate_now:
                self.log.plot()
        interrupt = self.signals.agreed(runtime)
        if checkpoint_now or interrupt:  # a signal may also come during validation
            saved = self.checkpoints.save_periodic(step, self.log.last_row)
            if interrupt:
                raise Interrupted(self.signals.signal_number, saved, step)
        if runtime.distributed and validate_now:
            dist.barrier()
