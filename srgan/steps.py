"""One optimizer step of each stage (Ledig et al., arXiv 1609.04802, Section 3.2).

Both take explicit objects and a batch, and return their loss terms as detached 0-dim
tensors (no host sync here: the loop reads them in bulk every few steps).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srgan.losses import ContentLoss, discriminator_loss, generator_adversarial_loss
from srgan.runtime import Runtime


@dataclass(frozen=True)
class LossWeights:
    """l^SR = content + pixel * MSE + adversarial * l_Gen (paper Eq. 3, plus the seed's MSE)."""

    content: float = 1.0
    pixel: float = 1.0
    adversarial: float = 1e-3


def pretrain_step(
    generator: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    runtime: Runtime,
    lr_image: torch.Tensor,
    hr_image: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """SRResNet-MSE: pixel-wise MSE between G(lr) and hr, both in [-1, 1]."""
    with runtime.autocast():
        sr_image = generator(lr_image)
    loss = F.mse_loss(sr_image.float(), hr_image)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return {"pixel": loss.detach()}


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    discriminator_module: nn.Module,
    content_loss: ContentLoss,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    generator_scaler: torch.amp.GradScaler,
    discriminator_scaler: torch.amp.GradScaler,
    weights: LossWeights,
    runtime: Runtime,
    lr_image: torch.Tensor,
    hr_image: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One generator update (discriminator frozen) then one discriminator update on fake.detach().

    `discriminator` may be DDP-wrapped; the generator's adversarial term goes through the bare
    `discriminator_module`, because the discriminator takes no gradient in that pass and a DDP
    wrapper would wait for gradients that never come. Each network has its own GradScaler, so
    an fp16 overflow in one does not skip or rescale the other's update.
    """
    set_requires_grad(discriminator_module, False)
    with runtime.autocast():
        sr_image = generator(lr_image)
        content = content_loss(sr_image, hr_image)
        fake_logits = discriminator_module(sr_image)
    pixel = F.mse_loss(sr_image.float(), hr_image)
    adversarial = generator_adversarial_loss(fake_logits.float())
    generator_loss = (
        weights.content * content.float()
        + weights.pixel * pixel
        + weights.adversarial * adversarial
    )
    generator_optimizer.zero_grad(set_to_none=True)
    generator_scaler.scale(generator_loss).backward()
    generator_scaler.step(generator_optimizer)
    generator_scaler.update()

    set_requires_grad(discriminator_module, True)
    with runtime.autocast():
        real_logits = discriminator(hr_image)
        fake_logits = discriminator(sr_image.detach())
    d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
    discriminator_optimizer.zero_grad(set_to_none=True)
    discriminator_scaler.scale(d_loss).backward()
    discriminator_scaler.step(discriminator_optimizer)
    discriminator_scaler.update()
    return {
        "content": content.detach().float(),
        "pixel": pixel.detach(),
        "adversarial": adversarial.detach(),
        "generator": generator_loss.detach(),
        "discriminator": d_loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
    }
