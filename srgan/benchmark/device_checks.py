"""Measurements `scripts/gpu_check.sh` makes inside one process: host syncs per training step,
CUDA evaluation against the CPU's, and two checkpoints compared tensor for tensor.

Each returns a `Finding`: "ok", "falls short" or a figure, with the numbers behind it.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srgan.checkpoint import load_checkpoint
from srgan.data.images import read_image
from srgan.data.imresize import modcrop
from srgan.eval.metrics import psnr, rgb_to_y
from srgan.eval.protocol import model_upscaler
from srgan.inference.weights import load_generator
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator
from srgan.models.losses import ContentLoss, GanLosses
from srgan.run.runtime import Runtime
from srgan.train.networks import build_network
from srgan.train.steps import Degradation, gan_step, prepare_batch, pretrain_step


@dataclass(frozen=True)
class Finding:
    status: str  # "ok", "falls short", "skipped" or "figure"
    detail: str
    numbers: dict = field(default_factory=dict)


def count_host_syncs(runtime: Runtime, sizes: dict, steps: int = 5) -> Finding:
    """Synchronising CUDA calls in `steps` steps of each stage after a warm-up step, as the
    loop runs them (`torch.cuda.set_sync_debug_mode("warn")` warns at each)."""
    torch.manual_seed(0)
    generator = build_network(
        Generator(num_blocks=sizes["num_blocks"], num_channels=sizes["num_channels"]), runtime
    )
    discriminator = build_network(
        Discriminator(crop_size=sizes["crop_size"], num_channels=sizes["discriminator_channels"]),
        runtime,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random-weights notice
        content = ContentLoss(layer="vgg54", weights="random").to(runtime.device)
    loss = GanLosses(content)
    shape = (sizes["batch_size"], 3, sizes["crop_size"], sizes["crop_size"])
    hr_uint8 = torch.randint(0, 256, shape, dtype=torch.uint8).pin_memory()
    steps_of = {
        "pretrain": lambda batch: pretrain_step(generator, runtime, batch),
        "gan": lambda batch: gan_step(generator, discriminator, loss, runtime, batch),
    }
    counts = {}
    for stage, step_fn in steps_of.items():
        step_fn(prepare_batch(hr_uint8, 0, runtime, Degradation(4)))  # warm-up: caches, autotune
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for step in range(1, steps + 1):
                    step_fn(prepare_batch(hr_uint8, step, runtime, Degradation(4)))
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        counts[stage] = len(syncs) / steps
        counts[f"{stage}_examples"] = sorted({str(w.message)[:200] for w in syncs})[:3]
    status = "ok" if counts["pretrain"] == counts["gan"] == 0 else "falls short"
    detail = f"{counts['pretrain']:g} per pretraining step, {counts['gan']:g} per GAN step"
    return Finding(status, detail, counts)


def evaluation_agreement(weights: Path, images: list[Path], device: torch.device) -> Finding:
    """The shipped SRResNet's fp32 outputs on `device` against the CPU's: the largest pixel
    difference (8-bit levels) and PSNR-Y difference over `images`."""
    generator = load_generator(weights, "cpu").eval()
    on_cpu = model_upscaler(generator, torch.device("cpu"))
    on_device = model_upscaler(load_generator(weights, device).eval(), device)
    scale, largest, psnr_gap = generator.scale, 0, 0.0
    for path in images:
        hr_image = modcrop(read_image(path), scale)
        lr_image = hr_image[::scale, ::scale].copy()  # any LR image will do: outputs compared
        cpu_sr, device_sr = on_cpu(lr_image), on_device(lr_image)
        largest = max(largest, int(np.abs(cpu_sr.astype(int) - device_sr.astype(int)).max()))
        hr_y = rgb_to_y(hr_image)
        gap = abs(psnr(rgb_to_y(cpu_sr), hr_y, scale) - psnr(rgb_to_y(device_sr), hr_y, scale))
        psnr_gap = max(psnr_gap, gap)
    numbers = {"max_level_difference": largest, "max_psnr_y_difference_db": psnr_gap}
    # fp32 on both sides: sums in another order may round a pixel across a level boundary.
    status = "ok" if largest <= 1 and psnr_gap < 0.01 else "falls short"
    return Finding(status, f"max {largest} level(s), PSNR-Y within {psnr_gap:.2g} dB", numbers)


def state_differences(reference: object, other: object, where: str = "") -> list[str]:
    """Paths in two nested checkpoint states where they differ: tensors bit for bit (dtype
    too), everything else by equality."""
    if isinstance(reference, torch.Tensor):
        same = isinstance(other, torch.Tensor) and reference.dtype == other.dtype
        return [] if same and torch.equal(reference, other) else [where]
    if isinstance(reference, dict):
        if not isinstance(other, dict) or reference.keys() != other.keys():
            return [f"{where} (keys)"]
        return [
            d for k in reference for d in state_differences(reference[k], other[k], f"{where}.{k}")
        ]
    if isinstance(reference, list | tuple):
        if not isinstance(other, list | tuple) or len(reference) != len(other):
            return [f"{where} (length)"]
        pairs = enumerate(zip(reference, other, strict=True))
        return [d for i, (a, b) in pairs for d in state_differences(a, b, f"{where}[{i}]")]
    return [] if reference == other else [where]


def compare_checkpoints(reference: Path, resumed: Path) -> Finding:
    """A run resumed midway against an uninterrupted one: every network, optimizer and scaler
    tensor must be identical."""
    keys = ("generator", "optimizers", "scalers")
    first, second = load_checkpoint(reference), load_checkpoint(resumed)
    differing = state_differences({k: first[k] for k in keys}, {k: second[k] for k in keys})
    if differing:
        return Finding("falls short", f"{len(differing)} tensors differ, e.g. {differing[0]}")
    return Finding("ok", "every weight and optimizer tensor bit-identical")
