"""A stage's checkpoints: what goes into them, when they are written, and resuming from them.

The verbs: `save` (and `save_periodic`, `record_validation`), `start` (refuse or set aside an
earlier run's checkpoints, or `resume` from the latest one). The metrics log and the other
records of the log folder are the loop's: `start` only says whether they go aside too.

Periodic checkpoints hold everything the rest of the run depends on (weights, optimizers,
loss scalers, step, best validation PSNR); `_best` and `_final` hold the generator only,
plus everything needed to use it. `generator` is always the generator that is evaluated: the
weight average when the run keeps one, whose trained generator is then `generator_trained`.
A checkpoint with non-finite weights is never written: it would poison every resume.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from srgan.checkpoint import (
    CheckpointError,
    check_resumable,
    checkpoint_name,
    checkpoint_prefix,
    config_changes,
    non_finite_weight,
    save_checkpoint,
)
from srgan.config import Config, config_to_dict, upgrade_keys
from srgan.run.folder import (
    RunFolderError,
    archive_folder,
    load_resume_checkpoint,
    move_aside,
    other_run_checkpoints,
    prune_checkpoints,
    stored_checkpoints,
)
from srgan.run.metrics import NonFiniteLossError
from srgan.train.averaging import WeightAverage
from srgan.train.networks import Network, load_optimizer_state

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
    """Where a stage starts: its step, and the folder an earlier run's files were moved to
    (None: nothing was), which also receives the stage's records when `records_too`."""

    step: int
    resumed: bool
    set_aside: Path | None = None
    records_too: bool = False


