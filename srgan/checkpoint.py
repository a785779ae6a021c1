"""Checkpoints: one dict with the step inside, written atomically, verified and loaded safely.

A checkpoint holds plain tensors, numbers, strings, lists and dicts only, so it loads with
`torch.load(weights_only=True)`: a file carrying a pickled object is refused, not executed.
torch.save writes a zip archive with a CRC-32 per record; `load_checkpoint` checks them all,
because torch.load itself reads a flipped bit in a tensor without complaint.
"""

import json
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from srgan.files import UnsafeFileError, atomic_write, load_state_file
from srgan.models.generator import Generator, GeneratorSpec, spec_mismatch

FORMAT = "srgan-checkpoint"
VERSION = 1
# What `checkpoint_name` makes: <kind>_x<scale>_<run name>_<tag>.pt
CHECKPOINT_NAME = re.compile(
    r"(?P<kind>[a-z]+)_x(?P<scale>\d+)_(?P<run>.+)_(?P<tag>step\d{8}|best|final)\.pt"
)


# Weights of these dtypes load, cast to the model's float32 (real float weights, at another
# precision); bool, integer, complex or float8 tensors are refused, whatever their shape.
FLOAT_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint of ours; the message names it."""


def checkpoint_prefix(kind: str, scale: int, run_name: str) -> str:
    """The part of a run's checkpoint names before the tag, e.g. srresnet_x4_quickstart."""
    return f"{kind}_x{scale}_{run_name}"


def checkpoint_name(kind: str, scale: int, run_name: str, tag: str) -> str:
    """e.g. srresnet_x4_quickstart_best.pt, srgan_x4_div2k_step00020000.pt."""
    return f"{checkpoint_prefix(kind, scale, run_name)}_{tag}.pt"


def parse_checkpoint_name(file_name: str) -> tuple[str, int, str] | None:
    """(kind, scale, run name) of a file named by `checkpoint_name`, or None."""
    match = CHECKPOINT_NAME.fullmatch(file_name)
    if match is None:
        return None
    return match["kind"], int(match["scale"]), match["run"]


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


def checkpoint_spec(state: dict, path: Path | str) -> GeneratorSpec:
    """The GeneratorSpec a checkpoint's `model` entry describes."""
    try:
        return GeneratorSpec.from_dict(state.get("model"))
    except ValueError as error:
        raise CheckpointError(f"{path} has no usable model description ({error})") from None


def generator_from_checkpoint(state: dict, source: Path | str = "checkpoint") -> Generator:
    """Build the generator a checkpoint (or export) describes and load its weights, eval mode.

    The declared spec is checked against the tensors first: a file is not trusted to say how
    much memory to allocate. float16, bfloat16 and float64 weights are cast to float32; weights
    of any other dtype (FLOAT_WEIGHT_DTYPES) are refused, naming the tensor."""
    spec = checkpoint_spec(state, source)
    mismatch = spec_mismatch(spec, state.get("generator"))
    if mismatch is not None:
        raise CheckpointError(
            f"{source} does not hold the generator it declares ({spec.describe()}): {mismatch}"
        )
    generator = Generator.from_spec(spec)
    for name, tensor in generator.state_dict().items():
        found = state["generator"][name].dtype
        if tensor.is_floating_point() and found not in FLOAT_WEIGHT_DTYPES:
            raise CheckpointError(
                f"{source} holds no float weights: tensor {name} is "
                f"{str(found).removeprefix('torch.')} (float16, bfloat16, float32 or float64 "
                "expected)"
            )
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


def check_step(state: dict, path: Path, last_step: float) -> None:
    """Refuse a checkpoint whose stored step is no step of this stage's schedule (0 to
    `last_step`): resuming past the schedule's end would mark the stage finished untrained."""
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path} holds no valid step (step {step!r})")
    if step > last_step:
        raise CheckpointError(
            f"{path} holds step {step}, beyond the {last_step} steps of this stage's schedule: "
            f"it is damaged, or from a longer schedule"
        )


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
