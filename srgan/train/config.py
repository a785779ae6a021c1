"""One typed config for a whole run: JSON -> nested frozen dataclasses, validated before any work.

Unknown keys, wrong types and impossible values (the ranges: `srgan.train.config_checks`) raise
`ConfigError` naming the key (e.g. `pretrain.lr`); the scripts turn it into a one-line message
and exit code 2.
"""

import dataclasses
import difflib
import json
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from srgan.files import atomic_write_text
from srgan.models.generator import GeneratorSpec
from srgan.train.config_checks import ConfigError, validate


@dataclass(frozen=True)
class ModelConfig(GeneratorSpec):
    """The generator's spec (scale, num_blocks, num_channels) plus the discriminator's width."""

    discriminator_channels: int = 64

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
    # The paper's content losses (Section 3.4): "vgg54" (SRGAN), "vgg22", or "mse" (SRGAN-MSE:
    # the pixel MSE, so no VGG is built, loaded or downloaded).
    content_loss: Literal["vgg54", "vgg22", "mse"] = "vgg54"
    # "imagenet", "random" (smoke tests only), "auto" (imagenet if available, else random),
    # or a path to a VGG19 state dict.
    vgg_weights: str = "imagenet"
    # The paper rescales VGG feature maps by 1/12.75 to match the MSE loss's scale.
    content_scale: float = 1 / 12.75
    content_weight: float = 1.0
    # Not in the paper: a pixel MSE term that keeps short GAN runs from collapsing (0 = paper).
    pixel_weight: float = 1.0
    adversarial_weight: float = 1e-3
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


# Keys that were renamed: older configs and checkpoints still use the old name, read as the new.
RENAMED_KEYS = {
    ("gan", "stages"): "lr_phases",
    ("gan", "content_layer"): "content_loss",
}


def upgrade_keys(values: dict) -> dict:
    """A copy of a config dict (JSON, or one stored in a checkpoint) with renamed keys moved to
    their current names; naming both the old and the new key is an error."""
    values = json.loads(json.dumps(values))
    for (section, old), new in RENAMED_KEYS.items():
        part = values.get(section)
        if isinstance(part, dict) and old in part:
            if new in part:
                raise ConfigError(f"{section}.{old}: is the old name of {section}.{new}; use one")
            part[new] = part.pop(old)
    return values


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` (parsed JSON) against a type annotation and build the typed value."""
    origin = get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected an object, got {json.dumps(value)}")
        return _build(annotation, value, key)
    if origin is Literal:
        if value not in get_args(annotation):
            choices = ", ".join(json.dumps(choice) for choice in get_args(annotation))
            raise ConfigError(f"{key}: must be one of {choices}, got {json.dumps(value)}")
        return value
    if origin is tuple:
        arguments = get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {json.dumps(value)}")
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(
                _convert(item, arguments[0], f"{key}[{i}]") for i, item in enumerate(value)
            )
        if len(value) != len(arguments):
            raise ConfigError(f"{key}: expected {len(arguments)} values, got {len(value)}")
        return tuple(
            _convert(v, a, f"{key}[{i}]")
            for i, (v, a) in enumerate(zip(value, arguments, strict=True))
        )
    if origin in (Union, types.UnionType):
        raise TypeError(f"{key}: union types are not supported in the config")
    # JSON has no int/bool distinction from Python's point of view (bool is an int): be strict.
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2**63:  # would overflow a C long in torch/numpy later
            raise ConfigError(f"{key}: {value} is out of range")
        return value
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # JSON's Infinity and NaN parse as floats
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        return float(value)
    if annotation is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {annotation.__name__}, got {json.dumps(value)}")


def _build(cls: type, values: dict, prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise _unknown_key(key, names, prefix)
    kwargs = {}
    for name in values.keys() & names:
        kwargs[name] = _convert(
            values[name], hints[name], f"{prefix + '.' if prefix else ''}{name}"
        )
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required field (LrPhase) is missing
        raise ConfigError(f"{prefix}: {error}") from None


def _unknown_key(key: str, names: list[str], prefix: str) -> ConfigError:
    """The error for `key`, naming the closest known key of its section (a typo's fix)."""
    section = f"{prefix}." if prefix else ""
    closest = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {section}{closest[0]}?)" if closest else ""
    return ConfigError(f"{section}{key}: unknown key{hint}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`pretrain.lr=2e-4` -> (["pretrain", "lr"], 2e-4); the value is JSON, or a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(
    path: str | Path | None, overrides: list[str] = (), check_paths: bool = True
) -> Config:
    """Read a JSON config (defaults when `path` is None), apply `--set` overrides, validate."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a JSON object")
    values = upgrade_keys(values)
    for override in overrides:
        keys, value = parse_override(override)
        if len(keys) >= 2 and tuple(keys[:2]) in RENAMED_KEYS:
            keys[1] = RENAMED_KEYS[tuple(keys[:2])]
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {override}: {key} is not a section")
        target[keys[-1]] = value
    config = _build(Config, values, "")
    validate(config, check_paths)
    return config


def config_to_dict(config: Config) -> dict:
    """Plain JSON-able dict (tuples become lists), as saved with every run and checkpoint."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config atomically and durably: a full disk or a kill leaves the
    previous file whole (`WriteError` names the file), never an empty or partial one."""
    atomic_write_text(Path(path), json.dumps(config_to_dict(config), indent=2) + "\n", durable=True)
