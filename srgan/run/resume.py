"""Where a stage starts, and resuming it: the torchvision reference's shape (load the checkpoint,
restore the networks, go on from its step), with the safety checks beside it.

`check_resume` refuses, before any work, a `--resume` that could not go on; `plan_start` finds
the step a stage starts from (0, or a checkpoint's) and which earlier files go aside;
`restore` loads the checkpoint into the networks, refusing one that does not fit and naming
the config keys that changed.
"""

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from srgan.checkpoint import (
    CheckpointError,
    check_resumable,
    check_step,
    checkpoint_prefix,
    config_changes,
    load_checkpoint,
    parse_checkpoint_name,
)
from srgan.config import Config, config_to_dict, with_defaults
from srgan.run.checkpoints import (
    StageCheckpoints,
    StoredCheckpoint,
    load_optimizer_state,
    other_run_checkpoints,
    read_step,
    read_stored,
    resumable_checkpoints,
    stored_checkpoints,
)
from srgan.run.folder import (
    RunFolderError,
    RunPaths,
    archive_folder,
    archive_stage_records,
    move_aside,
)
from srgan.run.metrics import MetricsLog

# Config keys that change what is logged, validated or kept, not what is computed: resuming
# with other values still continues bit for bit.
BOOKKEEPING_KEYS = (
    "runtime.log_every",
    "runtime.checkpoint_every",
    "runtime.keep_checkpoints",
    "runtime.tensorboard",
    "runtime.keep_samples",
    "pretrain.validate_every",
    "gan.validate_every",
    "gan.validate_trained_generator",
    "data.valid_dir",
    "data.valid_max_size",
)
# Config keys a resume may not change: the run would become another experiment midway.
FIXED_KEYS = ("gan.content_loss",)


@dataclass(frozen=True)
class Start:
    """Where a stage starts: its step, the checkpoint it resumes (None: step 0), the earlier
    files that go aside (the stage's records with them when `records_too`; `records_found`:
    there are records, which go aside even alone), and a note for the log (None: nothing)."""

    step: int
    path: Path | None = None
    state: dict | None = None
    set_aside: list[Path] = field(default_factory=list)
    records_too: bool = False
    records_found: bool = False
    note: str | None = None


def plan_start(
    checkpoints: StageCheckpoints,
    resume: str | None,
    fresh: bool,
    has_records: bool,
    total_steps: int,
) -> Start:
    """The step this stage starts from, and what must move aside for it (nothing moves here).

    A fresh start refuses to overwrite an earlier run (its checkpoints, those of this stage
    with another scale or name, or its records when `has_records`) unless `fresh`, which
    moves them aside. A resume loads its checkpoint; those of later steps (a branch abandoned
    by `--resume PATH`) go aside. `total_steps`: the stage's schedule.
    """
    folder, prefix = checkpoints.folder, checkpoints.prefix
    earlier = stored_checkpoints(folder, prefix)
    if resume is None:
        others = other_run_checkpoints(folder, checkpoints.kind, prefix)
        if (earlier or others or has_records) and not fresh:
            raise RunFolderError(refusal(checkpoints, earlier, others))
        paths = [c.path for c in earlier] + others
        return Start(0, set_aside=paths, records_too=True, records_found=has_records)
    found = load_resume_checkpoint(resume, folder, prefix, total_steps)
    if found is None:
        note = (
            f"--resume {resume}: no checkpoint {prefix}_step*.pt or _final.pt in {folder}; "
            f"starting {checkpoints.stage_name} from step 0"
        )
        paths = [c.path for c in earlier]
        return Start(0, None, None, paths, records_too=True, records_found=has_records, note=note)
    path, state = found
    later = [c.path for c in earlier if c.step > state["step"] and c.path != path]
    note = f"warning: moving {len(later)} checkpoint(s) of later steps aside" if later else None
    return Start(state["step"], path, state, set_aside=later, note=note)


def refusal(checkpoints: StageCheckpoints, earlier: list, others: list[Path]) -> str:
    folder, stage = checkpoints.folder, checkpoints.stage_name
    start_over = f"start over with --fresh (which moves its files to {folder}/old-<time>/)"
    if others and not earlier:
        return (
            f"{folder} already holds a {stage} run with another scale or name "
            f"({len(others)} checkpoint(s), e.g. {others[0].name}): use another --run-dir, "
            f"or {start_over}"
        )
    found = f"{len(earlier)} {checkpoints.prefix} checkpoint(s)" if earlier else "its metrics"
    return (
        f"{folder} already holds a {stage} run ({found}): continue it with --resume auto, "
        f"or {start_over}"
    )


def set_aside(start: Start, log: MetricsLog, paths: RunPaths, stage_name: str) -> None:
    """Move what `start` sets aside into a new old-<time>/ folder, the stage's records too
    when it says so (also when they are all there is to move)."""
    if start.note is not None:
        print(start.note, flush=True)
    if not (start.set_aside or start.records_found):
        return
    destination = archive_folder(paths.checkpoint_dir)
    move_aside(start.set_aside, destination)
    print(f"moved the earlier run's files to {destination}", flush=True)
    if start.records_too:
        log.archive(destination)
        archive_stage_records(paths.log_dir, stage_name, destination)


