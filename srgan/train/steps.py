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

from srgan.data.degradation import degrade_batch
from srgan.models.generator import unit_to_signed
from srgan.models.losses import GanLosses, PixelContentLoss, discriminator_loss
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
        sr_image = generator.ddp(batch.lr_image)
    loss = F.mse_loss(sr_image.float(), batch.hr_image)
    skipped = generator.update(loss)
    return with_skipped({"pixel": loss.detach()}, generator=skipped)


def with_skipped(losses: dict[str, torch.Tensor], **skipped: torch.Tensor | None) -> dict:
    """Add `skipped_<network>` terms (fp16 only), which the metrics log counts, not averages."""
    for name, flag in skipped.items():
        if flag is not None:
            losses[f"skipped_{name}"] = flag
    return losses


def gan_step(
    generator: Network,
    discriminator: Network,
    losses: GanLosses,
    runtime: Runtime,
    batch: Batch,
    average: WeightAverage | None = None,
) -> dict[str, torch.Tensor]:
    """One generator update (D frozen), then one D update on the detached SR images; each has its
    own GradScaler, so an fp16 overflow skips only its own update. `average` follows G."""
    # Generator: content + pixel + adversarial loss (Eq. 3), gradients reach G only.
    discriminator.model.requires_grad_(False)
    generator_trains = losses.adversarial.generator_trains(batch.step)
    with torch.set_grad_enabled(generator_trains), runtime.autocast():
        sr_image = generator.ddp(batch.lr_image)
        content = losses.content(sr_image, batch.hr_image)
        fake_logits = discriminator.compiled(sr_image)
    pixel = losses.pixel(sr_image, batch.hr_image)
    adversarial = losses.adversarial(fake_logits.float())
    generator_loss = (
        losses.content.weight * content.float()
        + losses.pixel.weight * pixel
        + losses.adversarial.weight_at(batch.step) * adversarial
    )
    generator_skipped = None
    if generator_trains:
        generator_skipped = generator.update(generator_loss)
        if average is not None:
            average.update(generator.model)

    # Discriminator: real vs the generator's detached output (Eq. 2).
    discriminator.model.requires_grad_(True)
    with runtime.autocast():
        real_logits = discriminator.ddp(batch.hr_image)
        fake_logits = discriminator.ddp(sr_image.detach())
    d_loss = discriminator_loss(real_logits.float(), fake_logits.float())
    discriminator_skipped = discriminator.update(d_loss)
    terms = {"content": content.detach().float()}
    # SRGAN-MSE's content term is the pixel MSE: a pixel term outside the loss would copy it.
    if losses.pixel.weight > 0 or not isinstance(losses.content, PixelContentLoss):
        terms["pixel"] = pixel.detach()
    terms |= {
        "adversarial": adversarial.detach(),
        "generator": generator_loss.detach(),
        "discriminator": d_loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
    }
    return with_skipped(terms, generator=generator_skipped, discriminator=discriminator_skipped)
