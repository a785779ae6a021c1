r"""Upscale images with a trained generator (the shipped model, an SRResNet or SRGAN checkpoint,
or a safetensors export).

python scripts/upscale.py photo.jpg
python scripts/upscale.py -i photos/ extra.png -o upscaled/ --ext jpg --outscale 2 \
    --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt
python scripts/upscale.py photo.jpg --checkpoint srgan.safetensors --strength 0.5

Without --checkpoint or --model, the shipped model srresnet_x4_291 is used. Writes
<stem>_x<outscale>.<ext> per input into --output (default: results/upscaled). An image runs
whole when it fits in half the available memory (GPU memory on CUDA), else in tiles with enough
overlap that the result matches an untiled run; --tile N fixes the tile size, so memory depends
on N only. Before the first image starts, each result over 16 megapixels has its size, memory
and estimated time printed; one over --max-pixels (default 256 million: a 16-megapixel photo
at x4) is refused unless --max-pixels allows it. Exit code 0: all done; 1: some inputs were
not readable images, or their results could not be written (each named in a warning; the
others are done); 2: error.
"""

import argparse
from pathlib import Path

from srgan.commands.common import run_main
from srgan.files import check_writable_folder
from srgan.inference.cost import (
    DEFAULT_MAX_PIXELS,
    REPORTED_PIXELS,
    describe_cost,
    header_cost,
    seconds_per_lr_pixel,
)
from srgan.inference.interpolation import check_strength, load_interpolated
from srgan.inference.output_paths import OUTPUT_FORMATS, plan_outputs, printable
from srgan.inference.shipped_models import (
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    shipped_model_path,
    weights_path,
)
from srgan.inference.tile_size import describe_tiling
from srgan.inference.tiles import receptive_radius
from srgan.inference.upscaling import DEFAULT_QUALITY, MAX_OUTSCALE, upscale_files
from srgan.machine import PRECISIONS, resolve_device, resolve_precision
from srgan.models.generator import Generator

DEFAULT_OUTPUT = Path("results/upscaled")
STRENGTH_HELP = (
    "network interpolation: every weight (1 - S) * SRResNet + S * SRGAN, S in [0, 1], of an "
    "SRGAN and the SRResNet it records it was trained from (default: 1, the checkpoint as it is)"
)
BASE_HELP = "the SRResNet for --strength (default: the one the SRGAN records, SHA-256 checked)"


def _add_input_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", type=Path, metavar="PATH", help="image files and/or folders"
    )
    parser.add_argument(
        "-i",
        "--input",
        nargs="+",
        default=[],
        type=Path,
        metavar="PATH",
        help="image files and/or folders (their images, not subfolders), as the positional PATHs",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder for the results (default: %(default)s)",
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--model",
        choices=tuple(SHIPPED_MODELS),
        default=None,
        help=f"shipped weights by name (default, without --checkpoint: {DEFAULT_MODEL})",
    )
    weights.add_argument(
        "--checkpoint",
        type=Path,
        help="a .pt checkpoint or .safetensors export (or a shipped model's name, where no such "
        "file exists)",
    )


