"""SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", arXiv 1609.04802) in plain PyTorch.

Subpackages, one concern each: `models` (the networks and losses), `data` (images,
degradation, training crops), `train` (the two-stage schedule), `eval` (the evaluation
protocol), `inference` (using a trained generator), `datasets` (downloads), `benchmark`
(speed) and `commands` (the command-line entry points). Beside them, what several share:
`checkpoint` (the file format), `files` (safe reading and writing) and `machine` (the
precision names and their dtypes, native bf16, the machine's description).
"""

from srgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srgan.config import Config, ConfigError, load_config
from srgan.data.degradation import degrade_batch, degrade_image
from srgan.data.imresize import imresize, imresize_torch
from srgan.eval.metrics import image_metrics, psnr, rgb_to_y, ssim
from srgan.inference.interpolation import interpolated_generator
from srgan.inference.tiles import upscale_tensor
from srgan.inference.weights import load_generator
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator, GeneratorSpec
from srgan.models.losses import ContentLoss, discriminator_loss, generator_adversarial_loss

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "ContentLoss",
    "Discriminator",
    "Generator",
    "GeneratorSpec",
    "degrade_batch",
    "degrade_image",
    "discriminator_loss",
    "generator_adversarial_loss",
    "image_metrics",
    "imresize",
    "imresize_torch",
    "interpolated_generator",
    "load_checkpoint",
    "load_config",
    "load_generator",
    "psnr",
    "rgb_to_y",
    "save_checkpoint",
    "ssim",
    "upscale_tensor",
]
