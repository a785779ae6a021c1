"""The staging folders of dataset installs, and the removal of those a killed install left.

An install stages a set's images in `<root>/.<set>-<8 random characters>/` (a
`tempfile.TemporaryDirectory`, which a normal exit or an exception removes) while it holds an
exclusive `flock` on `<root>/.<set>.lock` (removed when it ends). A process killed with SIGKILL
removes neither, but the kernel releases its lock however it dies. So whoever holds the lock
knows that no live install of that set stages anything in `root`: every staging folder of that
set there is a leftover, and is removed. The lock also keeps two installs of one set from
appending to the same resumable `.part` download.
"""

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# tempfile's random part: 8 characters of [a-z0-9_].
RANDOM_PART = r"[a-z0-9_]{8}"


class InstallLockedError(Exception):
    """Another live process is installing the same set into the same folder."""


def staging_prefix(name: str) -> str:
    """The name start of the set `name`'s staging folders (tempfile adds the random part)."""
    return f".{name}-"


def lock_path(root: Path, name: str) -> Path:
    return Path(root) / f".{name}.lock"


@contextmanager
def install_lock(root: Path, name: str) -> Iterator[None]:
    """Hold the set `name`'s install lock in `root`; InstallLockedError if a live process does.

    The lock file is removed on the way out, while still locked: a process that opened it in
    the meantime finds, once it gets the lock, that the path is another file now, and retries.
    """
    path = lock_path(root, name)
    while True:
        lock_file = open(path, "a")  # noqa: SIM115 (held past this block, closed below)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise InstallLockedError(
                f"another download of {name} into {root} is running (it holds {path}); wait "
                "for it to finish"
            ) from None
        if _is_current(lock_file.fileno(), path):
            break
        lock_file.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        lock_file.close()  # releases the lock


def _is_current(descriptor: int, path: Path) -> bool:
    """Whether the open file `descriptor` is still the file at `path`."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def remove_stale_staging(root: Path, name: str) -> list[str]:
    """Remove the staging folders of the set `name` in `root`, which killed installs left (call
    it holding the set's `install_lock`); returns one 'removed ...' line per folder."""
    pattern = re.compile(re.escape(staging_prefix(name)) + RANDOM_PART)
    folders = sorted(path for path in Path(root).iterdir() if pattern.fullmatch(path.name))
    removed = []
    for folder in filter(Path.is_dir, folders):
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        shutil.rmtree(folder)
        removed.append(
            f"{name}: removed {folder} ({size / 1e6:.1f} MB), left by an install that was "
            "killed (no live process holds it)"
        )
    return removed
