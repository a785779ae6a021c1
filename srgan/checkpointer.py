"""A stage's checkpoints: what goes into them, when they are written, and resuming from them.

Periodic checkpoints hold everything the rest of the run depends on (weights, optimizers,
loss scalers, step, best validation PSNR); `_best` and `_final` hold the generator only,
plus everything needed to use it. A checkpoint with non-finite weights is never written:
it would poison every resume.
"""

from pathlib import Path

from srgan.checkpoint import (
    CheckpointError,
    check_resumable,
    checkpoint_name,
    checkpoint_prefix,
    config_changes,
    load_resume_checkpoint,
    non_finite_weight,
    prune_checkpoints,
    save_checkpoint,
)
from srgan.config import Config, config_to_dict
from srgan.metrics_log import NonFiniteLossError
from srgan.steps import Network


class Checkpointer:
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
    ) -> None:
        self.stage_name, self.kind = stage_name, kind
        self.networks, self.extra_state = networks, extra_state
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

    def last_good(self) -> str:
        if self.last_saved is None:
            return "nothing was saved"
        return f"the last good checkpoint is {self.last_saved}"

    def state(self, step: int, metrics: dict, full: bool) -> dict:
        state = {
            "kind": self.kind,
            "stage": self.stage_name,
            "step": step,
            "epoch": step // self.steps_per_epoch,
            "config": self.config,
            "model": self.spec.to_dict(),
            "degradation": self.degradation,
            "generator": self.networks["generator"].bare.state_dict(),
            "best_psnr_y": self.best_psnr,
            "metrics": metrics,
            **self.extra_state,
        }
        if full:  # what resuming needs besides the generator
            state.update({name: net.bare.state_dict() for name, net in self.networks.items()})
            state["optimizers"] = {
                n: net.optimizer.state_dict() for n, net in self.networks.items()
            }
            state["scalers"] = {n: net.scaler.state_dict() for n, net in self.networks.items()}
        return state

    def save(self, tag: str, step: int, metrics: dict, full: bool = True) -> Path | None:
        """Write `<prefix>_<tag>.pt` (main process only); refuses non-finite weights."""
        if not self.is_main:
            return None
        bad_weight = non_finite_weight({n: net.bare for n, net in self.networks.items()})
        if bad_weight is not None:
            terms = ", ".join(f"{k[5:]}={v:.4g}" for k, v in metrics.items() if "loss/" in k)
            raise NonFiniteLossError(
                f"{self.stage_name} step {step}: {bad_weight} is not finite (mean losses of "
                f"the last steps: {terms}); {self.last_good()}"
            )
        path = self.folder / checkpoint_name(self.kind, self.scale, self.run_name, tag)
        save_checkpoint(self.state(step, metrics, full), path)
        if full:
            self.last_saved = path
        return path

    def save_periodic(self, step: int, metrics: dict) -> Path | None:
        path = self.save(f"step{step:08d}", step, metrics)
        if self.is_main:
            prune_checkpoints(self.folder, self.prefix, self.keep)
        return path

    def record_validation(self, step: int, metrics: dict) -> None:
        """Save `_best` when this validation beats every earlier one."""
        if metrics["valid/psnr_y"] > self.best_psnr:
            self.best_psnr = metrics["valid/psnr_y"]
            self.save("best", step, metrics, full=False)

    def resume(self, resume: str) -> tuple[int, list[str]] | None:
        """Load `--resume` ("auto" or a path) into the live networks.

        Returns (step, config changes since the checkpoint), or None when "auto" finds none.
        """
        found = load_resume_checkpoint(resume, self.folder, self.prefix)
        if found is None:
            return None
        path, state = found
        check_resumable(state, path, self.kind, self.spec, list(self.networks))
        try:
            for name, network in self.networks.items():
                network.bare.load_state_dict(state[name])
                network.optimizer.load_state_dict(state["optimizers"][name])
                network.scaler.load_state_dict(state["scalers"][name])
        except (KeyError, RuntimeError, ValueError) as error:  # e.g. another crop size or width
            reason = str(error).strip().splitlines()[0]
            raise CheckpointError(f"{path} does not fit this run's networks ({reason})") from None
        self.last_saved, self.best_psnr = path, state["best_psnr_y"]
        return state["step"], config_changes(state["config"], self.config)
