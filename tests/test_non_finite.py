"""Non-finite values and signals, through the real loop: a NaN loss or weight stops the run
naming the step and leaves the last finite checkpoint as the newest (none with non-finite
weights is ever written); SIGINT saves after the step, a second one stops at once."""

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import TinyDataset, run_in_process

from srgan.checkpoint import load_checkpoint, non_finite_weight
from srgan.config import load_config
from srgan.data.crops import TrainCrops, load_images
from srgan.models.generator import Generator
from srgan.run.folder import RunPaths
from srgan.run.metrics import NonFiniteLossError
from srgan.run.runtime import Runtime
from srgan.run.signals import Interrupted
from srgan.train.loop import Stage, run_stage
from srgan.train.networks import Network
from srgan.train.stages import pretrain
from srgan.train.steps import Batch, pretrain_step

PREFIX = "srresnet_x4_tiny"


def run_with_hook(
    tiny_dataset: TinyDataset,
    tmp_path: Path,
    hook: Callable[[int, Generator], dict | None],
    error_type: type[Exception],
) -> tuple[Exception, Path]:
    """Pretrain 10 steps, checkpoint every 2, log every 50; `hook(step, generator)` runs after
    each step and may return losses to report instead of the real ones. Returns the exception
    the run must end with, and the checkpoint folder."""
    folders = [
        f"data.train_dir={tiny_dataset.train_dir}",
        f"data.valid_dir={tiny_dataset.valid_dir}",
    ]
    config = load_config(None, ["name=tiny", "runtime.checkpoint_every=2", *folders])
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    runtime = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)
    network = Network.plain(
        generator, torch.optim.Adam(generator.parameters(), lr=1e-4), runtime.grad_scaler()
    )
    steps = []

    def step_fn(batch: Batch) -> dict[str, torch.Tensor]:
        steps.append(len(steps) + 1)
        losses = pretrain_step(network, runtime, batch)
        return hook(steps[-1], generator) or losses

    stage = Stage(
        name="pretrain",
        kind="srresnet",
        stage_id=0,
        batch_size=2,
        epochs=10,
        validate_every=1000,
        lr_at=lambda step: 1e-4,
        networks={"generator": network},
        step=step_fn,
    )
    paths = RunPaths(tmp_path, tmp_path / "checkpoints")
    crops = TrainCrops(load_images(tiny_dataset.train_dir, 32), 32)
    with pytest.raises(error_type) as error:
        run_stage(
            stage,
            config=config,
            runtime=runtime,
            crops=crops,
            validation=[],
            paths=paths,
        )
    return error.value, paths.checkpoint_dir


def assert_newest_checkpoint_is_finite_at(folder: Path, step: int) -> None:
    names = sorted(path.name for path in folder.iterdir())
    assert names[-1] == f"{PREFIX}_step{step:08d}.pt", names  # nothing later, no _final
    state = load_checkpoint(folder / names[-1])
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    generator.load_state_dict(state["generator"])
    assert state["step"] == step and non_finite_weight({"generator": generator}) is None


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_finite_checkpoint(
    tiny_dataset: TinyDataset, tmp_path: Path
) -> None:
    def poison(step: int, generator: Generator) -> dict | None:
        return {"pixel": torch.tensor(float("nan"))} if step == 5 else None

    error, folder = run_with_hook(tiny_dataset, tmp_path, poison, NonFiniteLossError)
    # Found at the step-6 sync among the steps logged since: step 5, the first bad one.
    checkpoint = folder / f"{PREFIX}_step00000004.pt"
    assert str(error) == (
        f"pretrain step 5: non-finite loss (pixel=nan); the last good checkpoint is {checkpoint}"
    )
    assert_newest_checkpoint_is_finite_at(folder, 4)


def test_non_finite_weight_is_never_saved(tiny_dataset: TinyDataset, tmp_path: Path) -> None:
    def poison(step: int, generator: Generator) -> dict | None:
        if step == 4:  # after the step's loss was computed: only the weights show it
            with torch.no_grad():
                generator.head[0].weight[0, 0, 0, 0] = float("inf")
        return None

    error, folder = run_with_hook(tiny_dataset, tmp_path, poison, NonFiniteLossError)
    message = str(error)
    assert message.startswith("pretrain step 4: generator weight head.0.weight is not finite")
    assert message.endswith(f"the last good checkpoint is {folder / PREFIX}_step00000002.pt")
    assert_newest_checkpoint_is_finite_at(folder, 2)


@pytest.mark.parametrize("signals", [1, 2])
def test_sigint_saves_after_the_step_and_a_second_one_stops_at_once(
    tiny_dataset: TinyDataset, tmp_path: Path, signals: int
) -> None:
    def interrupt(step: int, generator: Generator) -> None:
        if step == 3:  # mid-step: the handler runs here, in the main thread
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    interruption, folder = run_with_hook(tiny_dataset, tmp_path, interrupt, Interrupted)
    assert signal.getsignal(signal.SIGINT) is handler  # the loop put the handler back
    assert interruption.exit_code == 130
    # One signal: step 3 ends and is saved. Two: stop at once, step 3 unfinished; resuming
    # takes the last periodic checkpoint.
    saved = 3 if signals == 1 else 2
    assert str(interruption) == f"stopped by SIGINT after step {saved}"
    assert interruption.checkpoint == folder / f"{PREFIX}_step{saved:08d}.pt"
    assert_newest_checkpoint_is_finite_at(folder, saved)


def test_a_nan_through_the_script_is_one_line_naming_the_last_finite_checkpoint(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """The script's own entry point, in process: its third step's loss turns NaN (the config
    bounds refuse a learning rate absurd enough to diverge in a few steps)."""
    steps = []

    def diverging_step(*args: object) -> dict[str, torch.Tensor]:
        losses = pretrain_step(*args)
        steps.append(len(steps) + 1)
        return {"pixel": torch.tensor(float("nan"))} if len(steps) == 3 else losses

    monkeypatch.setattr("srgan.train.stages.pretrain_step", diverging_step)
    args = [*tiny_config_args, "--run-dir", str(tmp_path / "run"), "--checkpoint-every", "1"]
    code, _, err = run_in_process(pretrain, [*args, "--max-steps", "4"], monkeypatch, capsys)
    assert code == 1, err
    found = re.fullmatch(
        r"error: pretrain step (\d+): non-finite loss \(pixel=(nan|inf)\); "
        r"the last good checkpoint is (\S+)",
        err.strip().splitlines()[-1],
    )
    assert found and "Traceback" not in err, err
    step, checkpoint = int(found[1]), Path(found[3])
    assert checkpoint.name == f"{PREFIX}_step{step - 1:08d}.pt"
    state = load_checkpoint(checkpoint)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    generator.load_state_dict(state["generator"])
    assert non_finite_weight({"generator": generator}) is None
    assert max(checkpoint.parent.glob(f"{PREFIX}_*.pt")) == checkpoint  # none later, no _final
