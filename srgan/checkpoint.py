"""Checkpoints: one dict with the step inside, written atomically, verified and loaded safely.

A checkpoint holds plain tensors, numbers, strings, lists and dicts only, so it loads with
`torch.load(weights_only=True)`: a file carrying a pickled object is refused, not executed.
torch.save writes a zip archive with a CRC-32 per record; `load_checkpoint` checks them all,
because torch.load itself reads a flipped bit in a tensor without complaint.
"""

import json
import zipfile
from pathlib import Path

import torch
from torch import nn

from srgan.files import UnsafeFileError, atomic_write, load_state_file
from srgan.generator import Generator, GeneratorSpec

FORMAT = "srgan-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint of ours; the message names it."""


def checkpoint_prefix(kind: str, scale: int, run_name: str) -> str:
    """The part of a run's checkpoint names before the tag, e.g. srresnet_x4_quickstart."""
    return f"{kind}_x{scale}_{run_name}"


def checkpoint_name(kind: str, scale: int, run_name: str, tag: str) -> str:
    """e.g. srresnet_x4_quickstart_best.pt, srgan_x4_div2k_step00020000.pt."""
    return f"{checkpoint_prefix(kind, scale, run_name)}_{tag}.pt"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write atomically and durably (temp file, fsync, rename): a crash mid-write leaves the
    previous file intact."""
    state = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(Path(path), lambda file: torch.save(state, file))


def _verify_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad_record = archive.testzip()
    except Exception as error:  # a damaged archive raises many types (BadZipFile, UnicodeError...)
        raise CheckpointError(
            f"{path} is truncated or corrupt: not a complete torch.save archive ({error})"
        ) from None
    if bad_record is not None:
        raise CheckpointError(f"{path} is corrupt: record {bad_record} fails its CRC check")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint of ours; raises CheckpointError with the file named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    _verify_archive(path)
    try:
        state = load_state_file(path, map_location)
    except UnsafeFileError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an srgan checkpoint (no '{FORMAT}' marker)")
    return state


def resumable_checkpoints(folder: Path, prefix: str) -> list[Path]:
    """`<prefix>_step*.pt` and `<prefix>_final.pt` in `folder`, newest first.

    Newest by modification time, not by step: after a restart from scratch, or a resume from
    an older checkpoint, the files of the current run are the newest whatever their steps.
    The step in the name only breaks ties on file systems with coarse timestamps.
    """
    step_pattern = f"{prefix}_step{'[0-9]' * 8}.pt"  # exactly checkpoint_name's tags
    paths = [*Path(folder).glob(step_pattern), *Path(folder).glob(f"{prefix}_final.pt")]

    def age(path: Path) -> tuple[int, bool, str]:
        return path.stat().st_mtime_ns, path.stem.endswith("_final"), path.name

    return sorted(paths, key=age, reverse=True)


def find_resume_checkpoint(folder: Path, prefix: str) -> tuple[Path, dict] | None:
    """The newest resumable checkpoint that loads, or None when there is none at all.

    Unusable newer ones (e.g. truncated by a full disk) are reported and skipped; when every
    one is unusable this raises, rather than silently training from scratch over them.
    """
    candidates = resumable_checkpoints(folder, prefix)
    for path in candidates:
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            print(f"warning: skipping unusable checkpoint: {error}", flush=True)
    if candidates:
        raise CheckpointError(
            f"none of the {len(candidates)} checkpoints {prefix}_*.pt in {folder} loads; "
            f"move them away to start over, or pass --resume PATH"
        )
    return None


def load_resume_checkpoint(resume: str, folder: Path, prefix: str) -> tuple[Path, dict] | None:
    """--resume: "auto" (this run's newest usable checkpoint, if any) or a checkpoint path."""
    if resume == "auto":
        return find_resume_checkpoint(folder, prefix)
    return Path(resume), load_checkpoint(resume)


def checkpoint_spec(state: dict, path: Path | str) -> GeneratorSpec:
    """The GeneratorSpec a checkpoint's `model` entry describes."""
    try:
        return GeneratorSpec.from_dict(state.get("model"))
    except ValueError as error:
        raise CheckpointError(f"{path} has no usable model description ({error})") from None


def generator_from_checkpoint(state: dict, source: Path | str = "checkpoint") -> Generator:
    """Build the generator a checkpoint (or export) describes and load its weights, eval mode."""
    generator = Generator.from_spec(checkpoint_spec(state, source))
    try:
        generator.load_state_dict(state["generator"])
    except (KeyError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{source} does not hold a matching generator ({reason})") from None
    return generator.eval()


def check_spec(state: dict, path: Path | str, wanted: GeneratorSpec) -> None:
    """Refuse a checkpoint whose generator is not the one the config asks for."""
    found = checkpoint_spec(state, path)
    if found != wanted:
        raise CheckpointError(
            f"{path} holds a generator with {found.describe()}, but the config asks for "
            f"{wanted.describe()}"
        )


def check_resumable(
    state: dict, path: Path, kind: str, spec: GeneratorSpec, modules: list[str]
) -> None:
    """Refuse, saying why, a checkpoint that cannot continue this run's training."""
    if state.get("kind") != kind:
        raise CheckpointError(
            f"{path} is a {state.get('kind')} checkpoint, but this run trains {kind}"
        )
    check_spec(state, path, spec)
    missing = [name for name in (*modules, "optimizers", "scalers") if name not in state]
    if missing:
        raise CheckpointError(
            f"{path} has no {', '.join(missing)} state to resume from (a _best checkpoint holds "
            f"the generator only): pass a _step or _final checkpoint"
        )


def restore_training_state(
    state: dict,
    path: Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    scalers: dict[str, torch.amp.GradScaler],
) -> None:
    """Load a checkpoint's weights, optimizer and loss-scaler states into the live objects."""
    try:
        for name, module in modules.items():
            module.load_state_dict(state[name])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scaler in scalers.items():
            scaler.load_state_dict(state["scalers"][name])
    except (KeyError, RuntimeError, ValueError) as error:  # e.g. another crop size or width
        reason = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit this run's networks ({reason})") from None


def config_changes(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for each value of `current` config that differs from a checkpoint's."""
    changes = []
    for key in sorted(saved.keys() | current.keys()):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            changes.append(f"{prefix}{key}: {json.dumps(old)} -> {json.dumps(new)}")
    return changes


def non_finite_weight(modules: dict[str, nn.Module]) -> str | None:
    """'<module> weight <name>' of the first NaN/inf floating-point tensor, or None."""
    for module_name, module in modules.items():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return f"{module_name} weight {name}"
    return None


def prune_checkpoints(folder: Path, prefix: str, keep: int) -> None:
    """Keep the `keep` newest periodic checkpoints; drop temp files left by a killed save."""
    folder = Path(folder)
    periodic = [p for p in resumable_checkpoints(folder, prefix) if not p.stem.endswith("_final")]
    for path in periodic[keep:]:
        path.unlink(missing_ok=True)
    # Called right after a save completed, so no temp file of this run is still being written.
    for temp in folder.glob(f".{prefix}_*.tmp"):
        temp.unlink(missing_ok=True)
