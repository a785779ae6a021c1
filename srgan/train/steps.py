"""One optimizer step of each stage (Ledig et al., arXiv 1609.04802, Section 3.2).

Both take explicit objects and a batch, and return their loss terms as detached 0-dim
tensors (no host sync here: the loop reads them in bulk every few steps).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srgan.models.losses import ContentLoss, discriminator_loss, generator_adversarial_loss
from srgan.train.runtime import Runtime


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

    Three handles on the same weights, each for one kind of pass:
    - `module` trains: compiled and/or DDP-wrapped (DDP all-reduces its gradients);
    - `frozen` runs passes that take no gradient for this network's weights (the
      discriminator inside the generator's loss): compiled like `module`, but never
      DDP-wrapped, because DDP would wait for gradients that never come;
    - `bare` is the plain nn.Module: checkpoints, `requires_grad` switches, validation.
    Without DDP and compile all three are the same object.
    """

    module: nn.Module
    frozen: nn.Module
    bare: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler

    @classmethod
    def plain(
        cls, module: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
    ) -> "Network":
        """A network without DDP or compile: the three handles are `module` itself."""
        return cls(module, module, module, optimizer, scaler)

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


@dataclass(frozen=True)
class LossWeights:
    """l^SR = content + pixel * MSE + adversarial * l_Gen (paper Eq. 3, plus a pixel MSE)."""

    content: float = 1.0
    pixel: float = 1.0
    adversarial: float = 1e-3


def pretrain_step(
    generator: Network, runtime: Runtime, lr_image: torch.Tensor, hr_image: torch.Tensor
) -> dict[str, torch.Tensor]:
    """SRResNet-MSE: pixel-wise MSE between G(lr) and hr, both in [-1, 1]."""
    with runtime.autocast():
        sr_image = generator.module(lr_image)
    loss = F.mse_loss(sr_image.float(), hr_image)
    skipped = generator.update(loss)
    return with_skipped({"pixel": loss.detach()}, generator=skipped)


def with_skipped(losses: dict[str, torch.Tensor], **skipped: torch.Tensor | None) -> dict:
    """Add `skipped_<network>` terms (fp16 only), which the metrics log counts, not averages."""
    for name, flag in skipped.items():
        if flag is not None:
            losses[f"skipped_{name}"] = flag
    return losses


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def gan_step(
    generator: Network,
    discriminator: Network,
    content_loss: ContentLoss,
    weights: LossWeights,
    runtime: Runtime,
    batch: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One generator update (discriminator frozen), then one discriminator update on the
    detached SR images. Each network has its own GradScaler, so an fp16 overflow in one does
    not skip or rescale the other's update.
    """
    lr_image, hr_image = batch

    # Generator: content + pixel + adversarial loss, gradients reach G only.
    set_requires_grad(discriminator.bare, False)
    with runtime.autocast():
        sr_image = generator.module(lr_image)
        content = content_loss(sr_image, hr_image)
        fake_logits = discriminator.frozen(sr_image)
    pixel = F.mse_loss(sr_image.float(), hr_image)
    adversarial = generator_adversarial_loss(fake_logits.float())
    generator_loss = (
        weights.content * content.float()
        + weights.pixel * pixel
        + weights.adversarial * adversarial
    )
    generator_skipped = generator.update(generator_loss)

    # Discriminator: real vs the generator's detached output.
    set_requires_grad(discriminator.bare, True)
    with runtime.autocast():
        real_logits = discriminator.module(hr_image)
        fake_logits = discriminator.module(sr_image.detach())
    d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
    discriminator_skipped = discriminator.update(d_loss)
    losses = {
        "content": content.detach().float(),
        "pixel": pixel.detach(),
        "adversarial": adversarial.detach(),
        "generator": generator_loss.detach(),
        "discriminator": d_loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
    }
    return with_skipped(losses, generator=generator_skipped, discriminator=discriminator_skipped)
