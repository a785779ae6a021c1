"""Every config key: its default (the paper's, where the paper has one) and the values it may
hold, checked before any work (`check_config`). `ConfigError` names the key (e.g.
`pretrain.lr`); the scripts turn it into a one-line message and exit code 2. Reading JSON into
these dataclasses: `srgan.config.loading`.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from srgan.data.degradation import gaussian_sigma_problem
from srgan.models.discriminator import DISCRIMINATOR_CHANNELS, DISCRIMINATORS
from srgan.models.generator import GeneratorSpec
from srgan.models.losses import ADVERSARIAL_WEIGHT, CONTENT_LOSSES, CONTENT_WEIGHT, FEATURE_SCALE


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ModelConfig(GeneratorSpec):
    """The generator's spec (scale, num_blocks, num_channels) plus the discriminator's."""

    # A name in srgan.models.discriminator.DISCRIMINATORS ("srgan": the paper's).
    discriminator: str = "srgan"
    discriminator_channels: int = DISCRIMINATOR_CHANNELS

    @property
    def generator(self) -> GeneratorSpec:
        return GeneratorSpec(self.scale, self.num_blocks, self.num_channels, self.upsample_blur)


@dataclass(frozen=True)
class DataConfig:
    train_dir: str = "data/DIV2K_train_HR"
    valid_dir: str = "data/DIV2K_valid_HR"
    # When true, the built-in sample images are written into train_dir/valid_dir if missing.
    sample_data: bool = False
    crop_size: int = 96
    # Random crops drawn from each training image per epoch (1: an epoch is one crop per image).
    crops_per_image: int = 1
    degradation: Literal["bicubic", "gaussian"] = "bicubic"
    gaussian_sigma: float = 1.5
    # Validation images are centre-cropped to at most this size (0 = whole image) to bound time.
    valid_max_size: int = 0
    # Training and validation images of more pixels are skipped, told from the header before
    # decoding: a safety bound (not in the paper), about 4x the largest DIV2K image. The value
    # of srgan.data.images.MAX_IMAGE_PIXELS, not imported: `import srgan` must not need PIL.
    max_image_pixels: int = 16_000_000


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 200
    batch_size: int = 16
    lr: float = 1e-4
    # Cosine decay to lr * final_lr_ratio over the run; "constant" is the paper's schedule.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    final_lr_ratio: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    # "icnr": sub-pixel convolutions start as nearest-neighbour upsampling (Aitken, Ledig et
    # al. 2017, arXiv 1707.02937), free of the checkerboard a random start gives; "default" is
    # PyTorch's initialisation, as in the paper.
    subpixel_init: Literal["default", "icnr"] = "default"
    # Not in the paper: start from the weights of this checkpoint, export or shipped model
    # (a fine-tune, e.g. into model.upsample_blur), "" = a random start. Its tensors must fit.
    initial_generator: str = ""
    validate_every: int = 10


@dataclass(frozen=True)
class LrPhase:
    """A stretch of GAN training at one learning rate (the paper: 10^5 steps at 1e-4, then 1e-5)."""

    epochs: int
    lr: float


@dataclass(frozen=True)
class GanConfig:
    lr_phases: tuple[LrPhase, ...] = (LrPhase(epochs=50, lr=1e-4), LrPhase(epochs=50, lr=1e-5))
    batch_size: int = 16
    betas: tuple[float, float] = (0.9, 0.999)
    # "auto": the best SRResNet checkpoint of this run's pretraining; or a path to a checkpoint.
    pretrained_generator: str = "auto"
    # A name in srgan.models.losses.CONTENT_LOSSES; the paper's (Section 3.4): "vgg54" (SRGAN),
    # "vgg22", or "mse" (SRGAN-MSE: the pixel MSE, so no VGG is built, loaded or downloaded).
    content_loss: str = "vgg54"
    # "imagenet", "random" (smoke tests only), "auto" (imagenet if available, else random),
    # or a path to a VGG19 state dict.
    vgg_weights: str = "imagenet"
    # The paper rescales VGG feature maps by 1/12.75 to match the MSE loss's scale.
    content_scale: float = FEATURE_SCALE
    content_weight: float = CONTENT_WEIGHT
    # Not in the paper: a pixel MSE term that keeps short GAN runs from collapsing (0 = paper).
    pixel_weight: float = 1.0
    adversarial_weight: float = ADVERSARIAL_WEIGHT
    # The discriminator's learning rate is the phase's lr times this (the paper: 1, the same
    # rate for both). Above 1 the discriminator adapts faster than the generator moves, as in
    # the two time-scale update rule (Heusel et al. 2017).
    discriminator_lr_factor: float = 1.0
    # Not in the paper, each off by default. An exponential moving average of the generator's
    # weights with this decay (BasicSR's SRGAN/ESRGAN: 0.999) is what validation, `_best`,
    # `_final` and exports hold; 0: no average, the trained weights themselves.
    generator_ema_decay: float = 0.0
    # The discriminator trains alone for this many steps before the generator gets any update.
    discriminator_warmup_steps: int = 0
    # The adversarial weight rises linearly from 0 over this many steps (after the warm-up).
    adversarial_ramp_steps: int = 0
    # The generator's BatchNorm layers use their running statistics, as at test time.
    freeze_generator_batchnorm: bool = False
    # With an average kept, validation also scores the trained generator (valid_trained/* in
    # the metrics): twice the validation time.
    validate_trained_generator: bool = False
    validate_every: int = 5


@dataclass(frozen=True)
class RuntimeConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # "auto": bf16 autocast where the device runs it natively, else fp32.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True
    compile: bool = False
    sync_batchnorm: bool = False
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    # Validation pictures in logs/<name>/samples/: the newest N strips, plus the first (0: none).
    keep_samples: int = 10
    # Also log to logs/<name>/tensorboard/<stage>/ (needs the optional tensorboard package).
    tensorboard: bool = False
    # Deterministic kernels where PyTorch has them (CUDA: no cuDNN autotuning, a fixed cuBLAS
    # workspace); a warning names an operation that has none.
    deterministic: bool = False
    # Several processes (torchrun): "auto" is NCCL on CUDA, gloo on the CPU.
    distributed_backend: Literal["auto", "nccl", "gloo"] = "auto"
    # How long ranks wait in a collective, e.g. while rank 0 validates (NCCL's own default,
    # 10 minutes, is shorter than a full-size DIV2K validation with NIQE on the CPU).
    distributed_timeout_minutes: float = 60.0


@dataclass(frozen=True)
class Config:
    name: str = "srgan"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


# Upper bounds far above any real run (the paper: batch 16, 96 px crops, lr 1e-4): beyond them a
# typo would exhaust memory or time before failing. The generator's: srgan/models/generator.py.
MAX_BATCH_SIZE = 1024
MAX_CROP_SIZE = 512
MAX_CROPS_PER_IMAGE = 10_000
MAX_DISCRIMINATOR_CHANNELS = 512
MAX_EPOCHS = 10_000_000
MAX_LR = 1.0
MAX_TIMEOUT_MINUTES = 7 * 24 * 60  # a week


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _require_at_most(value: float, maximum: float, key: str) -> None:
    _require(value <= maximum, key, f"must be at most {maximum:,}, got {value:,}")


def check_config(config: Config, check_paths: bool) -> None:
    """Raise `ConfigError` naming the first key whose value no run can use."""
    _validate_model(config.model)
    _validate_data(config.data, config.model.scale)
    for section in ("pretrain", "gan"):
        stage = getattr(config, section)
        _require(stage.batch_size >= 1, f"{section}.batch_size", "must be >= 1")
        _require_at_most(stage.batch_size, MAX_BATCH_SIZE, f"{section}.batch_size")
        _require(stage.validate_every >= 1, f"{section}.validate_every", "must be >= 1")
        for i, beta in enumerate(stage.betas):
            _require(0 <= beta < 1, f"{section}.betas[{i}]", f"must be in [0, 1), got {beta}")
    _validate_pretrain(config.pretrain)
    _validate_gan(config.gan)
    _validate_runtime(config.runtime)
    _require(
        re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", config.name) is not None,
        "name",
        f"must be a plain file name (letters, digits, '.', '_', '-'; not starting with '.'), "
        f"got {json.dumps(config.name)}",
    )
    _require(0 <= config.seed < 2**32, "seed", f"must be in [0, 2^32), got {config.seed}")
    if check_paths and not config.data.sample_data:
        for key in ("train_dir", "valid_dir"):
            folder = Path(getattr(config.data, key))
            hint = "scripts/download_data.py fetches the known datasets: see data/README.md"
            _require(folder.is_dir(), f"data.{key}", f"folder {folder} does not exist ({hint})")


def _require_choice(value: str, choices: dict, key: str) -> None:
    names = ", ".join(json.dumps(name) for name in choices)
    _require(value in choices, key, f"must be one of {names}, got {json.dumps(value)}")


def _validate_pretrain(pretrain: PretrainConfig) -> None:
    _validate_schedule("pretrain", pretrain.epochs, pretrain.lr)
    _require(
        not (pretrain.initial_generator and pretrain.subpixel_init == "icnr"),
        "pretrain.subpixel_init",
        '"icnr" initialises the weights that pretrain.initial_generator replaces: choose one',
    )
    _require(0 < pretrain.final_lr_ratio <= 1, "pretrain.final_lr_ratio", "must be in (0, 1]")


def _validate_gan(gan: GanConfig) -> None:
    _require(len(gan.lr_phases) >= 1, "gan.lr_phases", "needs at least one phase")
    for i, phase in enumerate(gan.lr_phases):
        _validate_schedule(f"gan.lr_phases[{i}]", phase.epochs, phase.lr)
    _require_choice(gan.content_loss, CONTENT_LOSSES, "gan.content_loss")
    for name in ("content_scale", "content_weight", "pixel_weight", "adversarial_weight"):
        _require(getattr(gan, name) >= 0, f"gan.{name}", "must be >= 0")
    factor = gan.discriminator_lr_factor
    _require(factor > 0, "gan.discriminator_lr_factor", f"must be positive, got {factor}")
    _require_at_most(factor, 1000, "gan.discriminator_lr_factor")
    decay = gan.generator_ema_decay
    _require(0 <= decay < 1, "gan.generator_ema_decay", f"must be in [0, 1), got {decay}")
    _require(
        decay > 0 or not gan.validate_trained_generator,
        "gan.validate_trained_generator",
        "needs gan.generator_ema_decay > 0 (without an average the trained generator is the one "
        "validated)",
    )
    for name in ("discriminator_warmup_steps", "adversarial_ramp_steps"):
        steps = getattr(gan, name)
        _require(steps >= 0, f"gan.{name}", f"must be >= 0, got {steps}")
        _require_at_most(steps, MAX_EPOCHS, f"gan.{name}")


def _validate_runtime(runtime: RuntimeConfig) -> None:
    _require(runtime.log_every >= 1, "runtime.log_every", "must be >= 1")
    _require(runtime.checkpoint_every >= 1, "runtime.checkpoint_every", "must be >= 1")
    _require(runtime.keep_checkpoints >= 1, "runtime.keep_checkpoints", "must be >= 1")
    _require(runtime.keep_samples >= 0, "runtime.keep_samples", "must be >= 0")
    timeout = runtime.distributed_timeout_minutes
    _require(timeout > 0, "runtime.distributed_timeout_minutes", f"must be positive, got {timeout}")
    _require_at_most(timeout, MAX_TIMEOUT_MINUTES, "runtime.distributed_timeout_minutes")


def _validate_model(model: ModelConfig) -> None:
    problem = model.generator.problem()  # scale, num_blocks, num_channels
    if problem is not None:
        raise ConfigError(f"model.{problem[0]}: {problem[1]}")
    _require_choice(model.discriminator, DISCRIMINATORS, "model.discriminator")
    channels = model.discriminator_channels
    _require(channels >= 1, "model.discriminator_channels", "must be >= 1")
    _require_at_most(channels, MAX_DISCRIMINATOR_CHANNELS, "model.discriminator_channels")


def _validate_data(data: DataConfig, scale: int) -> None:
    _require(data.crop_size > 0, "data.crop_size", "must be positive")
    _require_at_most(data.crop_size, MAX_CROP_SIZE, "data.crop_size")
    _require(
        data.crop_size % scale == 0,
        "data.crop_size",
        f"{data.crop_size} is not divisible by model.scale {scale}",
    )
    _require(data.crop_size % 16 == 0, "data.crop_size", "must be a multiple of 16 (discriminator)")
    _require(data.crops_per_image >= 1, "data.crops_per_image", "must be >= 1")
    _require_at_most(data.crops_per_image, MAX_CROPS_PER_IMAGE, "data.crops_per_image")
    sigma = data.gaussian_sigma
    problem = gaussian_sigma_problem(sigma)
    _require(problem is None, "data.gaussian_sigma", problem)
    # The blur pads each crop by its radius, 3 sigma, which reflection needs inside the crop.
    radius = math.ceil(3 * sigma)
    _require(
        data.degradation != "gaussian" or radius < data.crop_size,
        "data.gaussian_sigma",
        f"a blur of sigma {sigma} reaches {radius} px, more than data.crop_size "
        f"{data.crop_size} allows",
    )
    _require(data.valid_max_size >= 0, "data.valid_max_size", "must be >= 0")
    crop_pixels = data.crop_size**2
    _require(
        data.max_image_pixels >= crop_pixels,
        "data.max_image_pixels",
        f"must be at least data.crop_size squared ({crop_pixels:,}), got {data.max_image_pixels:,}",
    )


def _validate_schedule(key: str, epochs: int, learning_rate: float) -> None:
    _require(epochs >= 0, f"{key}.epochs", "must be >= 0")
    _require_at_most(epochs, MAX_EPOCHS, f"{key}.epochs")
    _require(learning_rate > 0, f"{key}.lr", f"must be positive, got {learning_rate}")
    _require_at_most(learning_rate, MAX_LR, f"{key}.lr")
