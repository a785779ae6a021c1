"""Cut HR images into overlapping square sub-images, written as PNGs (BasicSR's DIV2K layout).

    python scripts/prepare_subimages.py data/DIV2K_train_HR data/DIV2K_train_HR_sub

Each image gives tiles of --size px every --step px (480 and 240: a DIV2K image gives about
40), plus one more tile flush with the right/bottom edge when more than --min-remainder px
would otherwise be left out. Tiles are named <image>_s001.png, <image>_s002.png, ... in
row-major order. Training reads the output folder like any other (data.train_dir); the tiles
are for disk layouts and tools that expect BasicSR's sub-image folders.
"""

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.data.images import find_images, read_image


def tile_starts(length: int, size: int, step: int, min_remainder: int) -> list[int]:
    """Start offsets along one axis; an axis shorter than `size` gives one (shorter) tile."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if length - (starts[-1] + size) > min_remainder:
        starts.append(length - size)
    return starts


def cut(image: np.ndarray, size: int, step: int, min_remainder: int) -> list[np.ndarray]:
    height, width = image.shape[:2]
    return [
        image[top : top + size, left : left + size]
        for top in tile_starts(height, size, step, min_remainder)
        for left in tile_starts(width, size, step, min_remainder)
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("input", type=Path, help="folder of HR images")
    parser.add_argument("output", type=Path, help="folder for the sub-images (created)")
    parser.add_argument("--size", type=int, default=480, help="sub-image side in pixels")
    parser.add_argument("--step", type=int, default=240, help="pixels between sub-image starts")
    parser.add_argument(
        "--min-remainder",
        type=int,
        default=0,
        help="add an edge-flush tile only when more than this many pixels would be left out",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="images processed in parallel"
    )
    return parser.parse_args()


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line, or None."""
    minimums = {"size": 1, "step": 1, "min_remainder": 0, "workers": 1}
    for flag, minimum in minimums.items():
        value = getattr(args, flag)
        if value < minimum:
            return f"--{flag.replace('_', '-')} must be >= {minimum}, got {value}"
    if args.output.resolve() == args.input.resolve():
        return "the output folder must differ from the input folder"
    return None


def write_subimages(path: Path, args: argparse.Namespace) -> int:
    """Cuts one image into `args.output`; how many sub-images it wrote (0 for a damaged file)."""
    try:
        image = read_image(path)
    except Exception as error:  # PIL raises many types for a damaged file
        print(f"warning: skipping {path.name}: {error}", file=sys.stderr)
        return 0
    tiles = cut(image, args.size, args.step, args.min_remainder)
    for index, tile in enumerate(tiles, start=1):
        Image.fromarray(tile).save(args.output / f"{path.stem}_s{index:03d}.png")
    return len(tiles)


def main() -> int:
    args = parse_args()
    if (problem := argument_problem(args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        paths = find_images(args.input)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not paths:
        print(f"error: no images in {args.input}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    # Decoding and encoding PNGs release the GIL, so threads use several cores.
    with ThreadPoolExecutor(args.workers) as pool:
        counts = list(pool.map(partial(write_subimages, args=args), paths))
    print(f"wrote {sum(counts)} sub-images of {len(paths)} images to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
