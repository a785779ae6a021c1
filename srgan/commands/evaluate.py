"""Evaluate SR methods on folders of HR images with the standard SR protocol.

LR = MATLAB bicubic x(1/scale) of the modcropped HR (or --lr-dir files); PSNR/SSIM on the
Y channel of YCbCr with `scale` pixels shaved from each border (and on RGB, beside it), NIQE
and the grid score with the same crop, and the HR images' own NIQE as the row "HR".

    python scripts/evaluate.py --method bicubic --data data/benchmarks/Set5/HR \
        --out results/bicubic
    python scripts/evaluate.py --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt \
        --data data/sample/valid --out results/quickstart
"""

import argparse
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.checkpoint import CheckpointError, generator_from_checkpoint
from srgan.commands.common import HelpFormatter, run_main
from srgan.data.degradation import MAX_GAUSSIAN_SIGMA, MIN_GAUSSIAN_SIGMA
from srgan.datasets.catalog import missing_data_hint
from srgan.eval.protocol import (
    REFERENCE,
    bicubic_upscale,
    dataset_name,
    evaluate_folder,
    list_images,
    mean_metrics,
    model_upscaler,
    nearest_upscale,
    reference_row,
)
from srgan.eval.provenance import evaluation_provenance, protocol_settings
from srgan.eval.report import write_comparisons, write_results
from srgan.files import check_writable_folder
from srgan.inference.tiles import read_weights
from srgan.train.run_folder import archive_folder, move_aside

