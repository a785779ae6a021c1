"""The tile size of an upscale, chosen from the memory the image needs and the memory available.

Tiling bounds memory but costs time: every tile recomputes `receptive_radius` pixels of context
on each side (40 for the x4 paper model), and small tiles run the convolutions less
efficiently. On a 2-core CPU, a 451x300 photo took 105 s in tiles of 192 px and 68 s whole.
So an image runs whole when its peak fits in half the available memory (the other half is left
to the rest of the process and the machine), and otherwise in the largest tiles that fit.
"""

import math
import os
from pathlib import Path

import torch

from srgan.models.generator import GeneratorSpec

# Tile side used when the available memory is unknown: one fp32 tile of the x4 paper model with
# its 40 px of context peaks at about 1 GB.
FALLBACK_TILE = 192
SMALLEST_TILE = 64  # below this, recomputed context costs more than the tile's own pixels
MEMORY_SHARE = 0.5  # of the available memory, for the peak of one tile (or the whole image)
# The peak of the forward pass is at the output resolution: the last sub-pixel block holds its
# convolution's output, the pixel-shuffled map and its PReLU output at once, three maps of
# num_channels at scale^2 times the LR size. Measured peaks for the x4 paper model on the CPU:
# 9.9 KB per LR pixel in fp32 and 11-12 KB in bf16 autocast (it keeps fp32 copies) against
# the 12.3 KB this estimate gives.
FULL_RESOLUTION_MAPS = 3
BYTES_PER_VALUE = 4  # fp32; reduced precisions do not peak lower (see above)
MEMINFO = Path("/proc/meminfo")
CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")  # a container's limit (cgroup v2)
CGROUP_USAGE = Path("/sys/fs/cgroup/memory.current")


def bytes_per_lr_pixel(spec: GeneratorSpec) -> int:
    """Estimated peak memory of a forward pass per LR input pixel."""
    return FULL_RESOLUTION_MAPS * spec.num_channels * spec.scale**2 * BYTES_PER_VALUE


def choose_tile(
    height: int,
    width: int,
    spec: GeneratorSpec,
    overlap: int,
    available: int | None,
    batch: int = 1,
) -> int:
    """Tile side in LR pixels for `batch` images of `height` x `width`: 0 (whole images at once)
    when their peak fits in MEMORY_SHARE of `available` bytes, else the largest tile whose peak,
    with `overlap` pixels of context on each side, fits (at least SMALLEST_TILE); FALLBACK_TILE
    when `available` is None (unknown)."""
    if available is None:
        return FALLBACK_TILE
    budget = available * MEMORY_SHARE
    per_pixel = bytes_per_lr_pixel(spec) * batch
    if height * width * per_pixel <= budget:
        return 0
    side_with_context = math.isqrt(int(budget // per_pixel))
    return max(side_with_context - 2 * overlap, SMALLEST_TILE)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for an upscale on `device`; None where it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # Memory torch's allocator holds but no tensor uses is free to this process too.
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return available_host_memory()


def available_host_memory() -> int | None:
    """MemAvailable of Linux (free memory plus the caches it can drop), lowered to what the
    process's cgroup (a container's memory limit) still allows; the free pages elsewhere."""
    candidates = []
    if MEMINFO.is_file():
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    try:
        limit = CGROUP_LIMIT.read_text().strip()
        if limit != "max":
            candidates.append(int(limit) - int(CGROUP_USAGE.read_text()))
    except (OSError, ValueError):
        pass  # no cgroup v2 memory controller here: no container limit to respect
    if not candidates and "SC_AVPHYS_PAGES" in os.sysconf_names:
        candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return max(min(candidates), 0) if candidates else None


def describe_tiling(tile: int | None, overlap: int) -> str:
    """How a --tile value (None: chosen per image; 0: whole images) tiles, in a few words."""
    if tile is None:
        return f"whole images where they fit in memory, else tiles with {overlap} px overlap"
    if tile:
        return f"tiles of {tile} px, overlap {overlap} px"
    return "no tiling"
