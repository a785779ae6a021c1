"""The training loop shared by both stages: batches, schedule, logging, validation, checkpoints.

The loop knows nothing about losses: it calls `step_fn(lr_image, hr_image)` and gets the loss
terms back. Periodic checkpoints hold everything the rest of the run depends on (weights,
optimizers, loss scalers, step); the learning rate is a pure function of the step and each
batch a pure function of (seed, stage, epoch, step) (see `srgan.data`), and no step draws
from a global RNG, so a resumed run continues bit for bit where it stopped.

SIGINT/SIGTERM let the current step finish, save a checkpoint and raise `Interrupted` (a
second signal stops at once). A NaN/inf loss or weight raises `NonFiniteLossError` naming the
step, and no checkpoint is ever written with non-finite weights.
"""

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from srgan.checkpoint import (
    check_resumable,
    checkpoint_name,
    checkpoint_prefix,
    config_changes,
    generator_spec,
    load_resume_checkpoint,
    non_finite_weight,
    prune_checkpoints,
    restore_training_state,
    save_checkpoint,
)
from srgan.config import Config, config_to_dict
from srgan.data import TrainCrops, batch_stream
from srgan.degradation import degrade
from srgan.inference import upscale_tensor
from srgan.metrics import image_metrics
from srgan.plotting import plot_curves
from srgan.runtime import Runtime

StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class NonFiniteLossError(RuntimeError):
    """A loss or weight became NaN or inf; the message names the step, the terms and the last
    good checkpoint (none is ever written with non-finite weights)."""


class Interrupted(Exception):
    """SIGINT/SIGTERM: the loop finished its step and saved `checkpoint` (after a second signal
    it stops at once and `checkpoint` is the last periodic one; None: nothing to resume from)."""

    def __init__(self, signal_number: int, checkpoint: Path | None, step: int) -> None:
        name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {name} after step {step}")
        self.exit_code = 128 + signal_number
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class RunPaths:
    log_dir: Path
    checkpoint_dir: Path

    @property
    def metrics_file(self) -> Path:
        return self.log_dir / "metrics.jsonl"


@dataclass
class Stage:
    """What differs between pretraining and GAN training, for the shared loop."""

    name: str  # "pretrain" or "gan", the stage label in the logs
    kind: str  # "srresnet" or "srgan", the checkpoint file prefix
    stage_id: int  # part of the data seed, so the two stages draw different crops
    batch_size: int
    epochs: int
    validate_every: int
    lr_at: Callable[[int], float]  # learning rate as a function of the global step
    modules: dict[str, nn.Module]  # unwrapped modules to checkpoint
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    extra_state: dict = field(default_factory=dict)  # saved as is (e.g. which VGG weights)


def prepare_validation(
    pairs: list[tuple[str, np.ndarray]], config: Config
) -> list[tuple[str, torch.Tensor, np.ndarray]]:
    """(name, LR (1, 3, h, w) in [0, 1], HR uint8), the LR made by the training degradation."""
    prepared = []
    for name, hr_image in pairs:
        hr_tensor = torch.tensor(hr_image).permute(2, 0, 1)[None].double() / 255
        lr_image = degrade(
            hr_tensor, config.model.scale, config.data.degradation, config.data.gaussian_sigma
        )
        prepared.append((name, lr_image.float(), hr_image))
    return prepared


