"""The paper's two-stage schedule (Ledig et al., arXiv 1609.04802, Section 3.2).

1. SRResNet pretraining with the pixel MSE (`pretrain`);
2. SRGAN training from the pretrained generator with the perceptual loss, in learning-rate
   stages (`train_gan`; the paper: 10^5 steps at 1e-4, then 10^5 at 1e-5).
"""

import math
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from srgan.checkpoint import (
    CheckpointError,
    checkpoint_name,
    describe_generator,
    generator_spec,
    load_checkpoint,
)
from srgan.config import Config, ConfigError, save_config
from srgan.data import TrainCrops, load_images, load_validation_images
from srgan.discriminator import Discriminator
from srgan.generator import Generator
from srgan.inference import generator_from_checkpoint
from srgan.loop import RunPaths, Stage, prepare_validation, run_stage
from srgan.losses import ContentLoss
from srgan.runtime import Runtime
from srgan.steps import LossWeights, gan_step, pretrain_step


def build_generator(config: Config) -> Generator:
    model = config.model
    return Generator(
        scale=model.scale, num_blocks=model.num_blocks, num_channels=model.num_channels
    )


def _prepare(module: nn.Module, config: Config, runtime: Runtime) -> tuple[nn.Module, nn.Module]:
    """(module for the step, module to save): device, memory format, SyncBN, DDP, compile."""
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    module = module.to(runtime.device, memory_format=memory_format)
    if runtime.distributed and config.runtime.sync_batchnorm:
        if runtime.device.type != "cuda":
            raise ConfigError(
                "runtime.sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm has no CPU version)"
            )
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    bare = module
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=device_ids)
    if config.runtime.compile:
        module = torch.compile(module)
    return module, bare


def _adam(module: nn.Module, betas: tuple[float, float], runtime: Runtime) -> torch.optim.Adam:
    # Fused Adam runs the whole update in a few kernels; it exists for CUDA only.
    fused = runtime.device.type == "cuda"
    return torch.optim.Adam(module.parameters(), lr=0.0, betas=betas, fused=fused)


def _load_data(config: Config, runtime: Runtime) -> tuple[TrainCrops, list]:
    images = load_images(config.data.train_dir, min_size=config.data.crop_size)
    crops = TrainCrops(images, config.data.crop_size, config.data.crops_per_image)
    pairs = load_validation_images(
        config.data.valid_dir, config.model.scale, config.data.valid_max_size
    )
    if runtime.is_main:
        print(
            f"data: {len(images)} training images ({config.data.train_dir}), "
            f"{len(pairs)} validation images ({config.data.valid_dir})",
            flush=True,
        )
    return crops, prepare_validation(pairs, config)


def _seed_models(seed: int) -> None:
    # Same seed on every rank: DDP would broadcast rank 0's weights anyway, single runs repeat.
    torch.manual_seed(seed)


def pretrain(
    config: Config,
    runtime: Runtime,
    paths: RunPaths,
    *,
    resume: str | None = None,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
) -> dict:
    """Stage 1: SRResNet trained with the pixel MSE, Adam(beta1=0.9)."""
    if runtime.is_main:
        save_config(config, paths.log_dir / "config.json")
    crops, validation = _load_data(config, runtime)
    _seed_models(config.seed)
    generator, generator_bare = _prepare(build_generator(config), config, runtime)
    optimizer = _adam(generator_bare, config.pretrain.betas, runtime)
    scaler = runtime.grad_scaler()
    settings = config.pretrain
    total_steps = settings.epochs * crops.steps_per_epoch(settings.batch_size)

    def lr_at(step: int) -> float:
        if settings.lr_schedule == "constant":
            return settings.lr
        progress = step / max(total_steps, 1)
        ratio = settings.final_lr_ratio + (1 - settings.final_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )
        return settings.lr * ratio

    stage = Stage(
        name="pretrain",
        kind="srresnet",
        stage_id=0,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validate_every=settings.validate_every,
        lr_at=lr_at,
        modules={"generator": generator_bare},
        optimizers={"generator": optimizer},
        scalers={"generator": scaler},
    )

    def step_fn(lr_image: torch.Tensor, hr_image: torch.Tensor) -> dict[str, torch.Tensor]:
        return pretrain_step(generator, optimizer, scaler, runtime, lr_image, hr_image)

    return run_stage(
        stage,
        step_fn,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=validation,
        paths=paths,
        resume=resume,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
    )


