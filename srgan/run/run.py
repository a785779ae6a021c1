"""A stage's bookkeeping behind one object: the training loop tells its `Run` what happened and
the run keeps the records: metrics.jsonl (and TensorBoard), the sample strips, curves.png, the
progress bar and the checkpoints; it also owns the signal guard that stops a run cleanly.

Ranks other than 0 get a `QuietRun`: it restores the networks from the same checkpoint and
takes part in what every rank must do at the same step (the NaN check of its losses, agreeing
on a stop, waiting for rank 0's validation), and writes nothing.
"""

import sys
import time
from dataclasses import dataclass

import torch.distributed as dist
from tqdm import tqdm

from srgan.config import Config
from srgan.eval.protocol import EvalImage
from srgan.files import WriteError
from srgan.run.checkpoints import StageCheckpoints
from srgan.run.folder import RunPaths, stage_records, write_run_files
from srgan.run.metrics import MetricsLog, progress_text
from srgan.run.resume import Start, plan_start, report_config_changes, restore, set_aside
from srgan.run.runtime import Runtime
from srgan.run.samples import SampleStrips
from srgan.run.signals import Interrupted, SignalGuard
from srgan.run.validation import Validation, bicubic_reference, validate_generator


@dataclass(frozen=True)
class Schedule:
    """Which steps of a stage log, validate and checkpoint, and where it ends."""

    steps_per_epoch: int
    validate_every: int  # epochs
    log_every: int
    checkpoint_every: int
    total_steps: int  # the stage's schedule
    end_step: int  # where this run stops (--max-steps may stop it earlier)

    def validates(self, step: int) -> bool:
        epoch, rest = divmod(step, self.steps_per_epoch)
        return rest == 0 and epoch % self.validate_every == 0

    def checkpoints(self, step: int) -> bool:
        return step % self.checkpoint_every == 0

    def logs(self, step: int) -> bool:
        periodic = step % self.log_every == 0 or step == self.end_step
        return periodic or self.validates(step) or self.checkpoints(step)


