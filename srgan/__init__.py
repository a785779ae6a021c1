"""SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", arXiv 1609.04802) in plain PyTorch.

The package's top level is the training core (models, losses, data, config, loop,
evaluation); `srgan.tools` holds what is built on it (download, upscaling files, export,
benchmark) and `srgan.commands` the command-line entry points. Imports point that way only.
"""

from srgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srgan.config import Config, ConfigError, load_config
from srgan.degradation import degrade_batch, degrade_image
from srgan.discriminator import Discriminator
from srgan.generator import Generator, GeneratorSpec
from srgan.imresize import imresize, imresize_torch
from srgan.inference import load_generator, upscale_tensor
from srgan.losses import ContentLoss, discriminator_loss, generator_adversarial_loss
from srgan.metrics import image_metrics, psnr, rgb_to_y, ssim

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
    "load_checkpoint",
    "load_config",
    "load_generator",
    "psnr",
    "rgb_to_y",
    "save_checkpoint",
    "ssim",
    "upscale_tensor",
]
