"""Published SR outputs as rows: folders of precomputed SR images, scored by the protocol.

An SR file belongs to the HR image whose stem is the SR file's stem, alone or followed by
"_suffix" (`baboon_SRGAN-VGG54.png` is the SR image of `baboon.png`); when several HR stems
fit, the longest wins, and two SR files for one HR image are an error naming both. An SR image
must be the modcropped HR size (HR cropped to a multiple of the scale). It is scored exactly as
a method's output is (`evaluate_image`): read as RGB, turned into gray for a gray HR image,
with the same border crop, NIQE and grid score.
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.data.images import find_images, read_image
from srgan.eval.protocol import evaluate_image, mean_metrics, read_eval_images

LISTED_NAMES = 5  # file names a warning lists before "and N more"


def outputs_folder(folder: Path, dataset: str) -> Path:
    """Where the SR images of `dataset` are: FOLDER/<dataset>/ when it is a folder (one FOLDER
    for several sets, as published), else FOLDER itself."""
    return folder / dataset if (folder / dataset).is_dir() else folder


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_NAMES])
    return shown if len(names) <= LISTED_NAMES else f"{shown} and {len(names) - LISTED_NAMES} more"


def match_outputs(sr_paths: list[Path], hr_paths: list[Path]) -> tuple[dict[str, Path], list[Path]]:
    """({HR file name: its SR file}, the SR files that fit no HR image); see the module
    docstring for the rule. ValueError for two SR files of one HR image."""
    hr_names: dict[str, list[str]] = {}
    for hr_path in hr_paths:
        hr_names.setdefault(hr_path.stem, []).append(hr_path.name)
    matches: dict[str, Path] = {}
    unmatched = []
    for sr_path in sr_paths:
        stems = [s for s in hr_names if sr_path.stem == s or sr_path.stem.startswith(s + "_")]
        if not stems:
            unmatched.append(sr_path)
            continue
        candidates = hr_names[max(stems, key=len)]
        if len(candidates) > 1:
            raise ValueError(f"SR image {sr_path} fits HR images {' and '.join(candidates)}")
        if candidates[0] in matches:
            raise ValueError(
                f"two SR images for {candidates[0]}: {matches[candidates[0]]} and {sr_path}"
            )
        matches[candidates[0]] = sr_path
    return matches, unmatched


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header; None when unreadable (the protocol skips such
    an HR image with a warning, and reading an SR file fails naming it)."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def check_sizes(matches: dict[str, Path], hr_paths: list[Path], scale: int) -> None:
    """ValueError naming the first SR file that is not its modcropped HR image's size, read
    from the headers: before any image is scored."""
    for hr_path in hr_paths:
        if hr_path.name not in matches:
            continue
        sr_path = matches[hr_path.name]
        hr_size, sr_size = image_size(hr_path), image_size(sr_path)
        if hr_size is None or sr_size is None:
            continue
        width, height = (side // scale * scale for side in hr_size)
        if sr_size != (width, height):
            raise ValueError(
                f"SR image {sr_path} is {sr_size[0]}x{sr_size[1]}, but {hr_path} cropped to a "
                f"multiple of {scale} is {width}x{height}"
            )


def match_folder(row: str, folder: Path, dataset: str, hr_paths: list[Path]) -> dict[str, Path]:
    """{HR file name: SR file} of the --outputs row `row` on `dataset`, with a warning for the
    HR images it has no SR image for and for the SR files that fit none."""
    sr_folder = outputs_folder(folder, dataset)
    matches, unmatched = match_outputs(find_images(sr_folder), hr_paths)
    if unmatched:
        names = _listed([path.name for path in unmatched])
        warnings.warn(
            f"{row}: {len(unmatched)} image(s) of {sr_folder} fit no HR image of {dataset}, "
            f"ignored: {names}",
            stacklevel=2,
        )
    missing = [path.name for path in hr_paths if path.name not in matches]
    if matches and missing:
        warnings.warn(
            f"{row}: {sr_folder} has no SR image for {len(missing)} of the {len(hr_paths)} "
            f"images of {dataset} ({_listed(missing)}): its row covers the other "
            f"{len(hr_paths) - len(missing)}",
            stacklevel=2,
        )
    elif missing:
        warnings.warn(
            f"{row}: {sr_folder} has no SR image for any image of {dataset}: no {row} row "
            f"for {dataset}",
            stacklevel=2,
        )
    return matches


def _published(sr_image: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """An upscale function that returns `sr_image` whatever LR image it is given."""
    return lambda lr_image: sr_image


def evaluate_outputs(
    matches: dict[str, Path],
    hr_paths: list[Path],
    scale: int,
    *,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
    lr_paths: list[Path] | None = None,
    on_image: Callable[[str, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[dict | None, list[dict]]:
    """(mean metrics, per-image rows) of the SR files `matches` against their HR images, read,
    modcropped and skipped as `srgan.eval.protocol.evaluate_folder` does; None for the means
    when no image could be scored. `on_image` as in `evaluate_folder`."""
    chosen = [index for index, path in enumerate(hr_paths) if path.name in matches]
    chosen_lr = None if lr_paths is None else [lr_paths[index] for index in chosen]
    images = read_eval_images(
        [hr_paths[index] for index in chosen],
        scale,
        degradation=degradation,
        gaussian_sigma=gaussian_sigma,
        lr_paths=chosen_lr,
    )
    rows = []
    for image in images:
        sr_file_image = read_image(matches[image.name])
        metrics, sr_image = evaluate_image(_published(sr_file_image), image, scale)
        rows.append({"image": image.name, **metrics})
        if on_image is not None:
            on_image(image.name, image.lr_image, sr_image, image.hr_image)
    return (mean_metrics(rows) if rows else None), rows
