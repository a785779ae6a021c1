"""What scripts/evaluate.py evaluates, checked before any work: the --outputs rows and their
SR files, unique row and dataset names, the checkpoints, the --data folders, the --strengths,
an --out free of earlier results, and the methods (baselines and checkpoints) made from them."""

import argparse
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from srgan.checkpoint import CheckpointError, generator_from_checkpoint
from srgan.data.images import list_images
from srgan.datasets.catalog import missing_data_hint
from srgan.eval.outputs import check_sizes, match_folder, outputs_folder
from srgan.eval.protocol import (
    REFERENCE,
    bicubic_upscale,
    dataset_name,
    model_upscaler,
    nearest_upscale,
)
from srgan.eval.row_names import checkpoint_names, dataset_names
from srgan.eval.strength_rows import StrengthCurve, model_rows
from srgan.files import check_writable_folder
from srgan.inference.interpolation import check_strength
from srgan.inference.weights import read_weights
from srgan.models.generator import Generator
from srgan.run.folder import archive_folder, move_aside

BASELINES = {"bicubic": bicubic_upscale, "nearest": nearest_upscale}
RESERVED = (*BASELINES, REFERENCE)  # row names no checkpoint or --outputs row may take


@dataclass(frozen=True)
class PublishedRow:
    """An --outputs row: its NAME and the FOLDER of its SR images."""

    name: str
    folder: Path


@dataclass
class EvalSet:
    """One --data folder: its unique name, HR (and LR) files, and each --outputs row's
    {HR file name: SR file} on it."""

    name: str
    folder: Path
    hr_paths: list[Path]
    lr_paths: list[Path] | None
    published: dict[str, dict[str, Path]] = field(default_factory=dict)


def published_row(spec: str) -> PublishedRow:
    """--outputs NAME=FOLDER (split at the first '='); NAME names a folder of --save-images."""
    name, separator, folder = spec.partition("=")
    if not separator or not name.strip() or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {spec!r}")
    if "/" in name or name in (".", ".."):
        raise argparse.ArgumentTypeError(f"NAME {name!r} must not be a path ('/', '.', '..')")
    return PublishedRow(name, Path(folder))


def row_names(args: argparse.Namespace, reserved: Collection[str]) -> list[str]:
    """The checkpoints' row names (see `srgan.eval.row_names`), after refusing an --outputs
    NAME that is `reserved` (bicubic, nearest, HR) or given twice."""
    names = [row.name for row in args.outputs]
    for index, name in enumerate(names):
        if name in reserved or name in names[:index]:
            taken = "is reserved" if name in reserved else "is given twice"
            raise ValueError(f"--outputs NAME {name!r} {taken}: choose another")
    return checkpoint_names(args.checkpoint, (*reserved, *names))


def strength_list(text: str) -> list[float]:
    """--strengths "0,0.25,0.5": the strengths, each in [0, 1] and given once, in order."""
    try:
        strengths = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(
            f"--strengths {text!r}: expected numbers separated by commas, e.g. 0,0.25,0.5,0.75,1"
        ) from None
    for strength in strengths:
        check_strength(strength, "--strengths values")
    if len(set(strengths)) < len(strengths):
        raise ValueError(f"--strengths {text}: a strength is given twice")
    return sorted(strengths)


def read_checkpoints(
    args: argparse.Namespace, device: torch.device, names: list[str]
) -> dict[str, tuple[Path, dict, Generator]]:
    """{row name: (path, checkpoint-like dict, generator on `device`)} of the --checkpoint
    files, their scale checked against --scale and their degradation against --degradation."""
    checkpoints = {}
    for path, name in zip(args.checkpoint, names, strict=True):
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
        checkpoints[name] = (path, checkpoint, generator)
    return checkpoints


def read_sets(args: argparse.Namespace) -> list[EvalSet]:
    """The --data folders (and --lr-dir), listed and named, before any model is loaded."""
    lr_dirs = args.lr_dir if args.lr_dir is not None else [None] * len(args.data)
    if len(lr_dirs) != len(args.data):
        raise ValueError(f"{len(lr_dirs)} --lr-dir folders for {len(args.data)} --data folders")
    sets = []
    names = dataset_names(args.data)
    for name, folder, lr_folder in zip(names, args.data, lr_dirs, strict=True):
        if not folder.is_dir():
            raise FileNotFoundError(missing_data_hint(folder))
        lr_paths = list_images(lr_folder) if lr_folder is not None else None
        sets.append(EvalSet(name, folder, list_images(folder), lr_paths))
    return sets


def match_published(rows: list[PublishedRow], sets: list[EvalSet], scale: int) -> list[dict]:
    """Fill each set's `published` with the SR files of every --outputs row, their sizes
    checked; returns the provenance records {name, dataset, path, files}."""
    records = []
    for row in rows:
        if not row.folder.is_dir():
            raise FileNotFoundError(f"--outputs {row.name}: folder {row.folder} does not exist")
        for eval_set in sets:
            subfolder = dataset_name(eval_set.folder)  # FOLDER/Set5 for Set5 and a/Set5 alike
            matches = match_folder(row.name, row.folder, subfolder, eval_set.hr_paths)
            check_sizes(matches, eval_set.hr_paths, scale)
            if matches:
                eval_set.published[row.name] = matches
                path = str(outputs_folder(row.folder, subfolder))
                records.append(
                    {
                        "name": row.name,
                        "dataset": eval_set.name,
                        "path": path,
                        "files": len(matches),
                    }
                )
        if not any(row.name in eval_set.published for eval_set in sets):
            raise ValueError(
                f"--outputs {row.name}: no image in {row.folder} fits an HR image of "
                f"{', '.join(eval_set.name for eval_set in sets)} (<HR stem>[_suffix].png)"
            )
    return records


def prepare_out(out: Path, overwrite: bool) -> None:
    """Before any work: `out` can be written, and holds no earlier results unless
    `overwrite`, which moves them to <out>/old-<time>/ (a run never mixes its pictures with
    an earlier run's, and never deletes them)."""
    check_writable_folder(out, "--out")
    earlier = sorted(out.glob("results.*"))
    folders = ("per_image.csv", "comparisons", "images", "perception_distortion")
    earlier += [out / name for name in folders]
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


def load_methods(
    args: argparse.Namespace, device: torch.device, names: list[str]
) -> tuple[dict, int, list[StrengthCurve]]:
    """{method name: upscale function}, the scale they work at and the --strengths curves;
    `names`: the checkpoints'."""
    checkpoints = read_checkpoints(args, device, names)
    scales = {generator.scale for _, _, generator in checkpoints.values()}
    if len(scales) > 1:
        raise CheckpointError(f"the checkpoints have different scales: {sorted(scales)}")
    scale = args.scale or (scales.pop() if scales else 4)
    compared = checkpoints or args.outputs  # bicubic is the baseline they are read against
    baselines = list(dict.fromkeys(args.method + (["bicubic"] if compared else [])))
    if not baselines:
        raise ValueError("nothing to evaluate: give --checkpoint, --outputs and/or --method")
    methods = {name: partial(BASELINES[name], scale=scale) for name in baselines}
    taken = {*methods, *(row.name for row in args.outputs), REFERENCE}
    generators, curves = model_rows(checkpoints, args.strengths, args.base, taken)
    for name, generator in generators.items():
        methods[name] = model_upscaler(generator, device, args.tile)
    return methods, scale, curves
