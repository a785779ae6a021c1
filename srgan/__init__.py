"""SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", arXiv 1609.04802) in plain PyTorch."""

from srgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srgan.config import Config, ConfigError, load_config
from srgan.degradation import degrade
from srgan.discriminator import Discriminator
from srgan.export import export_onnx, export_safetensors, export_torchscript
from srgan.generator import Generator
from srgan.imresize import imresize, imresize_torch
from srgan.inference import load_generator, upscale_tensor
from srgan.losses import ContentLoss, discriminator_loss, generator_adversarial_loss
from srgan.metrics import image_metrics, psnr, rgb_to_y, ssim
from srgan.upscaling import upscale

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "ContentLoss",
    "Discriminator",
    "Generator",
    "degrade",
    "discriminator_loss",
    "export_onnx",
    "export_safetensors",
    "export_torchscript",
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
    "upscale",
    "upscale_tensor",
]