class StageCheckpoints:
    def __init__(
        self,
        *,
        stage_name: str,
        kind: str,
        networks: dict[str, Network],
        extra_state: dict,
        config: Config,
        folder: Path,
        steps_per_epoch: int,
        is_main: bool,
        average: WeightAverage | None = None,
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
        self.steps_per_epoch, self.is_main = steps_per_epoch, is_main
        self.best_psnr = -float("inf")
        self.last_saved: Path | None = None  # the newest periodic checkpoint
        self.last_saved_step = -1
        self.changes: list[str] = []  # config keys changed since the resumed checkpoint

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
            return self.average.model
        return self.networks["generator"].bare

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
                state[self.state_key(name)] = network.bare.state_dict()
            state["optimizers"] = {
                n: net.optimizer.state_dict() for n, net in self.networks.items()
            }
            state["scalers"] = {n: net.scaler.state_dict() for n, net in self.networks.items()}
        return state

    def path(self, tag: str) -> Path:
        """This stage's checkpoint `tag` ("final", "best", "step00000100")."""
        return self.folder / checkpoint_name(self.kind, self.scale, self.run_name, tag)

    def save(self, tag: str, step: int, metrics: dict, full: bool = True) -> Path | None:
        """Write `<prefix>_<tag>.pt` (main process only); refuses non-finite weights."""
        if not self.is_main:
            return None
        modules = {name: network.bare for name, network in self.networks.items()}
        if self.average is not None:
            modules["generator_average"] = self.average.model
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

    def save_periodic(self, step: int, metrics: dict) -> Path | None:
        path = self.save(f"step{step:08d}", step, metrics)
        if self.is_main:
            prune_checkpoints(self.folder, self.prefix, self.keep, just_written=path)
        return path

    def record_validation(self, step: int, metrics: dict) -> None:
        """Save `_best` when this validation beats every earlier one."""
        if metrics["valid/psnr_y"] > self.best_psnr:
            self.best_psnr = metrics["valid/psnr_y"]
            self.save("best", step, metrics, full=False)

    def start(self, resume: str | None, fresh: bool, has_records: bool, total_steps: int) -> Start:
        """The step this stage starts from, with its checkpoints made consistent with it.

        A fresh start refuses to overwrite an earlier run (its checkpoints, those of this stage
        with another scale or name, or its records when `has_records`) unless `fresh`, which
        moves them aside. A resume restores the networks; checkpoints of later steps (a branch
        abandoned by `--resume PATH`) are moved aside. `total_steps`: the stage's schedule.
        """
        earlier = stored_checkpoints(self.folder, self.prefix)
        if resume is None:
            others = other_run_checkpoints(self.folder, self.kind, self.prefix)
            if (earlier or others or has_records) and not fresh:
                raise RunFolderError(self.refusal(earlier, others))
            paths = [c.path for c in earlier] + others
            return Start(0, False, self.set_aside(paths, has_records), True)
        step = self.resume(resume, total_steps)
        if step is None:
            print(
                f"--resume {resume}: no checkpoint {self.prefix}_step*.pt or _final.pt in "
                f"{self.folder}; starting {self.stage_name} from step 0",
                flush=True,
            )
            return Start(0, False, self.set_aside([c.path for c in earlier], has_records), True)
        later = [c.path for c in earlier if c.step > step and c.path != self.last_saved]
        if later and self.is_main:
            print(f"warning: moving {len(later)} checkpoint(s) of later steps aside", flush=True)
        return Start(step, True, self.set_aside(later, False), False)

    def refusal(self, earlier: list, others: list[Path]) -> str:
        start_over = f"start over with --fresh (which moves its files to {self.folder}/old-<time>/)"
        if others and not earlier:
            return (
                f"{self.folder} already holds a {self.stage_name} run with another scale or name "
                f"({len(others)} checkpoint(s), e.g. {others[0].name}): use another --run-dir, "
                f"or {start_over}"
            )
        found = f"{len(earlier)} {self.prefix} checkpoint(s)" if earlier else "its metrics"
        return (
            f"{self.folder} already holds a {self.stage_name} run ({found}): continue it with "
            f"--resume auto, or {start_over}"
        )

    def set_aside(self, paths: list[Path], records_too: bool) -> Path | None:
        """Move `paths` to a new old-<time>/ folder and return it (main process only), also
        when only the records go there; None when there is nothing to move."""
        if not self.is_main or not (paths or records_too):
            return None
        destination = archive_folder(self.folder)
        move_aside(paths, destination)
        print(f"moved the earlier run's files to {destination}", flush=True)
        return destination

    def resume(self, resume: str, total_steps: int) -> int | None:
        """Load `--resume` ("auto" or a path) into the live networks; its step, or None when
        "auto" finds no checkpoint of a step within the stage's `total_steps`."""
        found = load_resume_checkpoint(resume, self.folder, self.prefix, total_steps)
        if found is None:
            return None
        path, state = found
        try:
            keys = [self.state_key(name) for name in self.networks]
            check_resumable(state, path, self.kind, self.spec, keys)
            for name, network in self.networks.items():
                network.bare.load_state_dict(state[self.state_key(name)])
                load_optimizer_state(network.optimizer, state["optimizers"][name])
                network.scaler.load_state_dict(state["scalers"][name])
            if self.average is not None:
                self.average.model.load_state_dict(state["generator"])
        except (CheckpointError, KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(self.refused(path, state, error)) from None
        self.last_saved, self.last_saved_step = path, state["step"]
        self.best_psnr = state["best_psnr_y"]
        changes = resume_changes(path, state["config"], self.config)
        self.changes = [c for c in changes if c.split(":")[0] not in BOOKKEEPING_KEYS]
        return state["step"]

    def refused(self, path: Path, state: dict, error: Exception) -> str:
        """Why `path` cannot resume this run, naming the config keys that changed."""
        reason = str(error).strip().splitlines()[0]
        if not isinstance(error, CheckpointError):  # e.g. another crop size or width
            reason = f"{path} does not fit this run's networks ({reason})"
        changes = config_changes(upgrade_keys(state.get("config", {})), self.config)
        keys = [change for change in changes if not change.startswith("name:")]
        if keys:
            reason += f"; config keys that differ from the checkpoint's: {'; '.join(keys)}"
        return reason


def resume_changes(path: Path, saved: dict, current: dict) -> list[str]:
    """The changes from a checkpoint's `saved` config to the `current` one; raises when one of
    them is a change a resume cannot make (FIXED_KEYS)."""
    changes = config_changes(upgrade_keys(saved), current)
    fixed = [change for change in changes if change.split(":")[0] in FIXED_KEYS]
    if fixed:
        raise CheckpointError(
            f"{path} was trained with other settings that a resume cannot change "
            f"({'; '.join(fixed)}): start a new run (in another --run-dir, or with --fresh)"
        )
    return changes


def report_config_changes(changes: list[str]) -> None:
    """Changes a resume allows but that break bit-identical continuation, on stderr (the loop
    also records them in the metrics, so a later reader of the curves knows)."""
    print(
        f"warning: config differs from the checkpoint's (the run goes on, but not "
        f"bit-identical to an uninterrupted one): {'; '.join(changes)}",
        file=sys.stderr,
    )
