"""A stage's checkpoints: what goes into them, when they are written, and which are on disk.

Periodic checkpoints hold everything the rest of the run depends on (weights, optimizers,
loss scalers, step, best validation PSNR); `_best` and `_final` hold the generator only,
plus everything needed to use it. `generator` is always the generator that is evaluated: the
weight average when the run keeps one, whose trained generator is then `generator_trained`.
A checkpoint with non-finite weights is never written: it would poison every resume. On disk
they are ordered by the step stored inside them, never by file time or name. Resuming from
them: `srgan.run.resume`; the file format: `srgan.checkpoint`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from srgan.checkpoint import (
    checkpoint_name,
    checkpoint_prefix,
    non_finite_weight,
    parse_checkpoint_name,
    save_checkpoint,
)
from srgan.config import Config, config_to_dict
from srgan.run.folder import archive_folder, move_aside, remove_orphaned_temp_files
from srgan.run.metrics import NonFiniteLossError

# Adam's param_group keys that choose its implementation, not its maths: they belong to the
# device a run resumes on, not the one that saved it.
IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved optimizer state into `optimizer` as built for this device: its
    implementation flags stay (a CPU checkpoint resumed on CUDA runs fused Adam, not the saved
    foreach), and every per-parameter tensor takes its parameter's layout (fused Adam works on
    flat storage, so a moment saved in another memory format would update the wrong elements)."""
    built = [{key: group[key] for key in IMPLEMENTATION_FLAGS} for group in optimizer.param_groups]
    groups = [{**saved, **flags} for saved, flags in zip(state["param_groups"], built, strict=True)]
    optimizer.load_state_dict({**state, "param_groups": groups})
    for parameter, parameter_state in optimizer.state.items():
        for key, value in parameter_state.items():
            if torch.is_tensor(value) and value.shape == parameter.shape:
                parameter_state[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)


class TrainedNetwork(Protocol):
    """What a checkpoint holds of a trained network (`srgan.train.networks.Network`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


class StageCheckpoints:
    def __init__(
        self,
        *,
        stage_name: str,
        kind: str,
        networks: Mapping[str, TrainedNetwork],
        extra_state: dict,
        config: Config,
        folder: Path,
        steps_per_epoch: int,
        average: nn.Module | None = None,
    ) -> None:
        self.stage_name, self.kind = stage_name, kind
        self.networks, self.average, self.extra_state = networks, average, extra_state
        self.config = config_to_dict(config)
        self.spec = config.model.generator
        self.degradation = {
            "kind": config.data.degradation,
            "gaussian_sigma": config.data.gaussian_sigma,
        }
        self.scale, self.run_name = config.model.scale, config.name
        self.keep = config.runtime.keep_checkpoints
        self.folder, self.prefix = folder, checkpoint_prefix(kind, config.model.scale, config.name)
        self.steps_per_epoch = steps_per_epoch
        self.best_psnr = -float("inf")
        self.last_saved: Path | None = None  # the newest periodic checkpoint
        self.last_saved_step = -1

    def last_good(self) -> str:
        if self.last_saved is None:
            return "nothing was saved"
        return f"the last good checkpoint is {self.last_saved}"

    def state_key(self, network_name: str) -> str:
        """The key of a trained network's weights in a full checkpoint."""
        if network_name == "generator" and self.average is not None:
            return "generator_trained"
        return network_name

    def evaluated_generator(self) -> nn.Module:
        """The generator that is validated, and that `_best`, `_final` and exports hold."""
        if self.average is not None:
            return self.average
        return self.networks["generator"].model

    def state(self, step: int, metrics: dict, full: bool) -> dict:
        state = {
            "kind": self.kind,
            "stage": self.stage_name,
            "step": step,
            "epoch": step // self.steps_per_epoch,
            "config": self.config,
            "model": self.spec.to_dict(),
            "degradation": self.degradation,
            "generator": self.evaluated_generator().state_dict(),
            "best_psnr_y": self.best_psnr,
            "metrics": metrics,
            **self.extra_state,
        }
        if full:  # what resuming needs besides the generator
            for name, network in self.networks.items():
                state[self.state_key(name)] = network.model.state_dict()
            state["optimizers"] = {
                n: net.optimizer.state_dict() for n, net in self.networks.items()
            }
            state["scalers"] = {n: net.scaler.state_dict() for n, net in self.networks.items()}
        return state

    def path(self, tag: str) -> Path:
        """This stage's checkpoint `tag` ("final", "best", "step00000100")."""
        return self.folder / checkpoint_name(self.kind, self.scale, self.run_name, tag)

    def save(self, tag: str, step: int, metrics: dict, full: bool = True) -> Path:
        """Write `<prefix>_<tag>.pt`; refuses non-finite weights."""
        modules = {name: network.model for name, network in self.networks.items()}
        if self.average is not None:
            modules["generator_average"] = self.average
        bad_weight = non_finite_weight(modules)
        if bad_weight is not None:
            terms = ", ".join(f"{k[5:]}={v:.4g}" for k, v in metrics.items() if "loss/" in k)
            raise NonFiniteLossError(
                f"{self.stage_name} step {step}: {bad_weight} is not finite (mean losses of "
                f"the last steps: {terms}); {self.last_good()}"
            )
        path = self.path(tag)
        save_checkpoint(self.state(step, metrics, full), path)
        if full:
            self.last_saved, self.last_saved_step = path, step
        return path

    def save_periodic(self, step: int, metrics: dict) -> Path:
        path = self.save(f"step{step:08d}", step, metrics)
        prune_checkpoints(self.folder, self.prefix, self.keep, just_written=path)
        return path

    def record_validation(self, step: int, metrics: dict) -> None:
        """Save `_best` when this validation beats every earlier one."""
        if metrics["valid/psnr_y"] > self.best_psnr:
            self.best_psnr = metrics["valid/psnr_y"]
            self.save("best", step, metrics, full=False)


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
