"""A run folder belongs to one run: its lock, its checkpoints in step order, and old files
moved aside instead of overwritten.

- `RunLock`: an exclusive `flock` on `<log dir>/.lock`, which names the holder (pid, host,
  start time, command). The kernel releases it when the process dies, however it dies, so a
  lock left by a killed run is taken over (with a warning) and never blocks a restart.
- Checkpoints are ordered by the step stored inside them, never by file time or name.
- Files of an earlier run that a new one would overwrite (a `--fresh` start, or the newer
  checkpoints of a branch abandoned by `--resume PATH`) move to `old-<UTC time>/`.
"""

import contextlib
import fcntl
import json
import math
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from srgan.checkpoint import (
    CheckpointError,
    check_step,
    checkpoint_prefix,
    load_checkpoint,
    parse_checkpoint_name,
)
from srgan.files import WriteError

LOCK_NAME = ".lock"
# A temp file of another process untouched this long belongs to a writer that died.
ORPHAN_SECONDS = 3600


@dataclass(frozen=True)
class RunPaths:
    log_dir: Path
    checkpoint_dir: Path

    @property
    def metrics_file(self) -> Path:
        return self.log_dir / "metrics.jsonl"


class RunFolderError(RuntimeError):
    """The run folder is in use, or holds a run this command would overwrite."""


class RunLock:
    """Context manager holding the run folder's lock; `RunFolderError` names a live holder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file = None

    def __enter__(self) -> "RunLock":
        """Take the lock; a folder that cannot be written (full disk, read-only, not a folder)
        is a `WriteError` naming the lock file, before the run does anything else."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = open(self.path, "a+")  # noqa: SIM115 (held open until __exit__)
        except OSError as error:
            raise WriteError(self.path, error) from error
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(file)
            file.close()
            raise RunFolderError(
                f"run folder {self.path.parent} is in use by {holder}; wait for that run to "
                f"end, stop it, or use another --run-dir"
            ) from None
        try:
            self._write_holder(file)
        except OSError as error:
            # Closing releases the lock (this run will not start); it flushes the buffered
            # holder again, which fails again on a full disk, but the file is closed anyway.
            with contextlib.suppress(OSError):
                file.close()
            raise WriteError(self.path, error) from error
        self._file = file
        return self

    @staticmethod
    def _write_holder(file) -> None:
        previous = _describe_holder(file)
        if previous:  # the file still names a holder: that run died without releasing it
            print(f"warning: taking over the lock of {previous}, which is no longer running")
        file.seek(0)
        file.truncate()
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv),
        }
        file.write(json.dumps(holder) + "\n")
        file.flush()

    def __exit__(self, *exc_info: object) -> None:
        # Emptied, not deleted: deleting would let a waiting process lock the old inode
        # while a third one creates a new file. An empty lock file means "released cleanly".
        self._file.truncate(0)
        self._file.close()
        self._file = None


def _describe_holder(file) -> str:
    file.seek(0)
    try:
        holder = json.loads(file.read())
    except ValueError:  # empty: released cleanly (or never used)
        return ""
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')}: "
        f"{holder.get('command')})"
    )


@dataclass(frozen=True)
class StoredCheckpoint:
    path: Path
    step: int  # -1: unreadable
    tag: str  # "step", "best" or "final"


def read_stored(path: Path) -> dict | None:
    """A checkpoint's state, memory-mapped (tensors are not read); None if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a truncated or foreign file: the resume logic reports it when used
        return None
    return state if isinstance(state, dict) else None


def read_step(path: Path) -> int:
    """The step stored in a checkpoint (tensors are not read); -1 if unreadable."""
    step = (read_stored(path) or {}).get("step")
    return step if isinstance(step, int) else -1


def stored_checkpoints(folder: Path, prefix: str) -> list[StoredCheckpoint]:
    """`<prefix>_step*.pt`, `_best.pt` and `_final.pt` in `folder`, highest stored step first
    (at equal steps: final, then step, then best); unreadable files last."""
    folder = Path(folder)
    found = [(path, "step") for path in folder.glob(f"{prefix}_step{'[0-9]' * 8}.pt")]
    found += [(folder / f"{prefix}_{tag}.pt", tag) for tag in ("final", "best")]
    order = {"final": 0, "step": 1, "best": 2}
    stored = [StoredCheckpoint(p, read_step(p), tag) for p, tag in found if p.is_file()]
    return sorted(stored, key=lambda c: (-c.step, order[c.tag], c.path.name))


def resumable_checkpoints(folder: Path, prefix: str) -> list[Path]:
    """Periodic and final checkpoints, highest stored step first."""
    return [c.path for c in stored_checkpoints(folder, prefix) if c.tag != "best"]


def other_run_checkpoints(folder: Path, kind: str, prefix: str) -> list[Path]:
    """The `kind` checkpoints in `folder` of runs with another scale or name than `prefix`'s."""
    return [
        path
        for path in sorted(Path(folder).glob(f"{kind}_x*.pt"))
        if (parsed := parse_checkpoint_name(path.name)) and checkpoint_prefix(*parsed) != prefix
    ]