class Run:
    """Rank 0's records of one stage (`stage`: `srgan.train.loop.Stage`)."""

    def __init__(
        self,
        stage,
        config: Config,
        runtime: Runtime,
        paths: RunPaths,
        validation: list[EvalImage],
        schedule: Schedule,
    ) -> None:
        self.stage, self.config, self.runtime = stage, config, runtime
        self.paths, self.validation, self.schedule = paths, validation, schedule
        average = stage.average.model if stage.average is not None else None
        self.checkpoints = StageCheckpoints(
            stage_name=stage.name,
            kind=stage.kind,
            networks=stage.networks,
            average=average,
            extra_state=stage.extra_state,
            config=config,
            folder=paths.checkpoint_dir,
            steps_per_epoch=schedule.steps_per_epoch,
        )
        self.log = MetricsLog(paths.metrics_file, stage.name)
        self.signals = SignalGuard()
        self.step = self.first_step = self.last_log_step = 0
        self.started = time.perf_counter()
        self.progress, self.samples, self.tensorboard = None, None, None
        self.reference: dict = {}  # bicubic's validation scores, logged beside the model's
        self.last_validation: dict = {}
        self.validated_at = -1

    def plan(self, resume: str | None, fresh: bool) -> Start:
        """Where the stage starts (every rank reads the same files), its networks restored."""
        has_records = bool(
            self.log.stage_rows() or stage_records(self.paths.log_dir, self.stage.name)
        )
        start = plan_start(self.checkpoints, resume, fresh, has_records, self.schedule.total_steps)
        self.changes = restore(self.checkpoints, start)
        return start

    def finished(self, start: Start) -> bool:
        """Whether `start` resumes the stage's `_final` at its last step."""
        final = start.path == self.checkpoints.path("final")
        return final and start.step >= self.schedule.total_steps

    def start(self, resume: str | None, fresh: bool) -> int | None:
        """The step the stage starts from, with the run folder made consistent with it, or None
        when the resumed checkpoint is the stage's `_final` at its last step (run_training.sh
        resumes every stage): a finished stage is not redone. Only then are config.json and the
        stage's log files written, so a refused start rewrites none of an earlier run's files."""
        start = self.plan(resume, fresh)
        set_aside(start, self.log, self.paths, self.stage.name)
        if start.state is not None:
            self.log.truncate_after(start.step)
        if self.finished(start):
            print(
                f"{self.stage.name} already finished at step {start.step} ({start.path}): "
                "nothing to do (--fresh starts it over)",
                flush=True,
            )
            return None
        write_run_files(self.paths.log_dir, self.config, self.stage.log_files)
        if start.state is not None:
            print(f"resumed {self.stage.name} from {start.path} at step {start.step}", flush=True)
            if self.changes:
                report_config_changes(self.changes)
                self.log.event(start.step, "config_changed", changes=self.changes)
        self.open_records(start.step)
        return start.step

    def open_records(self, step: int) -> None:
        self.step = self.first_step = self.last_log_step = step
        runtime_config, scale = self.config.runtime, self.config.model.scale
        self.reference = bicubic_reference(self.validation, scale)
        if runtime_config.keep_samples > 0:
            folder = self.paths.log_dir / "samples"
            self.samples = SampleStrips(folder, self.validation, scale, runtime_config.keep_samples)
        if runtime_config.tensorboard:
            from srgan.run.tensorboard_log import TensorBoardLog

            self.tensorboard = TensorBoardLog(self.paths.log_dir, self.stage.name, step)
        self.progress = tqdm(
            total=self.schedule.end_step,
            initial=step,
            desc=self.stage.name,
            dynamic_ncols=True,
            file=sys.stdout,
        )
        self.started = time.perf_counter()

    def after_step(self, step: int, losses: dict) -> None:
        """Keep the step's loss terms (on the device, until the next log step)."""
        self.step = step
        self.log.add(losses)
        self.progress.update(1)

    def stop_requested(self) -> bool:
        """A signal to this single process, which stops at the next step."""
        return self.signals.stop_requested() and not self.runtime.distributed

    def summarize(self, step: int, learning_rate: float) -> dict:
        """The log step's metrics: mean loss terms since the last one (raises on a NaN)."""
        interval = step - max(self.last_log_step, self.first_step)
        self.last_log_step = step
        metrics = self.log.summarize(step, self.checkpoints.last_good())
        self.log.warn_if_all_skipped(metrics, interval)
        metrics["lr"] = learning_rate
        elapsed = time.perf_counter() - self.started
        metrics["steps_per_second"] = (step - self.first_step) / elapsed
        return metrics

    def score(self, generator, keep_outputs: tuple[str, ...] = ()) -> Validation | None:
        return validate_generator(
            generator,
            self.validation,
            self.config.model.scale,
            self.runtime.device,
            should_stop=self.signals.stop_requested,
            keep_outputs=keep_outputs,
        )

    def validate(self, step: int, metrics: dict) -> None:
        """Score the evaluated generator (and, if asked, the trained one beside its average)
        on the validation images into `metrics`; `_best` and the samples follow the first."""
        self.validated_at = step
        names = tuple(image.name for image in self.samples.images) if self.samples else ()
        result = self.score(self.checkpoints.evaluated_generator(), names)
        if result is not None:
            self.last_validation = result.scores | self.reference
            metrics.update(self.last_validation)
            self.checkpoints.record_validation(step, metrics)
            self.show_samples(step, result)
            if self.stage.validate_trained and self.stage.average is not None:
                trained = self.score(self.stage.networks["generator"].model)
                if trained is not None:
                    metrics.update({f"valid_trained/{k[6:]}": v for k, v in trained.scores.items()})
        if self.runtime.distributed:
            dist.barrier()  # the other ranks wait here for the validation

    def show_samples(self, step: int, result: Validation) -> None:
        if self.samples is None:
            return
        rows = self.samples.rows(step, result.outputs, result.psnr)
        self.samples.write(self.stage.name, step, rows, result.scores["valid/psnr_y"])
        if self.tensorboard is not None:
            self.tensorboard.images(step, rows)

    def write(self, step: int, metrics: dict) -> None:
        """The log step's row in metrics.jsonl (and TensorBoard), the progress bar, the curves."""
        self.log.write(step, step / self.schedule.steps_per_epoch, metrics)
        if self.tensorboard is not None:
            self.tensorboard.scalars(step, metrics)
        self.progress.set_postfix_str(progress_text(metrics, self.last_validation))
        if self.validated_at == step:
            self.log.plot()

    def stop_agreed(self) -> bool:
        """Whether any rank got a signal; every rank asks at the same log steps."""
        return self.signals.agreed(self.runtime)

    def save(self, step: int, stop: bool) -> None:
        """A periodic checkpoint; then, if a signal asked for it, stop."""
        saved = self.checkpoints.save_periodic(step, self.log.last_row)
        if stop:
            raise Interrupted(self.signals.signal_number, saved, step)

    def finish(self, step: int) -> dict:
        """`_final` for a stage that ran to its end; a `--max-steps` stop saves a periodic
        checkpoint instead (to resume from), since the stage is not done."""
        final = None
        if step >= self.schedule.total_steps:
            final = self.checkpoints.save("final", step, self.log.last_row)
        elif step > self.checkpoints.last_saved_step:
            self.checkpoints.save_periodic(step, self.log.last_row)
        self.log.plot()
        return {"step": step, "best_psnr_y": self.checkpoints.best_psnr, "final": final}

    def finished_earlier(self) -> dict:
        """The result of a stage that `start` found finished: its `_final` stays as it is."""
        checkpoints = self.checkpoints
        step, final = checkpoints.last_saved_step, checkpoints.last_saved
        return {"step": step, "best_psnr_y": checkpoints.best_psnr, "final": final}

    def interrupted(self, signal_number: int) -> Interrupted:
        """A second signal (or one outside the steps): stop now, naming the last checkpoint."""
        return Interrupted(signal_number, self.checkpoints.last_saved, self.step)

    def write_failed(self, error: WriteError) -> WriteError:
        return error.with_note(f"; {self.checkpoints.last_good()}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


class QuietRun(Run):
    """A rank other than 0: the same start and checks as rank 0's `Run`, and no records."""

    def start(self, resume: str | None, fresh: bool) -> int | None:
        start = self.plan(resume, fresh)
        if self.finished(start):
            return None
        self.step = self.first_step = self.last_log_step = start.step
        self.started = time.perf_counter()
        return start.step

    def after_step(self, step: int, losses: dict) -> None:
        self.step = step
        self.log.add(losses)

    def summarize(self, step: int, learning_rate: float) -> dict:
        return self.log.summarize(step, self.checkpoints.last_good())

    def validate(self, step: int, metrics: dict) -> None:
        dist.barrier()  # while rank 0 validates

    def write(self, step: int, metrics: dict) -> None:
        pass

    def save(self, step: int, stop: bool) -> None:
        if stop:
            raise Interrupted(self.signals.signal_number, None, step)

    def finish(self, step: int) -> dict:
        return {"step": step, "best_psnr_y": self.checkpoints.best_psnr, "final": None}

    def close(self) -> None:
        pass


def open_run(
    stage,
    config: Config,
    runtime: Runtime,
    paths: RunPaths,
    validation: list[EvalImage],
    schedule: Schedule,
) -> Run:
    """Rank 0's `Run`, or a `QuietRun` on the other ranks."""
    kind = Run if runtime.is_main else QuietRun
    return kind(stage, config, runtime, paths, validation, schedule)
