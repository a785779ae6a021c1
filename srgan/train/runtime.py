"""Where and how a run executes: device, precision, several processes under torchrun."""

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from srgan.precision import PRECISIONS, amp_dtype, bf16_native
from srgan.train.config import ConfigError, RuntimeConfig


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def precision(self) -> str:
        return next(name for name in PRECISIONS if amp_dtype(name) == self.amp_dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.bfloat16,
            enabled=self.amp_dtype is not None,
        )

    def grad_scaler(self) -> torch.amp.GradScaler:
        # Loss scaling matters for fp16 only; bf16 has fp32's exponent range.
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=memory_format)


def use_fast_cuda_kernels(autotune: bool = True) -> None:
    """cuDNN autotuning (picks the fastest convolution per shape; not deterministic) and TF32
    matmuls and convolutions (fp32 storage, tensor-core math)."""
    torch.backends.cudnn.benchmark = autotune
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def setup_runtime(config: RuntimeConfig, device_override: str | None = None) -> Runtime:
    """Pick the device and precision; join the process group when started by torchrun."""
    requested = device_override or config.device
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: cuda was asked for, but CUDA is not available here")
    use_cuda = requested == "cuda" or (requested == "auto" and torch.cuda.is_available())
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        use_fast_cuda_kernels(autotune=not config.deterministic)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if bf16_native(device) else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("runtime.precision: fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return Runtime(device, amp_dtype(precision), config.channels_last, rank, world_size)


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
