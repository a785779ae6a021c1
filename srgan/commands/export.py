r"""Export a trained generator to ONNX, a torch.export program or safetensors, and check it
against PyTorch.

python scripts/export.py --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt \
    --format onnx --out srgan_x4.onnx

ONNX and torch.export (.pt2) models map RGB in [0, 1] (N, 3, H, W) to RGB in [0, 1] at scale
times the size, for any N, H and W (ONNX opset 18 from torch's torch.export-based exporter;
needs `pip install onnx onnxscript`, and is checked with onnxruntime when that is installed).
A .pt2 file loads with `torch.export.load(path).module()`; `--format torchscript`, deprecated
with TorchScript itself, writes one too. safetensors holds weights plus the model's
hyper-parameters and loads with `srgan.load_generator` or `srgan-upscale --checkpoint FILE`.
An SRGAN's export records the SRResNet it was trained from (SHA-256, and the shipped model's
name or the file name), so `srgan-upscale --strength S` finds it again.
"""

import argparse
import os
import sys
from pathlib import Path

from srgan.checkpoint import generator_from_checkpoint, non_finite_weight
from srgan.commands.common import run_main
from srgan.inference.export import (
    CHECK_HEIGHT,
    CHECK_WIDTH,
    ONNX_OPSET,
    check_onnx,
    check_program,
    check_safetensors,
    export_onnx,
    export_program,
    export_safetensors,
    onnx_declared_shapes,
)
from srgan.inference.pretrained_source import pretrained_record
from srgan.inference.weights import read_weights
from srgan.models.generator import Generator

EXPORTERS = {
    "onnx": (export_onnx, check_onnx),
    "pt2": (export_program, check_program),
    "safetensors": (export_safetensors, check_safetensors),
}
# Formats torch no longer recommends, and what they now write.
REPLACED_FORMATS = {"torchscript": "pt2"}
TOLERANCE = 1e-4  # max abs difference from PyTorch (output in [0, 1]) accepted by the check


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a .pt checkpoint or .safetensors export"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=(*EXPORTERS, *REPLACED_FORMATS),
        help="export format (torchscript: deprecated in torch, writes pt2 instead)",
    )
    parser.add_argument("--out", required=True, type=Path, help="file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser.parse_args()


def _format_and_path(args: argparse.Namespace) -> tuple[str, Path]:
    """The format to write and its file: a replaced format becomes its successor, with a note,
    and a .pt2 program gets the .pt2 suffix that torch.export.load insists on."""
    export_format, out = REPLACED_FORMATS.get(args.format, args.format), args.out
    if export_format == "pt2" and out.suffix != ".pt2":
        if args.format == "pt2":
            raise ValueError(f"--out {out}: a pt2 program's file name must end in .pt2")
        out = out.with_suffix(".pt2")
    if export_format != args.format:
        print(
            f"note: --format {args.format} is deprecated in torch; writing a torch.export "
            f"program instead ({out}; load it with torch.export.load(path).module())"
        )
    return export_format, out


def _export_and_check(export_format: str, generator: Generator, path: Path, **metadata) -> int:
    """Write the export to `path`, with the `metadata` its exporter records (degradation,
    pretrained), and check it; returns the exit code (0: it may be kept)."""
    export, check = EXPORTERS[export_format]
    try:
        export(generator, path, **metadata)
    except ModuleNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if export_format == "onnx":
        shapes = onnx_declared_shapes(path).items()
        described = [f"{name} [{', '.join(map(str, shape))}]" for name, shape in shapes]
        print("declared shapes: " + " -> ".join(described))
    try:
        difference = check(generator, path)
    except ModuleNotFoundError as error:
        print(f"not checked: {error}")
        return 0
    verdict = "ok" if difference <= TOLERANCE else f"FAILED (tolerance {TOLERANCE:g})"
    print(
        f"check against PyTorch on a random {CHECK_WIDTH}x{CHECK_HEIGHT} input: "
        f"max abs difference {difference:.2e}, {verdict}"
    )
    return 0 if difference <= TOLERANCE else 1


def describe_record(pretrained: dict[str, str]) -> str:
    """e.g. "srresnet_x4_291 (SHA-256 3f2a9c01d4e5...)"."""
    name = pretrained.get("pretrained_name", "a file of unrecorded name")
    sha256 = pretrained.get("pretrained_sha256")
    return f"{name} (SHA-256 {sha256[:12]}...)" if sha256 else f"{name} (no SHA-256 recorded)"


def export_main(args: argparse.Namespace) -> int:
    export_format, out = _format_and_path(args)
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    if out.resolve() == args.checkpoint.resolve():
        raise ValueError("--out must differ from --checkpoint")
    weights = read_weights(args.checkpoint)
    generator = generator_from_checkpoint(weights, args.checkpoint)
    broken = non_finite_weight({"generator": generator})
    if broken is not None:  # its export could only fail its check
        raise ValueError(f"{args.checkpoint}: {broken} is not finite (NaN or inf); not exported")
    degradation = weights.get("degradation", {}).get("kind")  # recorded in the export
    pretrained = pretrained_record(weights)  # an SRGAN's SRResNet, for --strength
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name (same suffix: the loaders go by it) and renamed only once
    # checked, so a failed export leaves no file and an earlier one intact.
    temporary = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        code = _export_and_check(
            export_format, generator, temporary, degradation=degradation, pretrained=pretrained
        )
        if code == 0:
            os.replace(temporary, out)
            opset = f" (opset {ONNX_OPSET})" if export_format == "onnx" else ""
            print(f"wrote {export_format}{opset} x{generator.scale} model to {out}")
            if pretrained:
                print(f"recorded the SRResNet it was trained from: {describe_record(pretrained)}")
        elif code == 1:
            print(f"{out} not written", file=sys.stderr)
    finally:
        temporary.unlink(missing_ok=True)
    return code


def main() -> None:
    run_main(export_main, parse_args())


if __name__ == "__main__":
    main()
