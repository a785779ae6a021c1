"""Measure training speed: input pipeline vs a naive loader, step rates per precision, upscaling.

    python scripts/benchmark.py --device cpu
    python scripts/benchmark.py --device cuda --json results/benchmark_h100.json

Prints one markdown table at the end, ready for the README.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from srgan.benchmark import markdown_table, run_benchmark, synthesize_images
from srgan.data import check_images, find_images

DIV2K_TRAIN = Path("data/DIV2K_train_HR")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="device to measure; the data pipeline's degradation runs there too",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="one warm-up and one short timed run per number"
    )
    parser.add_argument(
        "--skip-compile", action="store_true", help="leave out the torch.compile variant"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"folder of HR training images (default: {DIV2K_TRAIN} if present, else "
        f"DIV2K-sized images synthesized in a temporary folder)",
    )
    parser.add_argument(
        "--images", type=int, default=4, help="how many images of the folder to use"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice, one per core); on a CPU shared "
        "with other work, 1 avoids threads stalling while they wait for each other",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="training batch size")
    parser.add_argument("--crop-size", type=int, default=96, help="HR crop size in pixels")
    parser.add_argument(
        "--upscale-size",
        type=int,
        default=None,
        help="side of the LR image for the upscaling rate (default: 256 on CUDA, 128 on CPU)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda was asked for, but CUDA is not available here", file=sys.stderr)
        return 2
    for flag in ("images", "threads", "batch_size", "crop_size", "upscale_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            print(f"error: --{flag.replace('_', '-')} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if args.crop_size % 16:
        print(f"error: --crop-size must be a multiple of 16, got {args.crop_size}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # What setup_runtime turns on for training.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    upscale_size = args.upscale_size or (256 if device.type == "cuda" else 128)
    with tempfile.TemporaryDirectory(prefix="srgan_benchmark_") as temp:
        folder = args.data or (DIV2K_TRAIN if DIV2K_TRAIN.is_dir() else None)
        try:
            found = find_images(folder) if folder else []
            paths = check_images(found, args.crop_size)[0][: args.images]
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if folder and not paths:
            print(f"error: no images of at least {args.crop_size} px in {folder}", file=sys.stderr)
            return 2
        if not paths:
            print(f"synthesizing {args.images} DIV2K-sized PNGs (no DIV2K found)", flush=True)
            paths = synthesize_images(Path(temp), args.images)
        results = run_benchmark(
            device,
            paths,
            batch_size=args.batch_size,
            crop_size=args.crop_size,
            upscale_size=upscale_size,
            quick=args.quick,
            skip_compile=args.skip_compile,
            log=lambda line: print(line, flush=True),
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