BASELINES = {"bicubic": bicubic_upscale, "nearest": nearest_upscale}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        default=[],
        type=Path,
        help="generator checkpoint(s) of ours (SRResNet pretraining or SRGAN)",
    )
    parser.add_argument(
        "--method",
        nargs="+",
        default=[],
        choices=sorted(BASELINES),
        help="baseline method(s); bicubic is always added when a checkpoint is evaluated",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        type=Path,
        help="folders of HR images; the dataset name is the folder's (its parent's if 'HR')",
    )
    parser.add_argument(
        "--lr-dir",
        nargs="+",
        default=None,
        type=Path,
        help="folders of LR images shipped with the datasets, one per --data, matched by order",
    )
    parser.add_argument(
        "--scale", type=int, default=None, help="upscaling factor (default: the checkpoint's, or 4)"
    )
    parser.add_argument(
        "--degradation",
        choices=("bicubic", "gaussian"),
        default="bicubic",
        help="how LR images are made from HR (bicubic is the benchmark standard)",
    )
    parser.add_argument(
        "--gaussian-sigma", type=float, default=1.5, help="for --degradation gaussian"
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results an --out already holds: they move to <out>/old-<time>/ "
        "first, so old and new are never mixed and nothing is deleted",
    )
    parser.add_argument("--save-images", action="store_true", help="also write every SR image")
    parser.add_argument(
        "--num-comparisons",
        type=int,
        default=None,
        help="comparison pictures for the first N images of each dataset (default: all)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="device for model inference (auto: CUDA when available)",
    )
    parser.add_argument(
        "--tile", type=int, default=256, help="LR tile size bounding memory (0: whole image)"
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser.parse_args()


def load_methods(args: argparse.Namespace, device: torch.device) -> tuple[dict, int]:
    """{method name: upscale function} and the scale they work at."""
    checkpoints = {}
    for path in args.checkpoint:
        checkpoint = read_weights(path)
        generator = generator_from_checkpoint(checkpoint, path).to(device)
        if args.scale is not None and generator.scale != args.scale:
            raise CheckpointError(
                f"{path} is a x{generator.scale} model, but --scale is {args.scale}"
            )
        trained_on = checkpoint.get("degradation", {}).get("kind", "bicubic")
        if trained_on != args.degradation:
            warnings.warn(
                f"{path} was trained on '{trained_on}' LR images but is evaluated on "
                f"'{args.degradation}' ones: expect lower scores",
                stacklevel=2,
            )
        checkpoints[path.stem] = generator
    scales = {generator.scale for generator in checkpoints.values()}
    if len(scales) > 1:
        raise CheckpointError(f"the checkpoints have different scales: {sorted(scales)}")
    scale = args.scale or (scales.pop() if scales else 4)
    names = list(dict.fromkeys(args.method + (["bicubic"] if checkpoints else [])))
    if not names and not checkpoints:
        raise ValueError("nothing to evaluate: give --checkpoint and/or --method")
    methods = {name: partial(BASELINES[name], scale=scale) for name in names}
    for name, generator in checkpoints.items():
        methods[name] = model_upscaler(generator, device, args.tile)
    return methods, scale


def evaluate_dataset(
    folder: Path, lr_folder: Path | None, methods: dict, scale: int, args: argparse.Namespace
) -> tuple[str, dict, list[dict]]:
    """Evaluate every method on one folder; writes its comparison pictures (and SR images)."""
    if not folder.is_dir():
        raise FileNotFoundError(missing_data_hint(folder))
    hr_paths = list_images(folder)
    lr_paths = list_images(lr_folder) if lr_folder is not None else None
    name = dataset_name(folder)
    compared = {path.name for path in hr_paths[: args.num_comparisons]}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    hr_images: dict[str, np.ndarray] = {}
    references: dict[str, dict] = {}  # the HR row, of the images the methods were scored on

    def collector(method: str):
        def keep(image_name: str, lr_image, sr_image: np.ndarray, hr_image: np.ndarray) -> None:
            if image_name not in references:
                references[image_name] = reference_row(image_name, hr_image, scale)
            if image_name in compared:
                outputs.setdefault(image_name, {})[method] = sr_image
                hr_images[image_name] = hr_image
            if args.save_images:
                image_dir = args.out / "images" / name / method
                image_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(sr_image).save(image_dir / f"{Path(image_name).stem}.png")

        return keep

    results, per_image = {}, []
    for method, upscale in methods.items():
        print(f"{name}: {method}", flush=True)
        means, rows = evaluate_folder(
            upscale,
            hr_paths,
            scale,
            degradation=args.degradation,
            gaussian_sigma=args.gaussian_sigma,
            lr_paths=lr_paths,
            on_image=collector(method),
        )
        results[method] = means
        per_image += [{"dataset": name, "method": method, **row} for row in rows]
    results[REFERENCE] = mean_metrics(list(references.values()))
    per_image += [{"dataset": name, "method": REFERENCE, **row} for row in references.values()]
    write_comparisons(outputs, per_image, hr_images, args.out / "comparisons" / name)
    return name, results, per_image


def prepare_out(out: Path, overwrite: bool) -> None:
    """Before any work: `out` can be written, and holds no earlier results unless
    `overwrite`, which moves them to <out>/old-<time>/ (a run never mixes its pictures with
    an earlier run's, and never deletes them)."""
    check_writable_folder(out, "--out")
    earlier = sorted(out.glob("results.*"))
    earlier += [out / name for name in ("per_image.csv", "comparisons", "images")]
    earlier = [path for path in earlier if path.exists()]
    if earlier and not overwrite:
        names = ", ".join(path.name for path in earlier)
        raise ValueError(
            f"--out {out} already holds results ({names}): choose another --out, or pass "
            f"--overwrite, which moves them to {out}/old-<time>/"
        )
    if earlier:
        destination = archive_folder(out)
        move_aside(earlier, destination)
        print(f"moved the earlier results to {destination}/", flush=True)


def evaluate_main(args: argparse.Namespace) -> int:
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    if not MIN_GAUSSIAN_SIGMA <= args.gaussian_sigma <= MAX_GAUSSIAN_SIGMA:  # NaN too
        raise ValueError(
            f"--gaussian-sigma must be {MIN_GAUSSIAN_SIGMA} to {MAX_GAUSSIAN_SIGMA}, "
            f"not {args.gaussian_sigma}"
        )
    methods, scale = load_methods(args, device)
    lr_dirs = args.lr_dir if args.lr_dir is not None else [None] * len(args.data)
    if len(lr_dirs) != len(args.data):
        raise ValueError(f"{len(lr_dirs)} --lr-dir folders for {len(args.data)} --data folders")
    prepare_out(args.out, args.overwrite)  # before the evaluation: its writes come at the end
    results, per_image = {}, []
    for folder, lr_folder in zip(args.data, lr_dirs, strict=True):
        name, results[name], rows = evaluate_dataset(folder, lr_folder, methods, scale, args)
        per_image += rows
    protocol = protocol_settings(scale, args.degradation, args.gaussian_sigma, args.lr_dir)
    provenance = evaluation_provenance(args.checkpoint, protocol, device)
    write_results(results, per_image, args.out, provenance)
    print((args.out / "results.md").read_text(), end="")
    print(
        f"results written to {args.out}/ (results.json, results.md, results.tex, "
        "per_image.csv, comparisons/)"
    )
    return 0


def main() -> None:
    run_main(evaluate_main, parse_args())


if __name__ == "__main__":
    main()
