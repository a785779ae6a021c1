"""Where a stage starts: from step 0, from a checkpoint, or not at all when it has finished;
the run folder (checkpoints, metrics, records, config.json) made consistent with that first.
What the checkpoint files say against a `--resume` is checked before any work (`check_resume`).
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.checkpoint import checkpoint_prefix, parse_checkpoint_name
from srgan.config import Config, config_to_dict, save_config
from srgan.files import atomic_write_text
from srgan.run.checkpoints import StageCheckpoints, report_config_changes, resume_changes
from srgan.run.folder import (
    RunFolderError,
    RunPaths,
    archive_stage_records,
    other_run_checkpoints,
    read_stored,
    remove_orphaned_temp_files,
    resumable_checkpoints,
    resume_target,
    stage_records,
)
from srgan.run.metrics import MetricsLog
from srgan.run.runtime import Runtime

if TYPE_CHECKING:  # loop.py, which defines Stage, calls this module
    from srgan.train.loop import Stage


def check_resume(config: Config, paths: RunPaths, kind: str, resume: str | None) -> None:
    """Before any work (data, networks, the content loss): refuse a `--resume` that could not
    go on, from what the checkpoint files say (cheap: their tensors are not read)."""
    if resume is None:
        return
    prefix = checkpoint_prefix(kind, config.model.scale, config.name)
    if resume == "auto":
        refuse_start_beside_another_run(config, paths.checkpoint_dir, kind, prefix)
    target = resume_target(resume, paths.checkpoint_dir, prefix)
    state = None if target is None else read_stored(target.path)
    # Another kind or no config: the full check at the resume itself says what is wrong.
    if state is not None and state.get("kind") == kind and isinstance(state.get("config"), dict):
        resume_changes(target.path, state["config"], config_to_dict(config))


def refuse_start_beside_another_run(config: Config, folder: Path, kind: str, prefix: str) -> None:
    """`--resume auto` with no checkpoint of this run but some of this stage with another scale
    or name (a changed config, same folder) would start over at step 0 beside them."""
    others = other_run_checkpoints(folder, kind, prefix)
    if not others or resumable_checkpoints(folder, prefix):
        return
    changes = {}  # ordered, without repeats
    for path in others:
        _, scale, name = parse_checkpoint_name(path.name)
        if name != config.name:
            changes[f"name: {json.dumps(name)} -> {json.dumps(config.name)}"] = None
        if scale != config.model.scale:
            changes[f"model.scale: {scale} -> {config.model.scale}"] = None
    raise RunFolderError(
        f"--resume auto: {folder} holds {kind} checkpoints of a run with other settings "
        f"({'; '.join(changes)}) and none of this one's ({prefix}_*.pt), so the resume would "
        f"start over beside them: use another --run-dir for this run, or --fresh to start "
        f"over here (which moves them to {folder}/old-<time>/)"
    )


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
    total_steps = stage.epochs * checkpoints.steps_per_epoch
    start = checkpoints.start(resume, fresh, has_records, total_steps)
    if start.set_aside is not None and start.records_too:
        log.archive(start.set_aside)
        archive_stage_records(paths.log_dir, stage.name, start.set_aside)
    if start.resumed:
        log.truncate_after(start.step)
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
