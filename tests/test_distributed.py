"""Several processes under torchrun (gloo on CPU): ranks stay in sync, checkpoints resume alone.

Run as a script (`torchrun ... tests/test_distributed.py pretrain|gan FLAGS`), this file trains
one stage through the same entry point as scripts/pretrain.py and scripts/train.py
(`srgan.commands.common.stage_main`) and then saves every rank's weights to
<run-dir>/rank{R}.pt, so the tests can compare ranks without any test-only code in the package.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO, SCRIPT_ENV, SCRIPTS, TINY_RUN_NAME, describe

from srgan.checkpoint import load_checkpoint
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator

# Global batch 4 (2 samples per rank); 3 images x 4 crops = 3 steps per epoch, so the two-process
# runs validate on rank 0 once (step 3) while rank 1 waits, and checkpoint at steps 2 and 4.
DDP_OVERRIDES = [
    "pretrain.batch_size=4",
    "gan.batch_size=4",
    "data.crops_per_image=4",
    "pretrain.validate_every=1",
    "gan.validate_every=1",
]
STEPS = 4
ENV = {**SCRIPT_ENV, "PYTHONPATH": str(REPO)}


def torchrun(processes: int, stage: str, args: list[str]) -> subprocess.CompletedProcess:
    """This file as a script: under torchrun with `processes` ranks, or plainly when 1."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [sys.executable, *(launcher if processes > 1 else []), __file__, stage, *args]
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)


def run_script(script: str, args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPTS / script), *args]
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ddp_args(tiny_config_args: list[str]) -> list[str]:
    args = [*tiny_config_args, "--max-steps", str(STEPS), "--checkpoint-every", "2"]
    for override in DDP_OVERRIDES:
        args += ["--set", override]
    return args


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory: pytest.TempPathFactory, ddp_args: list[str]) -> Path:
    """Pretraining on 2 ranks."""
    run_dir = tmp_path_factory.mktemp("ddp_pretrain")
    result = torchrun(2, "pretrain", [*ddp_args, "--run-dir", str(run_dir)])
    assert result.returncode == 0, describe(result)
    return run_dir


def gan_source(pretrain_run: Path) -> list[str]:
    # A --max-steps stop saves a periodic checkpoint (the stage is not finished).
    pretrained = pretrain_run / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_step{STEPS:08d}.pt"
    return ["--set", f"gan.pretrained_generator={pretrained}"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory, pretrain_run: Path, ddp_args) -> Path:
    """GAN training on 2 ranks from the 2-rank SRResNet."""
    run_dir = tmp_path_factory.mktemp("ddp_gan")
    result = torchrun(2, "gan", [*ddp_args, *gan_source(pretrain_run), "--run-dir", str(run_dir)])
    assert result.returncode == 0, describe(result)
    return run_dir


def rank_states(run_dir: Path) -> list[dict[str, dict[str, torch.Tensor]]]:
    # Each rank saved tensors on its own device (cuda:0, cuda:1): compare them on the CPU.
    return [
        torch.load(run_dir / f"rank{rank}.pt", map_location="cpu", weights_only=True)
        for rank in (0, 1)
    ]


def parameter_names(module: torch.nn.Module) -> set[str]:
    return {name for name, _ in module.named_parameters()}


def tiny_generator() -> Generator:
    # The tiny config's model, built as srgan/train/stages.py seeds it (config.seed = 0).
    torch.manual_seed(0)
    return Generator(scale=4, num_blocks=2, num_channels=8)


def assert_ranks_identical(states: list[dict], name: str, parameters: set[str]) -> None:
    """Parameters bitwise equal on both ranks; BatchNorm running statistics are rank-local."""
    for key, tensor in states[0][name].items():
        if key in parameters:
            assert torch.equal(tensor, states[1][name][key]), f"{name}.{key} differs between ranks"
    assert parameters <= set(states[0][name])


def test_pretraining_ranks_hold_identical_weights(pretrain_run: Path) -> None:
    states = rank_states(pretrain_run)
    assert_ranks_identical(states, "generator", parameter_names(tiny_generator()))
    initial = tiny_generator().state_dict()
    assert not torch.equal(states[0]["generator"]["head.0.weight"], initial["head.0.weight"])
    checkpoint = load_checkpoint(
        pretrain_run / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_step{STEPS:08d}.pt"
    )
    assert checkpoint["step"] == STEPS
    for key, tensor in checkpoint["generator"].items():  # rank 0 saved its own weights
        assert torch.equal(tensor, states[0]["generator"][key]), key


def relative_difference(run: dict, reference: dict, initial: dict, keys: set[str]) -> float:
    """||run - reference|| / ||reference - initial|| over the parameters: how far two runs from
    the same initial weights ended apart, relative to how far training moved them."""
    apart = sum((run[k].double() - reference[k].double()).square().sum() for k in keys)
    moved = sum((reference[k].double() - initial[k].double()).square().sum() for k in keys)
    return float((apart / moved).sqrt())


