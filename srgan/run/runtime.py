"""Where and how a run executes: device, precision, several processes under torchrun."""

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from srgan.config import ConfigError, RuntimeConfig
from srgan.machine import PRECISIONS, amp_dtype, resolve_device, resolve_precision


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool
    rank: int = 0
    world_size: int = 1
    # A process group joins the ranks: torchrun with 2+ ranks, or a caller that started one
    # itself (scripts/gpu_check.sh runs the DDP code path in one NCCL process this way).
    process_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.process_group

    @property
    def precision(self) -> str:
        return next(name for name in PRECISIONS if amp_dtype(name) == self.amp_dtype)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

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
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=self.memory_format)

    def check_batch_split(self, batch_size: int, key: str) -> None:
        """Each rank trains on batch_size / world_size rows, so DDP's averaged gradient is the
        whole batch's: refuse a batch the ranks cannot share evenly, naming the key."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"{key}: {batch_size} does not split evenly over {self.world_size} processes "
                f"(use a multiple of {self.world_size})"
            )


def use_fast_cuda_kernels(deterministic: bool = False) -> None:
    """TF32 matmuls and convolutions (fp32 storage, tensor-core math) and, unless
    `deterministic`, cuDNN autotuning (the fastest convolution per shape, not reproducible)."""
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def cuda_device(local_rank: int, backend: str) -> torch.device:
    """This rank's GPU: one per process, except that gloo ranks may share them (a one-GPU test
    of the multi-process path); NCCL refuses two ranks on one GPU."""
    count = torch.cuda.device_count()
    if local_rank >= count and backend != "gloo":
        raise ConfigError(
            f"runtime.distributed_backend: local rank {local_rank} needs GPU {local_rank}, but "
            f"{count} are visible; start one process per GPU (or use gloo to share them)"
        )
    return torch.device("cuda", local_rank % count)


def setup_runtime(config: RuntimeConfig, device_override: str | None = None) -> Runtime:
    """Pick the device and precision; join the process group when started by torchrun."""
    try:
        use_cuda = resolve_device(device_override or config.device).type == "cuda"
    except ValueError as error:
        raise ConfigError(f"runtime.device: {error}") from None
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    backend = config.distributed_backend
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        device = cuda_device(int(os.environ.get("LOCAL_RANK", 0)), backend)
        torch.cuda.set_device(device)
        if config.deterministic:
            # cuBLAS reads it when it starts: a fixed workspace makes its matmuls reproducible.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        use_fast_cuda_kernels(deterministic=config.deterministic)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        # Ranks wait in a collective while rank 0 validates: the timeout must outlast that.
        timeout = timedelta(minutes=config.distributed_timeout_minutes)
        dist.init_process_group(backend, timeout=timeout)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        precision = resolve_precision(config.precision, device)
    except ValueError as error:
        raise ConfigError(f"runtime.precision: {error}") from None
    return Runtime(
        device,
        amp_dtype(precision),
        config.channels_last,
        rank,
        world_size,
        process_group=dist.is_initialized(),
    )


def shutdown(runtime: Runtime, finished: bool) -> None:
    """Leave the process group; `finished`: every rank ended the stage, so all meet at a barrier
    first. Gloo's worker threads outlive destroy_process_group (DDP keeps the group), and one
    still freeing the last all-reduce's tensor when Python exits aborts the process (SIGABRT):
    the barrier lets it finish while Python runs."""
    if runtime.world_size > 1 and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
