"""Evaluate SR methods on folders of HR images with the standard SR protocol.

LR = MATLAB bicubic x(1/scale) of the modcropped HR (or --lr-dir files); PSNR/SSIM on the
Y channel of YCbCr with `scale` pixels shaved from each border (and on RGB, beside it), NIQE
and the grid score with the same crop, and the HR images' own NIQE as the row "HR".

Published outputs (--outputs NAME=FOLDER) are rows too: FOLDER/<dataset>/ (or FOLDER itself)
holds SR images, each named after its HR image's stem, alone or followed by "_suffix"
(baboon_SRGAN-VGG54.png is the SR image of baboon.png; of several HR stems that fit, the
longest wins; two SR images for one HR image are an error). Each must be the HR size cropped
to a multiple of the scale. An HR image without one is warned about, and the row says how
many of the set's images it covers ("13 of 14").

Row names are unique: a checkpoint's row is its file stem and a dataset is named after its
folder ('Set5' for Set5/HR); where such a name equals bicubic, nearest, HR, an --outputs NAME
or another checkpoint's or dataset's, parent folders are prepended, as few as make it unique
(r1/model and r2/model). An --outputs NAME that equals a reserved or another NAME is refused.

--strengths 0,0.5,1 scores each SRGAN checkpoint at those strengths of the network
interpolation with the SRResNet it was trained from (recorded in it; --base names another),
rows "<row name> S=0.5" in place of its one row; other checkpoints stay single rows. It also
draws perception_distortion/<dataset>.png: PSNR-Y against NIQE, the strengths joined by a line.

    python scripts/evaluate.py --method bicubic --data data/benchmarks/Set5/HR \
        --out results/bicubic
    python scripts/evaluate.py --checkpoint checkpoints/quickstart/srgan_x4_quickstart_final.pt \
        --data data/sample/valid --out results/quickstart
    python scripts/evaluate.py --outputs "SRGAN (paper)=../shared/anchors/SRGAN-VGG54_authors" \
        --data data/benchmarks/Set5/HR data/benchmarks/Set14/HR --out results/paper
"""

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.commands.common import HelpFormatter, run_main
from srgan.commands.evaluate_inputs import (
    BASELINES,
    RESERVED,
    EvalSet,
    load_methods,
    match_published,
    prepare_out,
    published_row,
    read_sets,
    row_names,
    strength_list,
)
from srgan.data.degradation import gaussian_sigma_problem
from srgan.eval.outputs import evaluate_outputs
from srgan.eval.perception_distortion import write_pictures
from srgan.eval.protocol import (
    REFERENCE,
    evaluate_folder,
    mean_metrics,
    reference_row,
)
from srgan.eval.provenance import evaluation_provenance, protocol_settings
from srgan.eval.report import write_comparisons, write_results
from srgan.inference.shipped_models import weights_path
from srgan.machine import resolve_device


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    _add_row_arguments(parser)
    _add_data_arguments(parser)
    _add_output_arguments(parser)
    return parser.parse_args()


def _add_row_arguments(parser: argparse.ArgumentParser) -> None:
    """What is compared: checkpoints (at interpolation strengths), baselines, published outputs."""
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        default=[],
        type=Path,
        help="generator checkpoint(s) of ours (SRResNet pretraining or SRGAN); a row is named "
        "after the file stem, with parent folders prepended where that clashes with bicubic, "
        "nearest, HR, an --outputs NAME or another checkpoint (r1/model, r2/model)",
    )
    parser.add_argument(
        "--strengths",
        default=None,
        metavar="S,S,...",
        help="network interpolation strengths, e.g. 0,0.25,0.5,0.75,1: each SRGAN checkpoint "
        "(one that records its SRResNet) becomes one row per strength, '<row name> S=0.5', "
        "(1 - S) * SRResNet + S * SRGAN; adds perception_distortion/<dataset>.png to --out",
    )
    parser.add_argument(
        "--base",
        default=None,
        metavar="PATH_OR_NAME",
        help="the SRResNet of every SRGAN checkpoint for --strengths (default: the one each "
        "records it was trained from)",
    )
    parser.add_argument(
        "--method",
        nargs="+",
        default=[],
        choices=sorted(BASELINES),
        help="baseline method(s); bicubic is always added beside checkpoints and --outputs",
    )
    parser.add_argument(
        "--outputs",
        nargs="+",
        default=[],
        type=published_row,
        metavar="NAME=FOLDER",
        help="published SR images as rows: FOLDER/<dataset>/ (else FOLDER) holds <HR stem>.png "
        "or <HR stem>_<suffix>.png, e.g. baboon_SRGAN-VGG54.png for baboon.png (the longest "
        "HR stem that fits wins; two files for one HR image are an error); each the HR size "
        "cropped to a multiple of --scale; an HR image without one is warned about and the "
        "row says it covers k of n images. A NAME equal to bicubic, nearest, HR or another "
        "NAME is refused",
    )


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The HR datasets and how their LR inputs are made."""
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        type=Path,
        help="folders of HR images; the dataset name is the folder's (its parent's if 'HR'), "
        "with parent folders prepended where two clash (a/Set5, b/Set5)",
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


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Where results go, and how the models run."""
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


