"""Upscaling with a trained generator in tiles (its weights: `srgan.inference.weights`).

Tiling keeps peak memory bounded by the tile size, not the image size. Every tile is run with
as much LR context on each side as one output pixel can see (`receptive_radius`), so a tiled
result equals the untiled one up to float rounding: no seams, whatever the weights.
"""

import itertools
import math
import warnings
from collections.abc import Callable

import torch
from tqdm import tqdm

from srgan.inference.tile_size import available_memory, choose_tile
from srgan.machine import PRECISIONS, exact_fp32_kernels, resolve_precision
from srgan.models.generator import Generator, signed_to_unit

# write(hr_rows, hr_cols, sr_tile): receives each finished SR tile, float32 (N, 3, h, w) in [0, 1].
TileWriter = Callable[[slice, slice, torch.Tensor], None]


def receptive_radius(generator: Generator) -> int:
    """LR pixels of context on each side that one output pixel depends on (paper Figure 4).

    The 9x9 head conv sees 4 pixels; each residual block's two 3x3 convs add 2; the trunk's
    closing 3x3 conv adds 1. The k-th x2 sub-pixel block's 3x3 conv runs at 2^k times the LR
    size, adding 1 / 2^k LR pixels, and the 9x9 tail at the output size adds 4 / scale; pixel
    shuffle maps positions to whole pixels, so that part is rounded up. 40 for the x4 model
    with 16 blocks (tests check this against autograd).
    """
    num_upsample_blocks = int(math.log2(generator.scale))
    upsample_reach = sum(0.5**k for k in range(num_upsample_blocks)) + 4 / generator.scale
    return 4 + 2 * len(generator.blocks) + 1 + math.ceil(upsample_reach)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for `precision` on `device` (see `srgan.machine.resolve_precision`:
    ValueError where it cannot run, or would only be emulated)."""
    return PRECISIONS[resolve_precision(precision, device)]


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split [0, length) into near-equal parts of at most `tile` (one part when tile <= 0).

    Returns (start, end, context_start, context_end) per part. Equal parts avoid a thin last
    tile that would cost a full overlap of context for a few pixels.
    """
    count = math.ceil(length / tile) if tile > 0 else 1
    bounds = [round(index * length / count) for index in range(count + 1)]
    return [
        (start, end, max(start - overlap, 0), min(end + overlap, length))
        for start, end in itertools.pairwise(bounds)
    ]


def context_pixels(height: int, width: int, tile: int, overlap: int) -> int:
    """LR pixels the generator runs on for a `height` x `width` image in tiles of `tile` (0:
    whole) with `overlap` pixels of context: the image plus the context recomputed per tile."""
    rows = sum(end - start for _, _, start, end in _spans(height, tile, overlap))
    cols = sum(end - start for _, _, start, end in _spans(width, tile, overlap))
    return rows * cols


def _run_generator(generator: Generator, lr_patch: torch.Tensor, dtype: torch.dtype):
    # fp32 means fp32 on CUDA too (not TF32), so GPU and CPU results agree to float rounding.
    with (
        exact_fp32_kernels(),
        torch.autocast(lr_patch.device.type, dtype=dtype, enabled=dtype != torch.float32),
    ):
        return signed_to_unit(generator(lr_patch).float())


def _run_finite(
    generator: Generator, lr_patch: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, bool]:
    """The SR patch, redone in fp32 where `dtype` gave non-finite output; and whether it was."""
    sr_patch = _run_generator(generator, lr_patch, dtype)
    if dtype == torch.float32 or torch.isfinite(sr_patch).all():
        return sr_patch, False
    return _run_generator(generator, lr_patch, torch.float32), True


@torch.no_grad()
def upscale_into(
    generator: Generator,
    lr_image: torch.Tensor,
    write: TileWriter,
    *,
    tile: int | None = None,
    tile_overlap: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> None:
    """Upscale (N, 3, H, W) LR in [0, 1] tile by tile, handing each SR tile to `write`.

    `tile` LR pixels per side (0: whole image at once; None: the whole image where it fits in
    memory, else the largest tiles that do, see `srgan.inference.tile_size`); `tile_overlap`
    LR pixels of context per side (default: `receptive_radius`, which makes tiling exact). In
    fp16/bf16 a tile whose output is not finite (fp16 overflow) is redone in fp32 with a
    warning, so reduced precision never turns an image black (NaN cast to uint8) where fp32
    would not.
    """
    dtype = autocast_dtype(precision, lr_image.device)
    scale = generator.scale
    overlap = receptive_radius(generator) if tile_overlap is None else tile_overlap
    height, width = lr_image.shape[-2:]
    if tile is None:
        available = available_memory(lr_image.device)
        batch = lr_image.shape[0]
        tile = choose_tile(height, width, generator.spec, overlap, available, batch)
    windows = list(itertools.product(_spans(height, tile, overlap), _spans(width, tile, overlap)))
    redone = 0
    for rows, cols in tqdm(
        windows, desc="tiles", unit="tile", leave=False, disable=not progress or len(windows) < 2
    ):
        top, bottom, context_top, context_bottom = rows
        left, right, context_left, context_right = cols
        patch = lr_image[..., context_top:context_bottom, context_left:context_right]
        sr_patch, fell_back = _run_finite(generator, patch, dtype)
        redone += fell_back
        inner_top, inner_left = (top - context_top) * scale, (left - context_left) * scale
        sr_patch = sr_patch[
            ...,
            inner_top : inner_top + (bottom - top) * scale,
            inner_left : inner_left + (right - left) * scale,
        ]
        write(slice(top * scale, bottom * scale), slice(left * scale, right * scale), sr_patch)
    if redone:
        warnings.warn(
            f"{redone} of {len(windows)} tiles gave non-finite {precision} output and were "
            "redone in fp32",
            stacklevel=2,
        )


def upscale_tensor(
    generator: Generator,
    lr_image: torch.Tensor,
    tile: int | None = 0,
    tile_overlap: int | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """(N, 3, H, W) LR in [0, 1] -> (N, 3, sH, sW) SR float32 in [0, 1] (see `upscale_into`)."""
    height, width = lr_image.shape[-2:]
    scale = generator.scale
    output = torch.empty(
        (*lr_image.shape[:-2], height * scale, width * scale), device=lr_image.device
    )

    def write(rows: slice, cols: slice, sr_tile: torch.Tensor) -> None:
        output[..., rows, cols] = sr_tile

    upscale_into(
        generator, lr_image, write, tile=tile, tile_overlap=tile_overlap, precision=precision
    )
    return output
