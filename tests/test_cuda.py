"""CUDA code paths: bf16 and fp16 steps, fused Adam, channels_last (skipped without a GPU)."""

import copy
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN_NAME, describe, run_script

from srgan.checkpoint import load_checkpoint
from srgan.config import RuntimeConfig
from srgan.data.degradation import degrade_batch
from srgan.inference.tiles import upscale_tensor
from srgan.machine import bf16_native
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator
from srgan.models.losses import ContentLoss, GanLosses
from srgan.run.checkpoints import load_optimizer_state
from srgan.run.runtime import Runtime, setup_runtime
from srgan.train.networks import Network
from srgan.train.steps import Batch, Degradation, gan_step, prepare_batch, pretrain_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def cuda_runtime(precision: str, channels_last: bool = True) -> Runtime:
    if precision == "bf16" and not bf16_native(torch.device("cuda")):
        pytest.skip("this GPU has no bf16")
    config = RuntimeConfig(device="cuda", precision=precision, channels_last=channels_last)
    return setup_runtime(config)


def batch(runtime: Runtime, seed: int) -> Batch:
    """A batch as the loop makes it, on the runtime's device and layout."""
    generator = torch.Generator().manual_seed(seed)
    hr_uint8 = torch.randint(0, 256, (4, 3, 32, 32), generator=generator, dtype=torch.uint8)
    return prepare_batch(hr_uint8, seed, runtime, Degradation(4))


def models(
    runtime: Runtime, content_loss: ContentLoss
) -> tuple[Generator, Discriminator, ContentLoss]:
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    generator = Generator(num_blocks=2, num_channels=16)
    discriminator = Discriminator(crop_size=32, num_channels=16)
    content_loss = copy.deepcopy(content_loss)  # the shared fixture stays on the CPU
    return tuple(
        module.to(runtime.device, memory_format=memory_format)
        for module in (generator, discriminator, content_loss)
    )


def fused_adam(module: torch.nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=1e-4, fused=True)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_steps_with_mixed_precision_give_finite_losses(
    precision: str, content_losses: dict[str, ContentLoss]
) -> None:
    runtime = cuda_runtime(precision)
    generator, discriminator, content_loss = models(runtime, content_losses["vgg22"])
    initial = generator.tail.weight.detach().clone()
    generator_network = Network.plain(generator, fused_adam(generator), runtime.grad_scaler())
    discriminator_network = Network.plain(
        discriminator, fused_adam(discriminator), runtime.grad_scaler()
    )
    # Loss scaling is for fp16 only: bf16 has fp32's exponent range.
    assert generator_network.scaler.is_enabled() == (precision == "fp16")
    for seed in range(3):
        losses = pretrain_step(generator_network, runtime, batch(runtime, seed))
        assert torch.isfinite(losses["pixel"]), losses
    for seed in range(3):
        loss = GanLosses(content_loss)
        losses = gan_step(
            generator_network, discriminator_network, loss, runtime, batch(runtime, seed)
        )
        for name, value in losses.items():
            assert value.device.type == "cuda"
            assert torch.isfinite(value), (name, losses)
    assert not torch.equal(generator.tail.weight, initial)  # the steps did update
    for module in (generator, discriminator):
        for name, parameter in module.named_parameters():
            assert torch.isfinite(parameter).all(), name


def test_channels_last_is_kept_through_the_network_and_matches_nchw() -> None:
    losses = {}
    for channels_last in (True, False):
        runtime = cuda_runtime("fp32", channels_last)
        lr_image, hr_image = batch(runtime, seed=0).lr_image, batch(runtime, seed=0).hr_image
        assert hr_image.is_contiguous(memory_format=torch.channels_last) == channels_last
        torch.manual_seed(0)
        generator = Generator(num_blocks=2, num_channels=16)
        if channels_last:
            generator = generator.to(runtime.device, memory_format=torch.channels_last)
            # NHWC from the LR batch on (prepare_batch converts it), with no hidden conversions
            # back to NCHW.
            assert lr_image.is_contiguous(memory_format=torch.channels_last)
            features = generator.blocks(generator.head(lr_image))
            assert features.is_contiguous(memory_format=torch.channels_last)
        generator = generator.to(runtime.device)
        network = Network.plain(generator, fused_adam(generator), runtime.grad_scaler())
        losses[channels_last] = [
            pretrain_step(network, runtime, batch(runtime, seed))["pixel"].item()
            for seed in range(3)
        ]
    # TF32 (on for training, see setup_runtime) rounds both layouts' convolutions differently.
    assert losses[True] == pytest.approx(losses[False], rel=1e-2)


