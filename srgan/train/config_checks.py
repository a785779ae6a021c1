"""What values a config may hold: each key's range and the rules between keys, checked before
any work. `ConfigError` names the key (e.g. `pretrain.lr`); the scripts turn it into a
one-line message and exit code 2.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from srgan.data.degradation import gaussian_sigma_problem

if TYPE_CHECKING:  # annotations only: srgan.train.config imports this module
    from srgan.train.config import Config, DataConfig, ModelConfig


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


# Upper bounds no real run comes near (the paper: batch 16, 96 px crops, lr 1e-4, a 64-wide
# discriminator), each far above it. Values beyond them are typos or unit mix-ups that would
# otherwise exhaust memory or time before failing; the generator's own bounds are in
# srgan/models/generator.py (MAX_BLOCKS, MAX_CHANNELS), the blur's in
# srgan/data/degradation.py (gaussian_sigma_problem).
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
    """The upper bounds (MAX_*): the lower ones have their own messages."""
    _require(value <= maximum, key, f"must be at most {maximum:,}, got {value:,}")


def validate(config: Config, check_paths: bool) -> None:
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
    _validate_schedule("pretrain", config.pretrain.epochs, config.pretrain.lr)
    _require(
        not (config.pretrain.initial_generator and config.pretrain.subpixel_init == "icnr"),
        "pretrain.subpixel_init",
        '"icnr" initialises the weights that pretrain.initial_generator replaces: choose one',
    )
    ratio = config.pretrain.final_lr_ratio
    _require(0 < ratio <= 1, "pretrain.final_lr_ratio", "must be in (0, 1]")
    _require(len(config.gan.lr_phases) >= 1, "gan.lr_phases", "needs at least one phase")
    for i, phase in enumerate(config.gan.lr_phases):
        _validate_schedule(f"gan.lr_phases[{i}]", phase.epochs, phase.lr)
    for name in ("content_scale", "content_weight", "pixel_weight", "adversarial_weight"):
        _require(getattr(config.gan, name) >= 0, f"gan.{name}", "must be >= 0")
    factor = config.gan.discriminator_lr_factor
    _require(factor > 0, "gan.discriminator_lr_factor", f"must be positive, got {factor}")
    _require_at_most(factor, 1000, "gan.discriminator_lr_factor")
    decay = config.gan.generator_ema_decay
    _require(0 <= decay < 1, "gan.generator_ema_decay", f"must be in [0, 1), got {decay}")
    _require(
        decay > 0 or not config.gan.validate_trained_generator,
        "gan.validate_trained_generator",
        "needs gan.generator_ema_decay > 0 (without an average the trained generator is the one "
        "validated)",
    )
    for name in ("discriminator_warmup_steps", "adversarial_ramp_steps"):
        steps = getattr(config.gan, name)
        _require(steps >= 0, f"gan.{name}", f"must be >= 0, got {steps}")
        _require_at_most(steps, MAX_EPOCHS, f"gan.{name}")
    runtime = config.runtime
    _require(runtime.log_every >= 1, "runtime.log_every", "must be >= 1")
    _require(runtime.checkpoint_every >= 1, "runtime.checkpoint_every", "must be >= 1")
    _require(runtime.keep_checkpoints >= 1, "runtime.keep_checkpoints", "must be >= 1")
    _require(runtime.keep_samples >= 0, "runtime.keep_samples", "must be >= 0")
    timeout = runtime.distributed_timeout_minutes
    _require(timeout > 0, "runtime.distributed_timeout_minutes", f"must be positive, got {timeout}")
    _require_at_most(timeout, MAX_TIMEOUT_MINUTES, "runtime.distributed_timeout_minutes")
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


def _validate_model(model: ModelConfig) -> None:
    problem = model.generator.problem()  # scale, num_blocks, num_channels
    if problem is not None:
        raise ConfigError(f"model.{problem[0]}: {problem[1]}")
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
