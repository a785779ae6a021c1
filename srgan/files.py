"""Safe file I/O shared by checkpoints, logs and weights: atomic writes, code-free loading."""

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


class UnsafeFileError(RuntimeError):
    """A weights file that is missing, unreadable, or would run code when loaded."""


class WriteError(RuntimeError):
    """A run's file could not be written (full disk, permissions, ...): one line naming the
    file and the cause. torch.save reports a full disk as a RuntimeError from its C++ writer,
    with the OSError that says why further down the exception chain."""

    def __init__(self, path: Path, error: BaseException, note: str = "") -> None:
        super().__init__(f"could not write {path}: {write_failure_cause(error)}{note}")
        self.path, self.error = path, error

    def with_note(self, note: str) -> "WriteError":
        """The same error with `note` appended, e.g. "; the last good checkpoint is ..."."""
        return WriteError(self.path, self.error, note)


def write_failure_cause(error: BaseException) -> str:
    """'no space left on device' for ENOSPC, found anywhere in the exception chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror[0].lower() + seen.strerror[1:]
        seen = seen.__cause__ or seen.__context__
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def fsync_directory(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX: the directory entry is data too)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temp_prefix(path: Path) -> str:
    """Names of this process's temp files for `path`: `.<name>.<pid>.`, so that a cleanup can
    tell its own leftovers from another live process's half-written file."""
    return f".{path.name}.{os.getpid()}."


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], durable: bool = True) -> None:
    """Call `write(file)` on a temp file in the same folder, then rename it over `path`.

    A crash or a full disk mid-write leaves the previous `path` intact (the rename is atomic
    on POSIX) and no temp file behind; any failure is raised as a one-line `WriteError`.
    `durable` also fsyncs the data and the folder, so the file survives a power cut.
    """
    path = Path(path)
    try:
        _write_and_rename(path, write, durable)
    except (OSError, RuntimeError) as error:
        raise WriteError(path, error) from error


def _write_and_rename(path: Path, write: Callable[[IO[bytes]], None], durable: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        # mkstemp makes private (0600) files; give the result the usual mode instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def check_writable_folder(folder: Path, option: str) -> None:
    """Before any work: `folder` exists (or is created) and takes a file, so that a command
    fails at once rather than after its first result. `option` names the flag that gave it.

    ValueError when it names an existing file (the user's mistake, exit 2); WriteError when it
    cannot be created or written (read-only, full disk, permissions: the environment, exit 1).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        try:
            os.write(handle, b"x")  # a full disk may still create an empty file
        finally:
            os.close(handle)
            os.unlink(probe)
    except OSError as error:
        raise WriteError(folder, error) from error


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoints and archives are large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str, durable: bool = False) -> None:
    atomic_write(path, lambda file: file.write(text.encode()), durable)


def load_state_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load without executing code, for checkpoints and user-supplied weight files alike.

    Raises UnsafeFileError naming the file when it is missing, unreadable, or carries pickled
    Python objects (which `weights_only=False` would run while loading).
    """
    path = Path(path)
    if not path.is_file():
        raise UnsafeFileError(f"{path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeFileError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            f"containers, which could run code when unpickled ({str(error).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnsafeFileError(f"{path} is truncated or not a PyTorch file ({reason})") from None