def test_sync_batchnorm_on_cpu_fails_with_a_message(ddp_args: list[str], tmp_path: Path) -> None:
    # PyTorch's SyncBatchNorm has no CPU implementation (DDP refuses it on CPU modules).
    args = [*ddp_args, "--set", "runtime.sync_batchnorm=true", "--run-dir", str(tmp_path)]
    result = torchrun(2, "pretrain", args)
    assert result.returncode != 0
    assert "error: " in result.stderr and "SyncBatchNorm" in result.stderr


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_with_sync_batchnorm_match_one_gpu(
    ddp_args: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Same global batch on 1 or 2 GPUs: with SyncBatchNorm the batch statistics, hence the
    gradients, are those of the whole batch, so the weights agree up to float rounding (with
    per-rank BatchNorm each rank normalises with its half batch: a different, valid run)."""
    root = tmp_path_factory.mktemp("syncbn")
    cuda = ["--device", "cuda", "--set", "runtime.sync_batchnorm=true"]
    one = torchrun(1, "pretrain", [*ddp_args, *cuda, "--run-dir", str(root / "one")])
    assert one.returncode == 0, describe(one)
    two = torchrun(2, "pretrain", [*ddp_args, *cuda, "--run-dir", str(root / "two")])
    assert two.returncode == 0, describe(two)
    keys = parameter_names(tiny_generator())
    synced = rank_states(root / "two")
    assert_ranks_identical(synced, "generator", keys)
    reference = torch.load(root / "one" / "rank0.pt", map_location="cpu", weights_only=True)
    reference = reference["generator"]
    initial = tiny_generator().state_dict()
    assert relative_difference(synced[0]["generator"], reference, initial, keys) < 1e-2
    for key in ("blocks.0.body.1.running_mean", "blocks.0.body.1.running_var"):
        torch.testing.assert_close(
            synced[0]["generator"][key], reference[key], rtol=1e-3, atol=1e-5
        )


def test_two_rank_checkpoint_resumes_in_one_process(
    pretrain_run: Path, tmp_path: Path, ddp_args: list[str]
) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(pretrain_run, run_dir)
    args = [*ddp_args, "--run-dir", str(run_dir), "--resume", "auto", "--max-steps", "6"]
    result = run_script("pretrain.py", args)
    assert result.returncode == 0, describe(result)
    assert f"at step {STEPS}" in result.stdout
    resumed = load_checkpoint(
        run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_step00000006.pt"
    )
    assert resumed["step"] == 6


def test_gan_ranks_hold_identical_weights(gan_run: Path) -> None:
    states = rank_states(gan_run)
    assert_ranks_identical(states, "generator", parameter_names(tiny_generator()))
    discriminator = Discriminator(crop_size=32, num_channels=8)
    assert_ranks_identical(states, "discriminator", parameter_names(discriminator))
    checkpoint = load_checkpoint(
        gan_run / "checkpoints" / f"srgan_x4_{TINY_RUN_NAME}_step{STEPS:08d}.pt"
    )
    assert checkpoint["step"] == STEPS
    for key, tensor in checkpoint["discriminator"].items():
        assert torch.equal(tensor, states[0]["discriminator"][key]), key


def test_two_rank_gan_checkpoint_resumes_in_one_process(
    gan_run: Path, pretrain_run: Path, tmp_path: Path, ddp_args: list[str]
) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(gan_run, run_dir)
    args = [*ddp_args, *gan_source(pretrain_run), "--run-dir", str(run_dir)]
    args += ["--resume", "auto", "--max-steps", "6"]
    result = run_script("train.py", args)
    assert result.returncode == 0, describe(result)
    assert f"at step {STEPS}" in result.stdout
    resumed = load_checkpoint(run_dir / "checkpoints" / f"srgan_x4_{TINY_RUN_NAME}_step00000006.pt")
    assert resumed["step"] == 6


def train_and_save_ranks() -> None:
    """Script mode: run one stage like scripts/pretrain.py / train.py, then save each rank's
    modules, captured from the stage the loop ran, to <run-dir>/rank{R}.pt."""
    import srgan.train.stages
    from srgan.commands.common import stage_main
    from srgan.train.loop import Stage

    stage_fn = {"pretrain": srgan.train.stages.pretrain, "gan": srgan.train.stages.train_gan}[
        sys.argv.pop(1)
    ]
    run_stage = srgan.train.stages.run_stage

    def run_stage_and_save(stage: Stage, **kwargs: Any) -> dict:
        result = run_stage(stage, **kwargs)
        states = {name: network.model.state_dict() for name, network in stage.networks.items()}
        torch.save(states, kwargs["paths"].log_dir / f"rank{kwargs['runtime'].rank}.pt")
        return result

    srgan.train.stages.run_stage = run_stage_and_save
    stage_main(stage_fn, f"test run (rank {os.environ.get('RANK', 0)})", __doc__)


if __name__ == "__main__":
    train_and_save_ranks()