def scored_rows(
    eval_set: EvalSet, methods: dict, scale: int, args: argparse.Namespace, collector
) -> Iterator[tuple[str, dict | None, list[dict]]]:
    """(row name, mean metrics, per-image rows) of every method, then every --outputs row."""
    options = {"degradation": args.degradation, "gaussian_sigma": args.gaussian_sigma}
    options["lr_paths"] = eval_set.lr_paths
    for method, upscale in methods.items():
        print(f"{eval_set.name}: {method}", flush=True)
        scored = evaluate_folder(
            upscale, eval_set.hr_paths, scale, **options, on_image=collector(method)
        )
        yield method, *scored
    for name, matches in eval_set.published.items():
        print(f"{eval_set.name}: {name}", flush=True)
        scored = evaluate_outputs(
            matches, eval_set.hr_paths, scale, **options, on_image=collector(name)
        )
        yield name, *scored


def evaluate_dataset(
    eval_set: EvalSet, methods: dict, scale: int, args: argparse.Namespace
) -> tuple[dict, list[dict]]:
    """Evaluate every row on one set; writes its comparison pictures (and SR images)."""
    name = eval_set.name
    compared = {path.name for path in eval_set.hr_paths[: args.num_comparisons]}
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
    for method, means, rows in scored_rows(eval_set, methods, scale, args, collector):
        if means is not None:  # None: every image of an --outputs row skipped, each warned
            results[method] = means
        per_image += [{"dataset": name, "method": method, **row} for row in rows]
    results[REFERENCE] = mean_metrics(list(references.values()))
    per_image += [{"dataset": name, "method": REFERENCE, **row} for row in references.values()]
    for means in results.values():  # how many of the set's images each row covers
        means["dataset_images"] = len(references)
    write_comparisons(outputs, per_image, hr_images, args.out / "comparisons" / name)
    return results, per_image


def evaluate_main(args: argparse.Namespace) -> int:
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise ValueError(f"--device {error}") from None
    sigma_problem = gaussian_sigma_problem(args.gaussian_sigma)
    if sigma_problem is not None:
        raise ValueError(f"--gaussian-sigma {sigma_problem}")
    if args.base is not None and args.strengths is None:
        raise ValueError("--base is the SRResNet for --strengths: give --strengths too")
    if args.strengths is not None:
        args.strengths = strength_list(args.strengths)
    names = row_names(args, RESERVED)
    sets = read_sets(args)
    methods, scale, curves = load_methods(args, device, names)
    published = match_published(args.outputs, sets, scale)
    prepare_out(args.out, args.overwrite)  # before the evaluation: its writes come at the end
    results, per_image = {}, []
    for eval_set in sets:
        results[eval_set.name], rows = evaluate_dataset(eval_set, methods, scale, args)
        per_image += rows
    protocol = protocol_settings(scale, args.degradation, args.gaussian_sigma, args.lr_dir)
    interpolations = [curve.provenance() for curve in curves]
    files = [weights_path(path) for path in args.checkpoint]  # shipped names too
    provenance = evaluation_provenance(files, protocol, device, published, interpolations)
    write_results(results, per_image, args.out, provenance)
    curve_rows = {curve.name: curve.rows for curve in curves}
    drawn = bool(curves) and write_pictures(results, curve_rows, args.out / "perception_distortion")
    pictures = ", perception_distortion/" if drawn else ""
    print((args.out / "results.md").read_text(), end="")
    print(
        f"results written to {args.out}/ (results.json, results.md, results.tex, "
        f"per_image.csv, comparisons/{pictures})"
    )
    return 0


def main() -> None:
    run_main(evaluate_main, parse_args())


if __name__ == "__main__":
    main()
