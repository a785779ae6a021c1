"""The CUDA/NCCL defects a CPU can show: degradation copies and precision, optimizer state on
resume (layout and implementation flags), the per-rank batch split, the process-group timeout,
the LR batch's memory format, and evaluation's fp32 kernel settings."""

import copy
from datetime import timedelta

import pytest
import torch
from torch import nn

from srgan.config import ConfigError, RuntimeConfig, load_config
from srgan.data.degradation import _gaussian_kernel_1d, degrade_batch
from srgan.data.imresize import device_weight_matrix
from srgan.machine import exact_fp32_kernels
from srgan.run.checkpoints import load_optimizer_state
from srgan.run.runtime import Runtime, setup_runtime
from srgan.train.steps import Degradation, prepare_batch

CPU = torch.device("cpu")


def hr_batch(seed: int = 0, size: int = 48) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, size, size, generator=generator)


@pytest.mark.parametrize("kind", ["bicubic", "gaussian"])
def test_degradation_copies_its_weights_to_the_device_once(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU each copy of the weights is a blocking host-to-device transfer: count the
    conversions of the 1-D/2-D weight tensors over four steps."""
    device_weight_matrix.cache_clear()
    _gaussian_kernel_1d.cache_clear()
    conversions = []
    original_to = torch.Tensor.to

    def counting_to(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.ndim <= 2:  # the weight matrices and kernels; the images are 4-D
            conversions.append(tuple(self.shape))
        return original_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    first = degrade_batch(hr_batch(0), 4, kind)
    for seed in range(1, 4):
        degrade_batch(hr_batch(seed), 4, kind)
    # Square crops: one matrix (or kernel) serves both passes, converted once, then reused.
    assert len(conversions) == 1, conversions
    assert torch.equal(first, degrade_batch(hr_batch(0), 4, kind))


@pytest.mark.parametrize("kind", ["bicubic", "gaussian"])
def test_degradation_does_not_depend_on_float32_matmul_precision(kind: str) -> None:
    """ "medium" lets oneDNN run fp32 matmuls in bf16 on CPUs with AVX512-BF16/AMX, as TF32 does
    on a GPU: the LR images, computed in float64, must not move by a level."""
    hr_image = hr_batch(1, size=96)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        exact = degrade_batch(hr_image, 4, kind)
        torch.set_float32_matmul_precision("medium")
        reduced = degrade_batch(hr_image, 4, kind)
    finally:
        torch.set_float32_matmul_precision(previous)
    assert exact.dtype == torch.float32
    assert torch.equal(exact, reduced)
    # And the float64 result is what float64 inputs give: no float32 rounding in between.
    assert torch.equal(exact, degrade_batch(hr_image.double(), 4, kind).float())


def small_model(channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(), nn.Conv2d(8, 3, 3, padding=1))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return model.to(memory_format=memory_format)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        inputs = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()


def resumed_weights(save_channels_last: bool, resume_channels_last: bool) -> dict:
    """Two fused Adam steps, saved, resumed in another model (layout as asked), two more."""
    model = small_model(save_channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    train_steps(model, optimizer, range(2))
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), optimizer.state_dict()
    resumed = small_model(resume_channels_last)
    resumed.load_state_dict(saved_model)
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2, fused=True)
    load_optimizer_state(resumed_optimizer, saved_optimizer)
    train_steps(resumed, resumed_optimizer, range(2, 4))
    return {key: value.contiguous() for key, value in resumed.state_dict().items()}


def test_fused_adam_resumes_correctly_across_a_channels_last_change() -> None:
    """Fused Adam updates flat storage: a moment kept in the saved layout would be applied to
    other elements (max |dw| 0.43 after one step before the fix)."""
    reference = resumed_weights(save_channels_last=False, resume_channels_last=False)
    for save, resume in ((True, False), (False, True)):
        changed = resumed_weights(save_channels_last=save, resume_channels_last=resume)
        for key, value in reference.items():
            # The same fused kernels on the same values, only stored in another order.
            torch.testing.assert_close(changed[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_a_resumed_optimizer_keeps_the_implementation_it_was_built_with() -> None:
    """A checkpoint saved by foreach Adam (the CPU) and resumed where fused Adam is built (CUDA)
    runs fused Adam: the saved flags describe the machine that saved it."""
    model = small_model(False)
    saved = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    train_steps(model, saved, range(2))
    rebuilt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    load_optimizer_state(rebuilt, saved.state_dict())
    group = rebuilt.param_groups[0]
    assert group["fused"] is True and group["foreach"] is None
    state = rebuilt.state[next(iter(model.parameters()))]
    assert state["step"].item() == 2.0  # the training state itself was loaded
    torch.testing.assert_close(
        state["exp_avg"], saved.state[next(iter(model.parameters()))]["exp_avg"]
    )
    train_steps(model, rebuilt, range(2, 3))


@pytest.mark.parametrize(
    ("batch_size", "world_size", "ok"),
    [(16, 2, True), (15, 3, True), (16, 3, False), (2, 4, False)],
)
def test_the_batch_must_split_evenly_over_the_processes(
    batch_size: int, world_size: int, ok: bool
) -> None:
    runtime = Runtime(CPU, None, False, rank=0, world_size=world_size)
    if ok:
        runtime.check_batch_split(batch_size, "gan.batch_size")
        return
    with pytest.raises(ConfigError, match=rf"^gan\.batch_size: {batch_size} does not split"):
        runtime.check_batch_split(batch_size, "gan.batch_size")


@pytest.mark.parametrize("value", ["0", "-1", "NaN", "1e9"])
def test_process_group_timeout_must_be_sensible(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^runtime\.distributed_timeout_minutes: must be"):
        load_config(None, [f"runtime.distributed_timeout_minutes={value}"], check_paths=False)


def test_process_group_gets_the_configured_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(
        torch.distributed,
        "init_process_group",
        lambda *args, **kwargs: calls.append((args, kwargs)),
    )
    runtime = setup_runtime(
        RuntimeConfig(device="cpu", precision="fp32", distributed_timeout_minutes=90)
    )
    assert calls == [(("gloo",), {"timeout": timedelta(minutes=90)})]
    assert (runtime.rank, runtime.world_size, runtime.distributed) == (1, 2, True)


@pytest.mark.parametrize("channels_last", [True, False])
def test_the_lr_batch_comes_in_the_networks_memory_format(channels_last: bool) -> None:
    runtime = Runtime(CPU, None, channels_last=channels_last)
    hr_uint8 = (hr_batch(2) * 255).round().to(torch.uint8)
    batch = prepare_batch(hr_uint8, 0, runtime, Degradation(4))
    for image in (batch.lr_image, batch.hr_image):
        assert image.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.equal(batch.lr_image, degrade_batch(hr_uint8.float() / 255, 4))


def test_evaluation_kernels_are_true_fp32_and_restored_after() -> None:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark)
    try:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = True, True, True  # as training
        with exact_fp32_kernels():
            assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark) == (False,) * 3
        assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark) == (True,) * 3
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = saved