def test_training_on_cuda_uses_fused_adam_and_auto_precision(
    tiny_config_args: list[str], tmp_path: Path
) -> None:
    args = [*tiny_config_args, "--device", "cuda", "--set", "runtime.precision=auto"]
    args += ["--run-dir", str(tmp_path), "--max-steps", "2", "--checkpoint-every", "2"]
    result = run_script("pretrain.py", args, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    expected = "bf16" if bf16_native(torch.device("cuda")) else "fp32"
    assert f"device cuda:0, precision {expected}, channels_last" in result.stdout
    checkpoint = load_checkpoint(
        tmp_path / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_step00000002.pt"
    )
    assert checkpoint["optimizers"]["generator"]["param_groups"][0]["fused"] is True


def test_degradation_is_exact_with_tf32_on() -> None:
    """Training turns TF32 on; the LR images (float64 matmuls) must equal the CPU's."""
    cuda_runtime("fp32")  # TF32 on, as training sets it
    assert torch.backends.cuda.matmul.allow_tf32
    generator = torch.Generator().manual_seed(3)
    hr_image = torch.rand(64, 3, 96, 96, generator=generator)
    for kind in ("bicubic", "gaussian"):
        on_gpu = degrade_batch(hr_image.cuda(), 4, kind).cpu()
        assert torch.equal(on_gpu, degrade_batch(hr_image, 4, kind)), kind


def test_fp32_evaluation_on_cuda_matches_the_cpu_with_training_kernel_settings() -> None:
    cuda_runtime("fp32")  # TF32 and autotuning on, as during training's validation
    torch.manual_seed(0)
    generator = Generator(num_blocks=4, num_channels=32).eval()
    lr_image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    on_cpu = upscale_tensor(generator, lr_image)
    on_gpu = upscale_tensor(generator.cuda(), lr_image.cuda()).cpu()
    # True fp32 on both: differences are summation order only (TF32 gave ~1e-3).
    torch.testing.assert_close(on_gpu, on_cpu, rtol=0, atol=2e-5)
    assert torch.backends.cudnn.allow_tf32  # restored for training afterwards


def test_prepared_steps_do_not_synchronize_with_the_host() -> None:
    runtime = cuda_runtime("bf16")
    generator = Generator(num_blocks=2, num_channels=16).to(
        runtime.device, memory_format=torch.channels_last
    )
    network = Network.plain(generator, fused_adam(generator), runtime.grad_scaler())
    hr_uint8 = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8).pin_memory()
    pretrain_step(network, runtime, prepare_batch(hr_uint8, 0, runtime, Degradation(4)))  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 4):
            pretrain_step(network, runtime, prepare_batch(hr_uint8, step, runtime, Degradation(4)))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_fused_adam_on_cuda_resumes_across_a_channels_last_change() -> None:
    cuda_runtime("fp32")
    torch.manual_seed(0)
    weights = {}
    for save_format, load_format in (
        (torch.contiguous_format, torch.contiguous_format),
        (torch.channels_last, torch.contiguous_format),
    ):
        torch.manual_seed(0)
        model = Generator(num_blocks=1, num_channels=8).cuda().to(memory_format=save_format)
        optimizer = fused_adam(model)
        lr_image = torch.rand(2, 3, 8, 8, device="cuda")
        for _ in range(2):
            optimizer.zero_grad()
            model(lr_image).square().mean().backward()
            optimizer.step()
        saved = copy.deepcopy(optimizer.state_dict())
        model = model.to(memory_format=load_format)
        optimizer = fused_adam(model)
        load_optimizer_state(optimizer, saved)
        optimizer.zero_grad()
        model(lr_image).square().mean().backward()
        optimizer.step()
        weights[save_format] = {k: v.contiguous() for k, v in model.state_dict().items()}
    for key, value in weights[torch.contiguous_format].items():
        torch.testing.assert_close(weights[torch.channels_last][key], value, msg=key)


def test_deterministic_cuda_run_resumes_bit_identical(
    tiny_config_args: list[str], tmp_path: Path
) -> None:
    args = [*tiny_config_args, "--device", "cuda", "--set", "runtime.deterministic=true"]
    args += ["--checkpoint-every", "2"]
    straight = run_script(
        "pretrain.py", [*args, "--run-dir", str(tmp_path / "a"), "--max-steps", "4"], cwd=tmp_path
    )
    assert straight.returncode == 0, describe(straight)
    half = run_script(
        "pretrain.py", [*args, "--run-dir", str(tmp_path / "b"), "--max-steps", "2"], cwd=tmp_path
    )
    assert half.returncode == 0, describe(half)
    resumed = run_script(
        "pretrain.py",
        [*args, "--run-dir", str(tmp_path / "b"), "--max-steps", "4", "--resume", "auto"],
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, describe(resumed)
    name = f"srresnet_x4_{TINY_RUN_NAME}_step00000004.pt"
    reference = load_checkpoint(tmp_path / "a" / "checkpoints" / name)
    again = load_checkpoint(tmp_path / "b" / "checkpoints" / name)
    for key, tensor in reference["generator"].items():
        assert torch.equal(tensor, again["generator"][key]), key
