"""The paper's two-stage schedule (Ledig et al., arXiv 1609.04802, Section 3.2).

1. SRResNet pretraining with the pixel MSE (`pretrain`);
2. SRGAN training from the pretrained generator with the perceptual loss, in learning-rate
   phases (`train_gan`; the paper: 10^5 steps at 1e-4, then 10^5 at 1e-5).
"""

import math
import warnings
from functools import partial
from pathlib import Path

import torch
from torch import nn

from srgan.config import Config, PretrainConfig
from srgan.data.crops import TrainCrops, load_images
from srgan.data.sample_data import write_sample_data
from srgan.eval.protocol import EvalImage, load_validation_images
from srgan.models.discriminator import DISCRIMINATORS
from srgan.models.generator import Generator, icnr_init_
from srgan.models.losses import (
    CONTENT_LOSSES,
    AdversarialLoss,
    ContentLoss,
    GanLosses,
    PixelContentLoss,
    PixelLoss,
)
from srgan.run.folder import RunPaths
from srgan.run.resume import check_resume
from srgan.run.runtime import Runtime
from srgan.run.tensorboard_log import require_tensorboard
from srgan.train.averaging import WeightAverage
from srgan.train.loop import Stage, run_stage
from srgan.train.networks import Network, build_network
from srgan.train.starting_weights import Pretrained, generator_to_train, load_initial_weights
from srgan.train.steps import gan_step, pretrain_step


def network_options(config: Config, section: str) -> dict:
    """build_network's options for a stage's networks: its Adam betas, the runtime's extras."""
    return {
        "betas": getattr(config, section).betas,
        "compile": config.runtime.compile,
        "sync_batchnorm": config.runtime.sync_batchnorm,
    }


def prepare_run(config: Config, runtime: Runtime) -> None:
    """Before any training: what the config needs from this machine, and the built-in sample
    images when the config asks for them (only missing files). The resolved config is saved
    later, by `run_stage`, once the run folder's checks pass."""
    if config.runtime.tensorboard:
        require_tensorboard()
    if runtime.is_main and config.data.sample_data:
        write_sample_data(Path(config.data.train_dir), Path(config.data.valid_dir))
    if runtime.distributed:
        torch.distributed.barrier()  # rank 0 may have written the sample images


def load_data(config: Config, runtime: Runtime) -> tuple[TrainCrops, list[EvalImage]]:
    data = config.data
    images = load_images(data.train_dir, min_size=data.crop_size, max_pixels=data.max_image_pixels)
    crops = TrainCrops(images, data.crop_size, data.crops_per_image)
    validation = load_validation_images(
        data.valid_dir,
        config.model.scale,
        data.valid_max_size,
        data.degradation,
        data.gaussian_sigma,
        max_pixels=data.max_image_pixels,
    )
    if runtime.is_main:
        print(
            f"data: {len(images)} training images ({data.train_dir}), "
            f"{len(validation)} validation images ({data.valid_dir})",
            flush=True,
        )
    return crops, validation


