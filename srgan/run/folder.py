"""A run folder belongs to one run: its lock, and old files moved aside instead of overwritten.

- `RunLock`: an exclusive `flock` on `<log dir>/.lock`, which names the holder (pid, host,
  start time, command). The kernel releases it when the process dies, however it dies, so a
  lock left by a killed run is taken over (with a warning) and never blocks a restart.
- Files of an earlier run that a new one would overwrite (a `--fresh` start, or the newer
  checkpoints of a branch abandoned by `--resume PATH`) move to `old-<UTC time>/`.
- Temp files of writers that died (`srgan.files.atomic_write`) are removed.
"""

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from srgan.config import Config, save_config
from srgan.files import WriteError, atomic_write_text

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
            # Closing releases the lock; its flush may fail again (a full disk), closing anyway.
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


def write_run_files(log_dir: Path, config: Config, log_files: dict[str, str]) -> None:
    """The resolved config.json and a stage's log files, each replaced atomically (a full disk
    leaves the previous one whole); a killed run's temp files go first."""
    for folder in (log_dir, log_dir / "samples"):
        remove_orphaned_temp_files(folder)
    save_config(config, log_dir / "config.json")
    for name, text in log_files.items():
        atomic_write_text(log_dir / name, text)
