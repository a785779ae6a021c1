r"""Upscale images with a trained generator (the shipped model, an SRResNet or SRGAN checkpoint,
or a safetensors export).

python scripts/upscale.py photo.jpg
python scripts/upscale.py -i photos/ extra.png -o upscaled/ --ext jpg --outscale 2 \
    --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt

Without --checkpoint or --model, the shipped model srresnet_x4_291 is used. Writes
<stem>_x<outscale>.<ext> per input into --output (default: results/upscaled). Large images are
processed in tiles with enough overlap that the result matches an untiled run, so memory depends
on --tile only. Exit code 0: all done; 1: some inputs were not readable images (named in
warnings); 2: error.
"""

import argparse
from pathlib import Path

import torch

from srgan.commands.common import run_main
from srgan.inference import (
    DEFAULT_TILE,
    PRECISIONS,
    autocast_dtype,
    load_generator,
    receptive_radius,
)
from srgan.tools.upscaling import (
    DEFAULT_QUALITY,
    OUTPUT_FORMATS,
    SHIPPED_MODELS,
    plan_outputs,
    printable,
    shipped_model_path,
    upscale_files,
)

DEFAULT_OUTPUT = Path("results/upscaled")


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
        choices=SHIPPED_MODELS,
        default=None,
        help=f"shipped weights by name (default, without --checkpoint: {SHIPPED_MODELS[0]})",
    )
    weights.add_argument("--checkpoint", type=Path, help="a .pt checkpoint or .safetensors export")
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
        help="appended to each input's stem for the output name (default: _x<outscale>)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )


def _add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE,
        help="tile side in input pixels (default: %(default)s): bounds memory; larger is "
        "faster on a big GPU; 0 runs each image whole",
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
        choices=tuple(PRECISIONS),
        default="fp32",
        help="compute precision (default: %(default)s); fp16 needs CUDA; bf16 works on CUDA "
        "and CPU (fast on CPUs with native bf16); tiles with non-finite output are redone in "
        "fp32",
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
    _add_compute_arguments(parser)
    args = parser.parse_args(argv)
    args.inputs += args.input
    if not args.inputs:
        parser.error("no input: give image files or folders (e.g. photo.jpg, or -i photos/)")
    return args


def _weights(args: argparse.Namespace) -> tuple[Path, str]:
    """The weights file to load and how to name it in the report."""
    if args.checkpoint is not None:
        return args.checkpoint, printable(args.checkpoint)
    name = args.model or SHIPPED_MODELS[0]
    path = shipped_model_path(name)
    origin = "--model" if args.model else "the default; --checkpoint or --model picks another"
    return path, f"the shipped model {name} ({printable(path)}, {origin})"


def _check_options(args: argparse.Namespace) -> str:
    """Raise ValueError for an invalid option value; returns the device to run on."""
    if args.tile < 0 or (args.tile_overlap is not None and args.tile_overlap < 0):
        raise ValueError("--tile and --tile-overlap must be >= 0")
    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be between 1 and 100, not {args.quality}")
    if args.outscale is not None and not args.outscale > 0:
        raise ValueError(f"--outscale must be positive, not {args.outscale}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast_dtype(args.precision, torch.device(device))  # an unsupported choice fails now
    return device


def upscale_files_main(args: argparse.Namespace) -> int:
    device = _check_options(args)
    weights_path, weights_name = _weights(args)
    generator = load_generator(weights_path, device)
    scale = generator.scale
    outscale = scale if args.outscale is None else args.outscale
    suffix = f"_x{outscale:g}" if args.suffix is None else args.suffix
    pairs = plan_outputs(args.inputs, args.output, suffix, args.ext)
    overlap = receptive_radius(generator) if args.tile_overlap is None else args.tile_overlap
    tiling = f"tiles of {args.tile} px, overlap {overlap} px" if args.tile else "no tiling"
    resize = f", resized to x{outscale:g} (Lanczos)" if outscale != scale else ""
    print(
        f"x{scale} generator ({len(generator.blocks)} blocks) from {weights_name}{resize}: "
        f"{len(pairs)} image(s) on {device}, {args.precision}, {tiling}",
        flush=True,
    )
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
    notes = [f"{len(summary.skipped)} skipped (output exists)"] if summary.skipped else []
    notes += [f"{len(summary.failed)} failed (unreadable)"] if summary.failed else []
    rate = summary.output_pixels / 1e6 / max(summary.seconds, 1e-9)
    print(
        f"wrote {len(summary.written)} image(s) to {printable(args.output)} in "
        f"{summary.seconds:.1f} s ({rate:.2f} output MP/s)" + "".join(f"; {n}" for n in notes)
    )
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> None:
    run_main(upscale_files_main, parse_args(argv))


if __name__ == "__main__":
    main()