def pretrain_lr(settings: PretrainConfig, total_steps: int, step: int) -> float:
    """Constant (the paper), or cosine decay to lr * final_lr_ratio at the last step."""
    if settings.lr_schedule == "constant":
        return settings.lr
    progress = step / max(total_steps, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return settings.lr * (settings.final_lr_ratio + (1 - settings.final_lr_ratio) * cosine)


def gan_lr(boundaries: list[tuple[int, float]], step: int) -> float:
    """The learning rate of the GAN phase `step` falls in; (end step, lr) per phase."""
    for end_step, learning_rate in boundaries:
        if step < end_step:
            return learning_rate
    return boundaries[-1][1]


def pretrain(config: Config, runtime: Runtime, paths: RunPaths, **loop_options) -> dict:
    """Stage 1: SRResNet trained with the pixel MSE, Adam(beta1=0.9)."""
    runtime.check_batch_split(config.pretrain.batch_size, "pretrain.batch_size")
    check_resume(config, paths, "srresnet", loop_options.get("resume"))
    prepare_run(config, runtime)
    crops, validation = load_data(config, runtime)
    # Same seed on every rank: DDP would broadcast rank 0's weights anyway, single runs repeat.
    torch.manual_seed(config.seed)
    settings = config.pretrain
    model = Generator.from_spec(config.model.generator)
    if settings.subpixel_init == "icnr":
        icnr_init_(model)
    if settings.initial_generator:
        load_initial_weights(model, settings.initial_generator)
    generator = build_network(model, runtime, **network_options(config, "pretrain"))
    total_steps = settings.epochs * crops.steps_per_epoch(settings.batch_size)
    stage = Stage(
        name="pretrain",
        kind="srresnet",
        stage_id=0,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validate_every=settings.validate_every,
        lr_at=partial(pretrain_lr, settings, total_steps),
        networks={"generator": generator},
        step=partial(pretrain_step, generator, runtime),
    )
    return run_stage(
        stage,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=validation,
        paths=paths,
        **loop_options,
    )


def build_losses(config: Config, runtime: Runtime) -> GanLosses:
    """The GAN stage's losses, each with its weight: gan.content_loss on the device (the VGG19
    feature loss's weight warnings go to the main process's log; "mse" builds no VGG)."""
    settings = config.gan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = CONTENT_LOSSES[settings.content_loss](
            weights=settings.vgg_weights,
            feature_scale=settings.content_scale,
            weight=settings.content_weight,
        )
    for warning in caught:
        if runtime.is_main:
            print(f"WARNING: {warning.message}", flush=True)
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    adversarial = AdversarialLoss(
        weight=settings.adversarial_weight,
        warmup_steps=settings.discriminator_warmup_steps,
        ramp_steps=settings.adversarial_ramp_steps,
    )
    return GanLosses(
        content=content.to(runtime.device, memory_format=memory_format),
        pixel=PixelLoss(weight=settings.pixel_weight),
        adversarial=adversarial,
    )


def freeze_batchnorm(module: nn.Module) -> None:
    """BatchNorm layers normalise with their running statistics, as at test time, and keep
    them; their scale and shift still train."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def random_vgg_note(content_loss: ContentLoss | PixelContentLoss) -> dict[str, str]:
    """A file in the log folder that says so when the content loss ran on random weights."""
    if content_loss.weights_used != "random":
        return {}
    return {
        "WARNING_random_vgg_weights.txt": "This run's VGG19 content loss used RANDOM weights "
        "(gan.vgg_weights could not load the ImageNet weights). Its perceptual results are "
        "not those of the paper.\n"
    }


def gan_networks(
    config: Config, runtime: Runtime, pretrained: Pretrained
) -> tuple[Network, Network, WeightAverage | None]:
    """The generator (from `pretrained`), the discriminator and the generator's weight average
    (None unless gan.generator_ema_decay asks for one), on the device."""
    settings = config.gan
    options = network_options(config, "gan")
    generator = build_network(pretrained.generator, runtime, **options)
    if settings.freeze_generator_batchnorm:
        freeze_batchnorm(generator.model)
    average = None
    if settings.generator_ema_decay > 0:
        average = WeightAverage.of(generator.model, settings.generator_ema_decay)
    discriminator = DISCRIMINATORS[config.model.discriminator](
        crop_size=config.data.crop_size, num_channels=config.model.discriminator_channels
    )
    return generator, build_network(discriminator, runtime, **options), average


def gan_lr_boundaries(config: Config, steps_per_epoch: int) -> list[tuple[int, float]]:
    """(end step, lr) of each GAN learning-rate phase."""
    boundaries, end_step = [], 0
    for phase in config.gan.lr_phases:
        end_step += phase.epochs * steps_per_epoch
        boundaries.append((end_step, phase.lr))
    return boundaries


def train_gan(config: Config, runtime: Runtime, paths: RunPaths, **loop_options) -> dict:
    """Stage 2: SRGAN from the pretrained generator with the perceptual loss (paper Eq. 3)."""
    settings = config.gan
    runtime.check_batch_split(settings.batch_size, "gan.batch_size")
    check_resume(config, paths, "srgan", loop_options.get("resume"))
    pretrained = generator_to_train(config, paths, loop_options.get("resume"))
    prepare_run(config, runtime)
    if runtime.is_main:
        print(f"GAN training from the SRResNet {pretrained.source}", flush=True)
        if pretrained.warning is not None:
            print(pretrained.warning, flush=True)
    crops, validation = load_data(config, runtime)
    torch.manual_seed(config.seed + 1)
    generator, discriminator, average = gan_networks(config, runtime, pretrained)
    losses = build_losses(config, runtime)
    steps_per_epoch = crops.steps_per_epoch(settings.batch_size)
    stage = Stage(
        name="gan",
        kind="srgan",
        stage_id=1,
        batch_size=settings.batch_size,
        epochs=sum(phase.epochs for phase in settings.lr_phases),
        validate_every=settings.validate_every,
        lr_at=partial(gan_lr, gan_lr_boundaries(config, steps_per_epoch)),
        networks={"generator": generator, "discriminator": discriminator},
        step=partial(gan_step, generator, discriminator, losses, runtime, average=average),
        extra_state={
            "vgg_weights": losses.content.weights_used,
            "pretrained_from": pretrained.source,
            "pretrained_sha256": pretrained.sha256,
        },
        lr_factors={"discriminator": settings.discriminator_lr_factor},
        log_files=random_vgg_note(losses.content),
        average=average,
        validate_trained=settings.validate_trained_generator,
    )
    return run_stage(
        stage,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=validation,
        paths=paths,
        **loop_options,
    )