def pretrained_generator_path(config: Config, paths: RunPaths) -> Path:
    """gan.pretrained_generator, where "auto" means this run's best (else final) SRResNet."""
    if config.gan.pretrained_generator != "auto":
        return Path(config.gan.pretrained_generator)
    scale = config.model.scale
    for tag in ("best", "final"):
        path = paths.checkpoint_dir / checkpoint_name("srresnet", scale, config.name, tag)
        if path.is_file():
            return path
    raise CheckpointError(
        f"no pretrained SRResNet found for run '{config.name}' in {paths.checkpoint_dir}: run "
        f"scripts/pretrain.py with this config first, or set gan.pretrained_generator to a path"
    )


def train_gan(
    config: Config,
    runtime: Runtime,
    paths: RunPaths,
    *,
    resume: str | None = None,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
) -> dict:
    """Stage 2: SRGAN from the pretrained generator with the perceptual loss (paper Eq. 3)."""
    settings = config.gan
    source = pretrained_generator_path(config, paths)
    checkpoint = load_checkpoint(source)
    wanted = generator_spec(config.model.scale, config.model.num_blocks, config.model.num_channels)
    if checkpoint.get("model") != wanted:
        raise CheckpointError(
            f"{source} holds a generator with {describe_generator(checkpoint.get('model'))}, "
            f"but the config asks for {describe_generator(wanted)}"
        )
    pretrained = generator_from_checkpoint(checkpoint, str(source))
    if runtime.is_main:
        save_config(config, paths.log_dir / "config.json")
        print(f"GAN training starts from {source}", flush=True)
    crops, validation = _load_data(config, runtime)
    _seed_models(config.seed + 1)
    generator, generator_bare = _prepare(pretrained.train(), config, runtime)
    discriminator, discriminator_bare = _prepare(
        Discriminator(
            crop_size=config.data.crop_size, num_channels=config.model.discriminator_channels
        ),
        config,
        runtime,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content_loss = ContentLoss(
            layer=settings.content_layer,
            weights=settings.vgg_weights,
            feature_scale=settings.content_scale,
        )
    for warning in caught:
        if runtime.is_main:
            print(f"WARNING: {warning.message}", flush=True)
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    content_loss = content_loss.to(runtime.device, memory_format=memory_format)
    generator_optimizer = _adam(generator_bare, settings.betas, runtime)
    discriminator_optimizer = _adam(discriminator_bare, settings.betas, runtime)
    generator_scaler, discriminator_scaler = runtime.grad_scaler(), runtime.grad_scaler()
    steps_per_epoch = crops.steps_per_epoch(settings.batch_size)
    boundaries = []
    for stage_settings in settings.stages:
        previous = boundaries[-1] if boundaries else 0
        boundaries.append(previous + stage_settings.epochs * steps_per_epoch)

    def lr_at(step: int) -> float:
        for boundary, stage_settings in zip(boundaries, settings.stages, strict=True):
            if step < boundary:
                return stage_settings.lr
        return settings.stages[-1].lr

    weights = LossWeights(
        content=settings.content_weight,
        pixel=settings.pixel_weight,
        adversarial=settings.adversarial_weight,
    )
    stage = Stage(
        name="gan",
        kind="srgan",
        stage_id=1,
        batch_size=settings.batch_size,
        epochs=sum(s.epochs for s in settings.stages),
        validate_every=settings.validate_every,
        lr_at=lr_at,
        modules={"generator": generator_bare, "discriminator": discriminator_bare},
        optimizers={"generator": generator_optimizer, "discriminator": discriminator_optimizer},
        scalers={"generator": generator_scaler, "discriminator": discriminator_scaler},
        extra_state={"vgg_weights": content_loss.weights_used, "pretrained_from": str(source)},
    )

    def step_fn(lr_image: torch.Tensor, hr_image: torch.Tensor) -> dict[str, torch.Tensor]:
        return gan_step(
            generator,
            discriminator,
            discriminator_bare,
            content_loss,
            generator_optimizer,
            discriminator_optimizer,
            generator_scaler,
            discriminator_scaler,
            weights,
            runtime,
            lr_image,
            hr_image,
        )

    if runtime.is_main and content_loss.weights_used == "random":
        (paths.log_dir / "WARNING_random_vgg_weights.txt").write_text(
            "This run's VGG19 content loss used RANDOM weights (gan.vgg_weights could not load "
            "the ImageNet weights). Its perceptual results are not those of the paper.\n"
        )
    return run_stage(
        stage,
        step_fn,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=validation,
        paths=paths,
        resume=resume,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
    )