def _add_format_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ext",
        choices=tuple(OUTPUT_FORMATS),
        default="png",
        help="output format (default: %(default)s); 16-bit gray stays 16-bit in PNG only, and "
        "JPEG composites transparency on white",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=DEFAULT_QUALITY,
        help="JPEG and WebP quality, 1-100 (default: %(default)s)",
    )
    parser.add_argument(
        "--outscale",
        type=float,
        default=None,
        help="final scale, e.g. 2 or 3.5 (default: the model's): the model's output is resized "
        "with Lanczos to this many times the input size",
    )
    parser.add_argument(
        "--suffix",
        default=None,
        help="appended to each input's stem for the output name, without '/' (default: "
        "_x<outscale>)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )
    parser.add_argument("--strength", type=float, default=1.0, metavar="S", help=STRENGTH_HELP)
    parser.add_argument("--base", metavar="PATH_OR_NAME", help=BASE_HELP)


def pixel_count(text: str) -> int:
    """A --max-pixels value: a whole number, also written as 1e9."""
    try:
        return int(float(text))
    except (ValueError, OverflowError):  # "nan", "inf", "many"
        raise argparse.ArgumentTypeError(f"not a number of pixels: {text!r}") from None


def _add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=pixel_count,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse, before any work, an image whose result (the model's output or the "
        "--outscale one, whichever is larger) has more than N pixels; 0: no limit (default: "
        f"{DEFAULT_MAX_PIXELS:,}, a 16-megapixel photo at x4: 768 MB as 8-bit RGB)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="tile side in input pixels, which bounds memory; 0 runs each image whole "
        "(default: whole where an image fits in half the available memory, else the largest "
        "tiles that fit)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        help="input pixels of context around each tile (default: the generator's receptive "
        "field, 40 for 16 blocks, which makes tiling exact; less is faster but shows seams)",
    )
    parser.add_argument(
        "--precision",
        choices=(*PRECISIONS, "auto"),
        default="fp32",
        help="compute precision (default: %(default)s); fp16 needs CUDA; bf16 needs hardware "
        "that runs it natively (a CPU with AVX512-BF16 or AMX, an Ampere or newer GPU); auto: "
        "bf16 where native, else fp32; tiles with non-finite output are redone in fp32",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to run (default: %(default)s, which takes CUDA when available)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_input_output_arguments(parser)
    _add_format_arguments(parser)
    _add_compute_arguments(parser)
    args = parser.parse_args(argv)
    args.inputs += args.input
    if not args.inputs:
        parser.error("no input: give image files or folders (e.g. photo.jpg, or -i photos/)")
    return args


def _weights(args: argparse.Namespace) -> tuple[Path, str]:
    """The weights file to load and how to name it in the report."""
    if args.checkpoint is not None:
        path = weights_path(args.checkpoint)
        if path == args.checkpoint:
            return path, printable(path)
        return path, f"the shipped model {args.checkpoint} ({printable(path)}, --checkpoint)"
    name = args.model or DEFAULT_MODEL
    path = shipped_model_path(name)
    origin = "--model" if args.model else "the default; --checkpoint or --model picks another"
    return path, f"the shipped model {name} ({printable(path)}, {origin})"


def _check_options(args: argparse.Namespace) -> str:
    """Raise ValueError for an invalid option value; returns the device to run on."""
    if min(args.tile or 0, args.tile_overlap or 0) < 0:
        raise ValueError("--tile and --tile-overlap must be >= 0")
    if args.max_pixels < 0:
        raise ValueError(f"--max-pixels must be >= 0 (0: no limit), not {args.max_pixels}")
    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be between 1 and 100, not {args.quality}")
    if args.outscale is not None and not 0 < args.outscale <= MAX_OUTSCALE:  # NaN too
        raise ValueError(
            f"--outscale must be above 0 and at most {MAX_OUTSCALE}, not {args.outscale}"
        )
    check_strength(args.strength, "--strength")
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise ValueError(f"--device {error}") from None
    try:
        args.precision = resolve_precision(args.precision, device)
    except ValueError as error:  # before loading anything
        raise ValueError(f"--precision {error}") from None
    return device.type


def _check_costs(
    args: argparse.Namespace,
    generator: Generator,
    pairs: list[tuple[Path, Path]],
    outscale: float,
    overlap: int,
) -> list[str]:
    """'<file>: <cost>' per large result, from the headers; ValueError naming any over the limit."""
    limit = args.max_pixels or float("inf")
    to_run = [path for path, output in pairs if args.overwrite or not output.exists()]
    costs = [header_cost(path, generator, outscale, args.tile, overlap) for path in to_run]
    large = [
        (path, cost)
        for path, cost in zip(to_run, costs, strict=True)
        if cost is not None and cost.largest_pixels > min(limit, REPORTED_PIXELS)
    ]
    if not large:
        return []
    speed = seconds_per_lr_pixel(generator, args.precision)
    refused = [(path, cost) for path, cost in large if cost.largest_pixels > limit]
    if refused:
        path, cost = refused[0]
        others = f" (and {len(refused) - 1} more image(s))" if len(refused) > 1 else ""
        raise ValueError(
            f"{printable(path)}: {describe_cost(cost, speed)}{others}: more than --max-pixels "
            f"{args.max_pixels:,}; pass --max-pixels 0 (no limit) or a larger N to upscale it"
        )
    return [f"{printable(path)}: {describe_cost(cost, speed)}" for path, cost in large]


def upscale_files_main(args: argparse.Namespace) -> int:
    device = _check_options(args)
    weights_file, weights_name = _weights(args)
    generator, base_file = load_interpolated(weights_file, args.strength, args.base, device)
    if base_file is not None:
        strength = f"strength {args.strength:g} between the SRResNet {printable(base_file)} (0)"
        weights_name = f"{strength} and {weights_name} (1)"
    scale = generator.scale
    outscale = scale if args.outscale is None else args.outscale
    suffix = f"_x{outscale:g}" if args.suffix is None else args.suffix
    pairs = plan_outputs(args.inputs, args.output, suffix, args.ext)
    check_writable_folder(args.output, "--output")  # before the first image, not after it
    overlap = receptive_radius(generator) if args.tile_overlap is None else args.tile_overlap
    costs = _check_costs(args, generator, pairs, outscale, overlap)
    resize = f", resized to x{outscale:g} (Lanczos)" if outscale != scale else ""
    tiling = describe_tiling(args.tile, overlap)
    print(
        f"x{scale} generator ({len(generator.blocks)} blocks) from {weights_name}{resize}: "
        f"{len(pairs)} image(s) on {device}, {args.precision}, {tiling}",
        flush=True,
    )
    for line in costs:
        print(line, flush=True)
    summary = upscale_files(
        generator,
        pairs,
        overwrite=args.overwrite,
        outscale=outscale,
        quality=args.quality,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        precision=args.precision,
        progress=not args.quiet,
    )
    print(summary.describe(args.output))
    return 1 if summary.failed or summary.unwritten else 0


def main(argv: list[str] | None = None) -> None:
    run_main(upscale_files_main, parse_args(argv))


if __name__ == "__main__":
    main()
