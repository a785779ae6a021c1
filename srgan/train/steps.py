"""One training step of each stage, from the uint8 HR crops to the updated weights (Ledig et
al., arXiv 1609.04802, Section 3.2), read top to bottom like BasicSR's `optimize_parameters`.

`prepare_batch` turns the data pipeline's uint8 crops into the step's inputs (LR in [0, 1], HR
in [-1, 1], the paper's ranges); `pretrain_step` and `gan_step` take their networks and that
batch, and return their loss terms as detached 0-dim tensors (no host sync here: the loop
reads them in bulk every few steps).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srgan.data.degradation import degrade_batch
from srgan.models.generator import unit_to_signed
from srgan.models.losses import (
    PixelContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
)
from srgan.run.runtime import Runtime
from srgan.train.averaging import WeightAverage
from srgan.train.networks import Network


@dataclass(frozen=True)
class Degradation:
    """How a training batch's LR images are made from its HR crops (data.degradation)."""

    scale: int
    kind: str = "bicubic"
    gaussian_sigma: float = 1.5


@dataclass(frozen=True)
class Batch:
    """The inputs of one step: its index in the stage, LR in [0, 1], HR in [-1, 1]."""

    step: int
    lr_image: torch.Tensor  # (B, 3, h, w)
    hr_image: torch.Tensor  # (B, 3, h * scale, w * scale)


def prepare_batch(
    hr_uint8: torch.Tensor, step: int, runtime: Runtime, degradation: Degradation
) -> Batch:
    """uint8 HR crops -> the step's batch, on the device; LR is degraded from the HR there, both
    in the networks' memory format (else each step would convert the LR batch)."""
    hr_image = runtime.to_device(hr_uint8).float() / 255
    lr_image = degrade_batch(
        hr_image, degradation.scale, degradation.kind, degradation.gaussian_sigma
    )
    lr_image = lr_image.contiguous(memory_format=runtime.memory_format)
    return Batch(step, lr_image, unit_to_signed(hr_image))


def pretrain_step(generator: Network, runtime: Runtime, batch: Batch) -> dict[str, torch.Tensor]:
    """SRResNet-MSE: pixel-wise MSE between G(lr) and hr, both in [-1, 1] (paper Eq. 4)."""
    with runtime.autocast():
        sr_image = generator.module(batch.lr_image)
    loss = F.mse_loss(sr_image.float(), batch.hr_image)
    skipped = generator.update(loss)
    return with_skipped({"pixel": loss.detach()}, generator=skipped)


@dataclass(frozen=True)
class GanLoss:
    """How the generator's loss is made: l^SR = content + pixel * MSE + adversarial * l_Gen
    (paper Eq. 3, plus an optional pixel MSE). `content` is the content loss module (VGG19
    features, or the pixel MSE itself for SRGAN-MSE)."""

    content: nn.Module
    content_weight: float = 1.0
    pixel_weight: float = 1.0
    adversarial_weight: float = 1e-3
    # Steps in which only the discriminator trains, then steps over which the adversarial
    # weight rises from 0 (both 0 in the paper).
    discriminator_warmup_steps: int = 0
    adversarial_ramp_steps: int = 0

    def generator_trains(self, step: int) -> bool:
        return step >= self.discriminator_warmup_steps

    def adversarial_weight_at(self, step: int) -> float:
        if self.adversarial_ramp_steps == 0:
            return self.adversarial_weight
        progress = (step - self.discriminator_warmup_steps) / self.adversarial_ramp_steps
        return self.adversarial_weight * min(max(progress, 0.0), 1.0)


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
    loss: GanLoss,
    runtime: Runtime,
    batch: Batch,
    average: WeightAverage | None = None,
) -> dict[str, torch.Tensor]:
    """One generator update (discriminator frozen), then one discriminator update on the
    detached SR images. Each network has its own GradScaler, so an fp16 overflow in one does
    not skip or rescale the other's update. `average`, when kept, follows the generator.
    """
    # Generator: content + pixel + adversarial loss, gradients reach G only.
    set_requires_grad(discriminator.bare, False)
    generator_trains = loss.generator_trains(batch.step)
    with torch.set_grad_enabled(generator_trains), runtime.autocast():
        sr_image = generator.module(batch.lr_image)
        content = loss.content(sr_image, batch.hr_image)
        fake_logits = discriminator.frozen(sr_image)
    pixel = F.mse_loss(sr_image.float(), batch.hr_image)
    adversarial = generator_adversarial_loss(fake_logits.float())
    generator_loss = (
        loss.content_weight * content.float()
        + loss.pixel_weight * pixel
        + loss.adversarial_weight_at(batch.step) * adversarial
    )
    generator_skipped = None
    if generator_trains:
        generator_skipped = generator.update(generator_loss)
        if average is not None:
            average.update(generator.bare)

    # Discriminator: real vs the generator's detached output.
    set_requires_grad(discriminator.bare, True)
    with runtime.autocast():
        real_logits = discriminator.module(batch.hr_image)
        fake_logits = discriminator.module(sr_image.detach())
    d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
    discriminator_skipped = discriminator.update(d_loss)
    losses = {"content": content.detach().float()}
    # SRGAN-MSE's content term is the pixel MSE: a pixel term outside the loss would copy it.
    if loss.pixel_weight > 0 or not isinstance(loss.content, PixelContentLoss):
        losses["pixel"] = pixel.detach()
    losses |= {
        "adversarial": adversarial.detach(),
        "generator": generator_loss.detach(),
        "discriminator": d_loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
    }
    return with_skipped(losses, generator=generator_skipped, discriminator=discriminator_skipped)
