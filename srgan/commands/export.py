r"""Export a trained generator to ONNX, TorchScript or safetensors, and check it against PyTorch.

python scripts/export.py --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt \
    --format onnx --out srgan_x4.onnx

ONNX and TorchScript models map RGB in [0, 1] (N, 3, H, W) to RGB in [0, 1] at scale times the
size, for any H and W (ONNX opset 17; needs `pip install onnx`, and is checked with onnxruntime
when that is installed). safetensors holds weights plus the model's hyper-parameters and loads
with `srgan.load_generator` or `scripts/upscale.py --checkpoint FILE.safetensors`.
"""

import argparse
import sys
from pathlib import Path

from srgan.checkpoint import generator_from_checkpoint
from srgan.commands.common import run_main
from srgan.inference import read_weights
from srgan.tools.export import (
    CHECK_HEIGHT,
    CHECK_WIDTH,
    ONNX_OPSET,
    check_onnx,
    check_safetensors,
    check_torchscript,
    export_onnx,
    export_safetensors,
    export_torchscript,
)

EXPORTERS = {
    "onnx": (export_onnx, check_onnx),
    "torchscript": (export_torchscript, check_torchscript),
    "safetensors": (export_safetensors, check_safetensors),
}
TOLERANCE = 1e-4  # max abs difference from PyTorch (output in [0, 1]) accepted by the check


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a .pt checkpoint or .safetensors export"
    )
    parser.add_argument("--format", required=True, choices=tuple(EXPORTERS), help="export format")
    parser.add_argument("--out", required=True, type=Path, help="file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser.parse_args()


def export_main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.overwrite:
        raise ValueError(f"{args.out} exists; pass --overwrite to replace it")
    if args.out.resolve() == args.checkpoint.resolve():
        raise ValueError("--out must differ from --checkpoint")
    weights = read_weights(args.checkpoint)
    generator = generator_from_checkpoint(weights, args.checkpoint)
    degradation = weights.get("degradation", {}).get("kind")  # recorded in the export
    export, check = EXPORTERS[args.format]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        export(generator, args.out, degradation=degradation)
    except ModuleNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    opset = f" (opset {ONNX_OPSET})" if args.format == "onnx" else ""
    print(f"wrote {args.format}{opset} x{generator.scale} model to {args.out}")
    try:
        difference = check(generator, args.out)
    except ModuleNotFoundError as error:
        print(f"not checked: {error}")
        return 0
    verdict = "ok" if difference <= TOLERANCE else f"FAILED (tolerance {TOLERANCE:g})"
    print(
        f"check against PyTorch on a random {CHECK_WIDTH}x{CHECK_HEIGHT} input: "
        f"max abs difference {difference:.2e}, {verdict}"
    )
    return 0 if difference <= TOLERANCE else 1


def main() -> None:
    run_main(export_main, parse_args())


if __name__ == "__main__":
    main()