def prune_checkpoints(folder: Path, prefix: str, keep: int, just_written: Path) -> None:
    """Keep the `keep` periodic checkpoints of highest step, and always `just_written`;
    remove this process's leftover temp files and orphaned ones of dead writers.

    Damaged checkpoints (no readable step) are moved to old-<time>/ with a warning, never
    deleted: they are the evidence of what went wrong (a full disk, a bad drive)."""
    periodic = [c for c in stored_checkpoints(folder, prefix) if c.tag == "step"]
    damaged = [c.path for c in periodic if c.step < 0 and c.path != just_written]
    if damaged:
        destination = archive_folder(folder)
        move_aside(damaged, destination)
        names = ", ".join(path.name for path in damaged)
        print(f"warning: moved damaged checkpoint(s) {names} to {destination}", flush=True)
    readable = [c.path for c in periodic if c.step >= 0]
    for path in readable[keep:]:
        if path != just_written:
            path.unlink(missing_ok=True)
    remove_orphaned_temp_files(folder, f".{prefix}_*.tmp")


def remove_orphaned_temp_files(folder: Path, pattern: str = ".*.tmp") -> None:
    """Remove the temp files (`srgan.files.atomic_write`) in `folder` matching `pattern` that
    this process left or whose writer is gone: a kill mid-write leaves one behind."""
    now = time.time()
    for temp in Path(folder).glob(pattern):
        try:
            if _writer_gone(temp) or now - temp.stat().st_mtime > ORPHAN_SECONDS:
                temp.unlink(missing_ok=True)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue


def _writer_gone(temp: Path) -> bool:
    """Whether the process that wrote `temp` (its pid is in the name, see
    `srgan.files.temp_prefix`) is this one or no longer exists on this host."""
    parts = temp.name.split(".")  # "", "<checkpoint name>", "pt", "<pid>", "<random>", "tmp"
    if len(parts) < 4 or not parts[-3].isdigit():
        return False
    pid = int(parts[-3])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def archive_folder(checkpoint_dir: Path) -> Path:
    """A new `old-<UTC time>` folder name in `checkpoint_dir`: a second archive within the
    same second (a retry after a kill mid-archive) gets `-2`, `-3`, ... and never mixes its
    copy of a file with the first one's."""
    base = Path(checkpoint_dir) / time.strftime("old-%Y%m%dT%H%M%SZ", time.gmtime())
    folder, count = base, 1
    while folder.exists():
        count += 1
        folder = base.with_name(f"{base.name}-{count}")
    return folder


def archive_stage_records(log_dir: Path, stage: str, destination: Path) -> None:
    """What a fresh start of `stage` would overwrite or mix with its own, besides checkpoints
    and metrics: the run's config.json is copied (the new run replaces it only once its checks
    pass), the stage's sample strips and TensorBoard stream are moved."""
    config = Path(log_dir) / "config.json"
    if config.is_file():
        try:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy2(config, destination / config.name)
        except OSError as error:
            raise WriteError(destination / config.name, error) from error
    for record in stage_records(log_dir, stage):  # into old-<time>/samples/, .../tensorboard/
        move_aside([record], destination / record.parent.name)


def stage_records(log_dir: Path, stage: str) -> list[Path]:
    """The sample strips (`srgan.run.samples`) and TensorBoard stream
    (`srgan.run.tensorboard_log`)
    that runs of `stage` leave in `log_dir`."""
    records = sorted((Path(log_dir) / "samples").glob(f"{stage}_step*.png"))
    tensorboard = Path(log_dir) / "tensorboard" / stage
    return records + ([tensorboard] if tensorboard.is_dir() else [])


def move_aside(paths: list[Path], destination: Path) -> None:
    """Move files or folders into `destination` (created), never overwriting anything there;
    a failure (e.g. a full disk creating the folder) is a `WriteError`."""
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(destination, error) from error
    for path in paths:
        target = destination / path.name
        if target.exists():
            raise RunFolderError(f"cannot move {path} aside: {target} exists")
        try:
            shutil.move(path, target)
        except OSError as error:
            raise WriteError(target, error) from error


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