def validate(
    generator: nn.Module, validation: list, scale: int, device: torch.device
) -> dict[str, float]:
    """Mean PSNR/SSIM (Y channel, `scale` px border shaved) over the validation images, in fp32."""
    was_training = generator.training
    generator.eval()
    rows = []
    for _, lr_image, hr_image in validation:
        sr = upscale_tensor(generator, lr_image.to(device), tile=256)
        sr_image = (sr[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        rows.append(image_metrics(sr_image, hr_image, crop_border=scale))
    generator.train(was_training)
    return {f"valid/{key}": float(np.mean([r[key] for r in rows])) for key in ("psnr_y", "ssim_y")}


def _read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill mid-write
            continue
    return rows


def _truncate_metrics(path: Path, stage: str, step: int) -> None:
    """On resume, drop this stage's rows logged after the checkpoint (they will be redone)."""
    if not path.is_file():
        return
    kept = [r for r in _read_metrics(path) if r.get("stage") != stage or r["step"] <= step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if text != path.read_text():
        # Replace, not rewrite in place: a kill now must not lose the rows of earlier steps.
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text)
        temp.replace(path)


def run_stage(
    stage: Stage,
    step_fn: StepFn,
    *,
    config: Config,
    runtime: Runtime,
    crops: TrainCrops,
    validation: list,
    paths: RunPaths,
    resume: str | None = None,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
) -> dict:
    """Train one stage to its end (or `max_steps`); returns {"step", "best_psnr_y", final paths}."""
    scale = config.model.scale
    prefix = checkpoint_prefix(stage.kind, scale, config.name)
    steps_per_epoch = crops.steps_per_epoch(stage.batch_size)
    total_steps = stage.epochs * steps_per_epoch
    end_step = total_steps if max_steps is None else min(total_steps, max_steps)
    checkpoint_every = checkpoint_every or config.runtime.checkpoint_every
    generator = stage.modules["generator"]
    model = generator_spec(scale, config.model.num_blocks, config.model.num_channels)
    step, best_psnr = 0, -float("inf")
    last_saved: Path | None = None  # the newest periodic checkpoint, named if the run fails

    if resume is not None:
        found = load_resume_checkpoint(resume, paths.checkpoint_dir, prefix)
        if found is not None:
            last_saved, state = found
            check_resumable(state, last_saved, stage.kind, model, list(stage.modules))
            restore_training_state(
                state, last_saved, stage.modules, stage.optimizers, stage.scalers
            )
            step, best_psnr = state["step"], state["best_psnr_y"]
            if runtime.is_main:
                print(f"resumed {stage.name} from {last_saved} at step {step}", flush=True)
                changes = config_changes(state["config"], config_to_dict(config))
                if changes:
                    print(f"warning: config differs from the checkpoint's: {'; '.join(changes)}")
                _truncate_metrics(paths.metrics_file, stage.name, step)

    def state_dict(metrics: dict, full: bool) -> dict:
        state = {
            "kind": stage.kind,
            "stage": stage.name,
            "step": step,
            "epoch": step // steps_per_epoch,
            "config": config_to_dict(config),
            "model": model,
            "degradation": {
                "kind": config.data.degradation,
                "gaussian_sigma": config.data.gaussian_sigma,
            },
            "generator": generator.state_dict(),
            "best_psnr_y": best_psnr,
            "metrics": metrics,
            **stage.extra_state,
        }
        if full:  # what resuming needs besides the generator
            state.update({n: m.state_dict() for n, m in stage.modules.items()})
            state["optimizers"] = {n: o.state_dict() for n, o in stage.optimizers.items()}
            state["scalers"] = {n: s.state_dict() for n, s in stage.scalers.items()}
        return state

    def last_good() -> str:
        return f"the last good checkpoint is {last_saved}" if last_saved else "nothing was saved"

    def save(tag: str, metrics: dict, full: bool = True) -> Path | None:
        nonlocal last_saved
        if not runtime.is_main:
            return None
        # A checkpoint with non-finite weights would poison every resume: never write one.
        bad_weight = non_finite_weight(stage.modules)
        if bad_weight is not None:
            terms = ", ".join(f"{k[5:]}={v:.4g}" for k, v in metrics.items() if "loss/" in k)
            raise NonFiniteLossError(
                f"{stage.name} step {step}: {bad_weight} is not finite (mean losses of the "
                f"last steps: {terms}); {last_good()}"
            )
        path = paths.checkpoint_dir / checkpoint_name(stage.kind, scale, config.name, tag)
        save_checkpoint(state_dict(metrics, full), path)
        if full:
            last_saved = path
        return path

    received: list[int] = []

    def on_signal(number: int, frame: object) -> None:
        if received:  # a second signal: do not wait for the step to end, stop now
            raise Interrupted(number, last_saved, step)
        received.append(number)  # the loop saves a checkpoint after the current step

    previous_handlers = {
        number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)
    }
    rows = slice(
        runtime.rank * stage.batch_size // runtime.world_size,
        (runtime.rank + 1) * stage.batch_size // runtime.world_size,
    )
    positions = [(s // steps_per_epoch, s % steps_per_epoch, s) for s in range(step, end_step)]
    stream = batch_stream(
        crops,
        positions,
        seed=config.seed,
        stage=stage.stage_id,
        batch_size=stage.batch_size,
        rows=rows,
        pin_memory=runtime.device.type == "cuda",
    )
    progress = tqdm(
        total=end_step,
        initial=step,
        desc=stage.name,
        disable=not runtime.is_main,
        dynamic_ncols=True,
        file=sys.stdout,
    )
    history: list[torch.Tensor] = []
    loss_names: list[str] = []
    last_metrics: dict = {}
    # tqdm has no .initial when disabled (ranks other than 0): keep our own start step.
    started, start_step = time.perf_counter(), step
    try:
        for hr_uint8 in stream:
            hr_image = runtime.to_device(hr_uint8).float() / 255
            lr_image = degrade(hr_image, scale, config.data.degradation, config.data.gaussian_sigma)
            learning_rate = stage.lr_at(step)
            for optimizer in stage.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate
            losses = step_fn(lr_image, hr_image * 2 - 1)
            loss_names = list(losses)
            history.append(torch.stack(list(losses.values())))
            step += 1
            progress.update(1)
            epoch_end = step % steps_per_epoch == 0
            validate_now = epoch_end and (step // steps_per_epoch) % stage.validate_every == 0
            # Several processes act on a signal at a log step only, once they agree on it
            # (below): a rank stopping a step before the others would leave them hanging.
            checkpoint_now = step % checkpoint_every == 0 or (
                bool(received) and not runtime.distributed
            )
            if step % config.runtime.log_every and not (
                validate_now or checkpoint_now or step == end_step
            ):
                continue
            # One host sync per log interval: find the first non-finite step, log the means.
            values = torch.stack(history).float().cpu()
            first_step = step - len(history) + 1
            history.clear()
            bad = (~torch.isfinite(values)).any(dim=1).nonzero()
            if len(bad):
                row = values[bad[0, 0]]
                terms = ", ".join(
                    f"{n}={v:.4g}" for n, v in zip(loss_names, row.tolist(), strict=True)
                )
                raise NonFiniteLossError(
                    f"{stage.name} step {first_step + int(bad[0, 0])}: non-finite loss ({terms}); "
                    f"{last_good()}"
                )
            metrics = {
                f"loss/{n}": v for n, v in zip(loss_names, values.mean(0).tolist(), strict=True)
            }
            metrics["lr"] = learning_rate
            metrics["steps_per_second"] = (step - start_step) / (time.perf_counter() - started)
            if validate_now and runtime.is_main:
                metrics.update(validate(generator, validation, scale, runtime.device))
                if metrics["valid/psnr_y"] > best_psnr:
                    best_psnr = metrics["valid/psnr_y"]
                    save("best", metrics, full=False)
            if runtime.is_main:
                last_metrics = {"stage": stage.name, "step": step, "epoch": step / steps_per_epoch}
                last_metrics.update(metrics)
                paths.metrics_file.parent.mkdir(parents=True, exist_ok=True)
                with paths.metrics_file.open("a") as file:
                    file.write(json.dumps(last_metrics) + "\n")
                progress.set_postfix(
                    {k.split("/")[-1]: f"{v:.4g}" for k, v in metrics.items() if "/" in k}
                )
                if validate_now:
                    plot_curves(_read_metrics(paths.metrics_file), paths.log_dir / "curves.png")
            interrupt = bool(received)
            if runtime.distributed and dist.is_initialized():
                flag = torch.tensor([float(interrupt)], device=runtime.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                interrupt = bool(flag.item())
            if checkpoint_now or interrupt:  # a signal may also come during validation
                saved = save(f"step{step:08d}", last_metrics)
                if runtime.is_main:
                    prune_checkpoints(paths.checkpoint_dir, prefix, config.runtime.keep_checkpoints)
                if interrupt:
                    raise Interrupted(received[0] if received else signal.SIGTERM, saved, step)
            if runtime.distributed and validate_now:
                dist.barrier()
    finally:
        progress.close()
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    final = save("final", last_metrics) if step >= end_step else None
    if runtime.is_main:
        plot_curves(_read_metrics(paths.metrics_file), paths.log_dir / "curves.png")
    return {"step": step, "best_psnr_y": best_psnr, "final": final}
