r"""Upscale images with a trained generator (SRResNet or SRGAN checkpoint, or safetensors export).

python scripts/upscale.py --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt \
    --input photos/ extra.jpg --output upscaled/

Writes <stem>_x<scale>.png per input into --output. Large images are processed in tiles with
enough overlap that the result matches an untiled run, so memory depends on --tile only.
Exit code 0: all done; 1: some inputs were not readable images (named in warnings); 2: error.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from srgan.cli import run_main
from srgan.inference import (
    DEFAULT_TILE,
    PRECISIONS,
    autocast_dtype,
    load_generator,
    receptive_radius,
)
from srgan.upscaling import plan_outputs, upscale_files


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a .pt checkpoint or .safetensors export"
    )
    parser.add_argument(
        "--input",
        required=True,
        nargs="+",
        type=Path,
        metavar="PATH",
        help="image files and/or folders (their images, not subfolders)",
    )
    parser.add_argument("--output", required=True, type=Path, help="folder for the results")
    parser.add_argument(
        "--suffix",
        default=None,
        help="appended to each input's stem for the output name (default: _x<scale>)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )
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
    return parser.parse_args()


def main(args: argparse.Namespace) -> int:
    if args.tile < 0 or (args.tile_overlap is not None and args.tile_overlap < 0):
        raise ValueError("--tile and --tile-overlap must be >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast_dtype(args.precision, torch.device(device))  # an unsupported choice fails now
    generator = load_generator(args.checkpoint, device)
    scale = generator.scale
    suffix = f"_x{scale}" if args.suffix is None else args.suffix
    pairs = plan_outputs(args.input, args.output, suffix)
    overlap = receptive_radius(generator) if args.tile_overlap is None else args.tile_overlap
    tiling = f"tiles of {args.tile} px, overlap {overlap} px" if args.tile else "no tiling"
    print(
        f"x{scale} generator ({len(generator.blocks)} blocks) from {args.checkpoint}: "
        f"{len(pairs)} image(s) on {device}, {args.precision}, {tiling}",
        flush=True,
    )
    summary = upscale_files(
        generator,
        pairs,
        overwrite=args.overwrite,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        precision=args.precision,
        progress=not args.quiet,
    )
    notes = [f"{len(summary.skipped)} skipped (output exists)"] if summary.skipped else []
    notes += [f"{len(summary.failed)} failed (unreadable)"] if summary.failed else []
    rate = summary.output_pixels / 1e6 / max(summary.seconds, 1e-9)
    print(
        f"wrote {len(summary.written)} image(s) to {args.output} in {summary.seconds:.1f} s "
        f"({rate:.2f} output MP/s)" + "".join(f"; {note}" for note in notes)
    )
    return 1 if summary.failed else 0


if __name__ == "__main__":
    run_main(main, parse_args())
