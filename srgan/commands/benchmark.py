"""Measure training speed here: hardware ceilings, data pipeline, training steps per variant.

    python scripts/benchmark.py --device cpu
    python scripts/benchmark.py --device cuda --json results/benchmark_cuda.json

Times only the precisions the hardware runs natively, caps every measurement by time (the
default CPU run takes a few minutes), and prints one markdown table at the end, ready for the
README. srgan/benchmark/measure.py and the modules it names describe what each number is.
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch

from srgan.benchmark.measure import (
    DEFAULT_SECONDS,
    markdown_table,
    run_benchmark,
    synthesize_images,
)
from srgan.benchmark.training_speed import Workload
from srgan.commands.common import HelpFormatter, run_main
from srgan.data.crops import check_images
from srgan.data.images import find_images
from srgan.machine import resolve_device
from srgan.run.runtime import use_fast_cuda_kernels

DIV2K_TRAIN = Path("data/DIV2K_train_HR")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="device to measure; the data pipeline's degradation runs there too",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="time cap of one pretrain-step measurement; a GAN step gets twice, the data "
        "pipeline half, each ceiling a quarter; 0 times a single call of each (default: "
        + ", ".join(f"{seconds:g} on {device}" for device, seconds in DEFAULT_SECONDS.items())
        + ")",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the torch.compile variant (default: on CUDA only; on a CPU it "
        "compiles for minutes)",
    )
    _add_workload_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=Path("checkpoints"),
        help="the checkpoint writes are timed in a temporary folder here: the disk runs "
        "write their checkpoints to",
    )
    return parser.parse_args()


def _add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """What is measured: the images, the threads, the batch."""
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


def check_arguments(args: argparse.Namespace) -> None:
    """Raises ValueError saying, in one line, what is wrong with the arguments."""
    try:
        resolve_device(args.device)
    except ValueError as error:
        raise ValueError(f"--device {error}") from None
    for flag in ("images", "threads", "batch_size", "crop_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.seconds is not None and args.seconds < 0:
        raise ValueError(f"--seconds must be >= 0, got {args.seconds}")
    if args.crop_size % 16:
        raise ValueError(f"--crop-size must be a multiple of 16, got {args.crop_size}")
    if not args.checkpoint_dir.is_dir():
        raise ValueError(f"--checkpoint-dir {args.checkpoint_dir}: no such folder")


def image_paths(args: argparse.Namespace, temporary_folder: Path) -> list[Path]:
    """The images to load: from --data, else DIV2K, else synthesized. Raises FileNotFoundError."""
    folder = args.data or (DIV2K_TRAIN if DIV2K_TRAIN.is_dir() else None)
    if folder is None:
        print(f"synthesizing {args.images} DIV2K-sized PNGs (no DIV2K found)", flush=True)
        return synthesize_images(temporary_folder, args.images)
    paths = check_images(find_images(folder), args.crop_size)[0][: args.images]
    if not paths:
        raise FileNotFoundError(f"no images of at least {args.crop_size} px in {folder}")
    return paths


def benchmark(args: argparse.Namespace) -> int:
    check_arguments(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        use_fast_cuda_kernels()  # as training runs (runtime.deterministic false)
    with tempfile.TemporaryDirectory(prefix="srgan_benchmark_") as temporary_folder:
        results = run_benchmark(
            device,
            image_paths(args, Path(temporary_folder)),
            workload=Workload(batch_size=args.batch_size, crop_size=args.crop_size),
            seconds=args.seconds,
            compile=args.compile,
            checkpoint_parent=args.checkpoint_dir,
            log=lambda line: print(line, flush=True),
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + markdown_table(results))
    return 0


def main() -> None:
    run_main(benchmark, parse_args())


if __name__ == "__main__":
    main()
