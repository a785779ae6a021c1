"""Where a stage starts: from step 0, from a checkpoint, or not at all when it has finished;
the run folder (checkpoints, metrics, records, config.json) made consistent with that first."""

from typing import TYPE_CHECKING

from srgan.files import atomic_write_text
from srgan.train.checkpoints import StageCheckpoints, report_config_changes
from srgan.train.config import Config, save_config
from srgan.train.metrics_log import MetricsLog
from srgan.train.run_folder import (
    RunPaths,
    archive_stage_records,
    remove_orphaned_temp_files,
    stage_records,
)
from srgan.train.runtime import Runtime

if TYPE_CHECKING:  # loop.py, which defines Stage, calls this module
    from srgan.train.loop import Stage


def start_stage(
    stage: "Stage",
    checkpoints: StageCheckpoints,
    log: MetricsLog,
    config: Config,
    runtime: Runtime,
    paths: RunPaths,
    resume: str | None,
    fresh: bool,
) -> int | None:
    """The step the stage starts from, with the run folder made consistent with it (see
    `StageCheckpoints.start`), or None when the resumed checkpoint is the stage's `_final` at
    its last step (run_training.sh resumes every stage): a finished stage is not redone.

    Only then are the resolved config.json and the stage's log files written, so a refused
    start rewrites none of an earlier run's files; each is replaced atomically, so a full disk
    leaves the previous one whole.
    """
    has_records = bool(log.stage_rows() or stage_records(paths.log_dir, stage.name))
    start = checkpoints.start(resume, fresh, has_records)
    if start.set_aside is not None and start.records_too:
        log.archive(start.set_aside)
        archive_stage_records(paths.log_dir, stage.name, start.set_aside)
    if start.resumed:
        log.truncate_after(start.step)
    total_steps = stage.epochs * checkpoints.steps_per_epoch
    if start.step >= total_steps and checkpoints.last_saved == checkpoints.path("final"):
        if runtime.is_main:
            print(
                f"{stage.name} already finished at step {start.step} ({checkpoints.last_saved})"
                ": nothing to do (--fresh starts it over)",
                flush=True,
            )
        return None
    if runtime.is_main:
        for folder in (paths.log_dir, paths.log_dir / "samples"):  # a killed run's leftovers
            remove_orphaned_temp_files(folder)
        save_config(config, paths.log_dir / "config.json")
        for name, text in stage.log_files.items():
            atomic_write_text(paths.log_dir / name, text)
        if start.resumed:
            print(
                f"resumed {stage.name} from {checkpoints.last_saved} at step {start.step}",
                flush=True,
            )
            if checkpoints.changes:
                report_config_changes(checkpoints.changes)
                log.event(start.step, "config_changed", changes=checkpoints.changes)
    return start.step
