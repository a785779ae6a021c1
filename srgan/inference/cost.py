"""What upscaling an image file will cost, told before it starts: the size of the result and
the memory it takes come from the file's header (PIL reads the size without decoding), the
time from the generator's speed measured on one small patch.

An 87 KB PNG can declare 9500x9500 pixels: upscaled x4 that is a 1.4-gigapixel result, 4.3 GB
in memory and hours of compute, which `scripts/upscale.py` refuses unless asked for.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from srgan.inference.tile_size import available_memory, choose_tile
from srgan.inference.tiles import context_pixels, upscale_tensor
from srgan.inference.upscaling import output_mode
from srgan.models.generator import Generator

# Default of --max-pixels: a 16-megapixel input at x4 (16000x16000), 768 MB as 8-bit RGB and
# hours on a CPU; a larger result only on request.
DEFAULT_MAX_PIXELS = 256_000_000
REPORTED_PIXELS = 16_000_000  # results larger than this have their cost printed first
# Side of the patch the speed is measured on: on a GPU a small one would time the kernel
# launches, not the throughput.
SPEED_PATCH_SIDES = {"cuda": 256}
DEFAULT_SPEED_PATCH_SIDE = 64
EXIF_ORIENTATION = 0x0112
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # the orientations that swap width and height


@dataclass(frozen=True)
class UpscaleCost:
    """What the upscale of one image makes and runs."""

    input_size: tuple[int, int]  # width, height, after the EXIF orientation
    output_size: tuple[int, int]
    largest_pixels: int  # of the model's output or the resized result, whichever is larger
    image_bytes: int  # the model's output and the resized result, held at the same time
    lr_pixels_run: int  # LR pixels the generator runs on, the tiles' context included


def header_cost(
    path: Path,
    generator: Generator,
    outscale: float,
    tile: int | None,
    overlap: int,
) -> UpscaleCost | None:
    """The cost of upscaling the image file `path` (see `srgan.inference.upscaling.upscale`
    for `outscale`, `tile` and `overlap`), from its header; None where that is unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = output_mode(image)
            # Only from EXIF read with the header: PNG's getexif() would decode the image.
            exif = image.getexif() if "exif" in image.info else {}
            if exif.get(EXIF_ORIENTATION) in TRANSPOSED_ORIENTATIONS:
                width, height = height, width
    except Exception:  # PIL raises many types for a bad file; the upscale itself reports it
        return None
    scale = generator.scale
    model_pixels = width * scale * height * scale
    output_size = (max(round(width * outscale), 1), max(round(height * outscale), 1))
    resized_pixels = output_size[0] * output_size[1] if outscale != scale else 0
    bytes_per_pixel = 2 if mode == "I;16" else len(mode)  # L, LA, RGB, RGBA: a byte a channel
    if tile is None:
        device = next(generator.parameters()).device
        tile = choose_tile(height, width, generator.spec, overlap, available_memory(device))
    return UpscaleCost(
        input_size=(width, height),
        output_size=output_size,
        largest_pixels=max(model_pixels, resized_pixels),
        image_bytes=bytes_per_pixel * (model_pixels + resized_pixels),
        lr_pixels_run=context_pixels(height, width, tile, overlap),
    )


def seconds_per_lr_pixel(generator: Generator, precision: str) -> float:
    """Seconds the generator takes per LR pixel in `precision`, timed on one patch after a
    warm-up (the first call pays for kernel selection and memory allocation)."""
    device = next(generator.parameters()).device
    side = SPEED_PATCH_SIDES.get(device.type, DEFAULT_SPEED_PATCH_SIDE)
    patch = torch.rand(1, 3, side, side, device=device)
    upscale_tensor(generator, patch[..., :16, :16], precision=precision)
    start = time.perf_counter()
    upscale_tensor(generator, patch, precision=precision).sum().item()  # item() waits for a GPU
    return (time.perf_counter() - start) / side**2


def describe_duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def describe_cost(cost: UpscaleCost, seconds_per_pixel: float | None = None) -> str:
    """e.g. '9500x9500 -> 38000x38000, 1444.0 megapixels, 4.3 GB in memory, about 3.1 h'."""
    (width, height), (out_width, out_height) = cost.input_size, cost.output_size
    pixels = cost.largest_pixels
    size = f"{pixels:,} pixels" if pixels < 1e6 else f"{pixels / 1e6:.1f} megapixels"
    memory = cost.image_bytes
    memory_text = f"{memory / 1e6:.1f} MB" if memory < 1e9 else f"{memory / 1e9:.1f} GB"
    text = f"{width}x{height} -> {out_width}x{out_height}, {size}, {memory_text} in memory"
    if seconds_per_pixel is not None:
        text += f", {describe_duration(seconds_per_pixel * cost.lr_pixels_run)}"
    return text