def restore(checkpoints: StageCheckpoints, start: Start) -> list[str]:
    """Load the resumed checkpoint into the live networks (optimizers, loss scalers and the
    weight average too); the config changes since it that alter what is computed."""
    if start.state is None:
        return []
    path, state = start.path, start.state
    try:
        keys = [checkpoints.state_key(name) for name in checkpoints.networks]
        check_resumable(state, path, checkpoints.kind, checkpoints.spec, keys)
        for name, network in checkpoints.networks.items():
            network.model.load_state_dict(state[checkpoints.state_key(name)])
            load_optimizer_state(network.optimizer, state["optimizers"][name])
            network.scaler.load_state_dict(state["scalers"][name])
        if checkpoints.average is not None:
            checkpoints.average.load_state_dict(state["generator"])
    except (CheckpointError, KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(refused(path, state, error, checkpoints.config)) from None
    checkpoints.last_saved, checkpoints.last_saved_step = path, state["step"]
    checkpoints.best_psnr = state["best_psnr_y"]
    changes = resume_changes(path, state["config"], checkpoints.config)
    return [c for c in changes if c.split(":")[0] not in BOOKKEEPING_KEYS]


def refused(path: Path, state: dict, error: Exception, current: dict) -> str:
    """Why `path` cannot resume this run, naming the config keys that changed."""
    reason = str(error).strip().splitlines()[0]
    if not isinstance(error, CheckpointError):  # e.g. another crop size or width
        reason = f"{path} does not fit this run's networks ({reason})"
    changes = config_changes(with_defaults(state.get("config", {})), current)
    keys = [change for change in changes if not change.startswith("name:")]
    if keys:
        reason += f"; config keys that differ from the checkpoint's: {'; '.join(keys)}"
    return reason


def resume_changes(path: Path, saved: dict, current: dict) -> list[str]:
    """The changes from a checkpoint's `saved` config to the `current` one; raises when one of
    them is a change a resume cannot make (FIXED_KEYS)."""
    changes = config_changes(with_defaults(saved), current)
    fixed = [change for change in changes if change.split(":")[0] in FIXED_KEYS]
    if fixed:
        raise CheckpointError(
            f"{path} was trained with other settings that a resume cannot change "
            f"({'; '.join(fixed)}): start a new run (in another --run-dir, or with --fresh)"
        )
    return changes


def report_config_changes(changes: list[str]) -> None:
    """Changes a resume allows but that break bit-identical continuation, on stderr (the run
    also records them in the metrics, so a later reader of the curves knows)."""
    print(
        f"warning: config differs from the checkpoint's (the run goes on, but not "
        f"bit-identical to an uninterrupted one): {'; '.join(changes)}",
        file=sys.stderr,
    )


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


def find_resume_checkpoint(
    folder: Path, prefix: str, last_step: float = math.inf
) -> tuple[Path, dict] | None:
    """The resumable checkpoint of highest step that loads, or None when there is none.

    Unusable ones (e.g. truncated by a full disk, or holding a step beyond `last_step`, the
    stage's end) are reported and skipped; when every one is unusable this raises, rather
    than silently training from scratch over them.
    """
    candidates = resumable_checkpoints(folder, prefix)
    # Unreadable files sort last; report them first, since they may well be the newest.
    unreadable = [path for path in candidates if read_step(path) < 0]
    for path in [*unreadable, *(path for path in candidates if path not in unreadable)]:
        try:
            state = load_checkpoint(path)
            check_step(state, path, last_step)
        except CheckpointError as error:
            print(f"warning: skipping unusable checkpoint: {error}", flush=True)
            continue
        if path not in unreadable:
            return path, state
    if candidates:
        raise CheckpointError(
            f"none of the {len(candidates)} checkpoints {prefix}_*.pt in {folder} loads; "
            f"start over with --fresh (which moves them aside), or pass --resume PATH"
        )
    return None


def load_resume_checkpoint(
    resume: str, folder: Path, prefix: str, last_step: int
) -> tuple[Path, dict] | None:
    """--resume: "auto" (this run's usable checkpoint of highest step, if any) or a path; a
    checkpoint of a step beyond `last_step`, the stage's end, is refused."""
    if resume == "auto":
        return find_resume_checkpoint(folder, prefix, last_step)
    state = load_checkpoint(resume)
    check_step(state, Path(resume), last_step)
    return Path(resume), state


def resume_target(resume: str | None, folder: Path, prefix: str) -> StoredCheckpoint | None:
    """The checkpoint `--resume` would start from (cheap: tensors are not read), if any."""
    if resume is None:
        return None
    if resume != "auto":
        return StoredCheckpoint(Path(resume), read_step(Path(resume)), "step")
    for checkpoint in stored_checkpoints(folder, prefix):
        if checkpoint.tag != "best" and checkpoint.step >= 0:
            return checkpoint
    return None
