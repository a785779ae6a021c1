"""Checkpoints: one dict with the step inside, written atomically, loaded without executing code.

A checkpoint holds plain tensors, numbers, strings, lists and dicts only, so it loads with
`torch.load(weights_only=True)`: a file carrying a pickled object is refused, not executed.
"""

import os
import pickle
import tempfile
from pathlib import Path

import torch

FORMAT = "srgan-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint of ours; the message names it."""


def checkpoint_name(kind: str, scale: int, run_name: str, tag: str) -> str:
    """e.g. srresnet_x4_quickstart_best.pt, srgan_x4_div2k_step00020000.pt."""
    return f"{kind}_x{scale}_{run_name}_{tag}.pt"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`.

    A crash mid-write leaves the previous file intact; the rename is atomic on POSIX.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state}
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint of ours; raises CheckpointError with the file named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            f"containers, which could run code when unpickled ({str(error).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an srgan checkpoint (no '{FORMAT}' marker)")
    return state


def step_checkpoints(folder: Path, prefix: str) -> list[Path]:
    """Periodic checkpoints `<prefix>_step*.pt` in `folder`, newest (by modification time) first."""
    paths = Path(folder).glob(f"{prefix}_step*.pt")
    return sorted(paths, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def find_resume_checkpoint(folder: Path, prefix: str) -> tuple[Path, dict] | None:
    """The newest periodic checkpoint that loads; corrupt newer ones are reported and skipped."""
    for path in step_checkpoints(folder, prefix):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            print(f"warning: skipping unusable checkpoint: {error}", flush=True)
    return None


def prune_checkpoints(folder: Path, prefix: str, keep: int) -> None:
    for path in step_checkpoints(folder, prefix)[keep:]:
        path.unlink(missing_ok=True)
