"""The trained networks as training holds them: module handles, Adam and loss scaler together.

`build_network` is the one place a network is put on its device and wrapped (memory format,
SyncBatchNorm, DDP, torch.compile) with its optimizer: training, the benchmark and the speed
measurements all build theirs here, so what is timed is what trains.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from srgan.config import ConfigError
from srgan.run.runtime import Runtime


def adam(
    parameters, *, fused: bool, lr: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam as training runs it (the paper: Section 3.2, beta1 = 0.9).

    Fused Adam runs the whole update in a few CUDA kernels. On the CPU its sums round
    differently; the multi-tensor ("foreach") update gives the same bits as the default
    per-parameter loop, a little faster.
    """
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=fused, foreach=not fused)


@dataclass(frozen=True)
class Network:
    """One trained network and everything that updates it.

    Three handles on the same weights, each for one kind of pass, named as PyTorch names them:
    - `ddp` trains: DDP-wrapped when several processes train (DDP all-reduces its gradients),
      then compiled if asked;
    - `compiled` runs passes that take no gradient for this network's weights (the
      discriminator inside the generator's loss): compiled like `ddp`, but never DDP-wrapped,
      because DDP would wait for gradients that never come;
    - `model` is the plain nn.Module: checkpoints, `requires_grad_` switches, validation.
    Without DDP and compile all three are `model` itself.
    """

    ddp: nn.Module
    compiled: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler

    @classmethod
    def plain(
        cls, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
    ) -> "Network":
        """A network without DDP or compile: the three handles are `model` itself."""
        return cls(model, model, model, optimizer, scaler)

    def update(self, loss: torch.Tensor) -> torch.Tensor | None:
        """Backward and optimizer step through the (fp16) loss scaler, a no-op scale otherwise.

        With fp16 loss scaling, returns 1.0 (a device tensor: no host sync) when the scaler
        skipped this step because the gradients overflowed, else 0.0; None without scaling.
        A skipped step is exactly one where `update()` backs the scale off.
        """
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        scale_before = self.scaler._scale.clone() if self.scaler.is_enabled() else None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if scale_before is None:
            return None
        return (self.scaler._scale < scale_before).float().squeeze()


def build_network(
    module: nn.Module,
    runtime: Runtime,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    compile: bool = False,
    sync_batchnorm: bool = False,
    fused_adam: bool | None = None,
) -> Network:
    """`module` on the runtime's device and memory format, with SyncBatchNorm and DDP when
    several processes train, torch.compile if asked, its Adam (fused on CUDA unless
    `fused_adam` says otherwise) and its loss scaler."""
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    model = module.to(runtime.device, memory_format=memory_format)
    if runtime.distributed and sync_batchnorm:
        if runtime.device.type != "cuda":
            raise ConfigError(
                "runtime.sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm has no CPU version)"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = model
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=device_ids)
    compiled = model
    if compile:
        ddp = torch.compile(ddp)
        compiled = torch.compile(model) if runtime.distributed else ddp
    fused = runtime.device.type == "cuda" if fused_adam is None else fused_adam
    optimizer = adam(model.parameters(), fused=fused, betas=betas)
    return Network(ddp, compiled, model, optimizer, runtime.grad_scaler())
