"""The standard SR evaluation protocol, shared by training validation and scripts/evaluate.py.

For each HR image: modcrop to the scale, make the uint8 LR image (`degrade_image`: MATLAB
bicubic by default) or take a given LR file, upscale it, and measure PSNR/SSIM on Y (and RGB)
with `scale` pixels shaved from each border. A grayscale image is fed to the method as three
equal channels, the output is turned back into gray, and it is scored on its own gray values
(as MATLAB's protocol does), never on the 16-235 Y of an RGB copy.

Beside them, with the same border crop: NIQE of the SR image (`srgan.eval.niqe`, Mittal et al.
2013; None for an image under 96 px on a side) and the grid score of SR - HR
(`srgan.eval.grid_score`). The HR images' own NIQE is the reference row `REFERENCE`.
"""

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from srgan.data.degradation import degrade_image
from srgan.data.images import (
    MAX_IMAGE_PIXELS,
    ImageTooLargeError,
    UnreadableImageError,
    describe_other_file,
    find_images,
    other_files,
    read_image,
    warn_skipped,
)
from srgan.data.imresize import imresize, modcrop
from srgan.eval.grid_score import grid_score
from srgan.eval.metrics import SSIM_WINDOW, gray_from_rgb, image_metrics
from srgan.eval.niqe import image_niqe
from srgan.inference.tiles import upscale_tensor

UpscaleFn = Callable[[np.ndarray], np.ndarray]  # uint8 LR HxWx3 -> uint8 SR (H*s)x(W*s)x3

METRIC_NAMES = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "niqe", "grid_percent")
REFERENCE = "HR"  # the method name of the HR images' own row (NIQE only)


@dataclass(frozen=True)
class EvalImage:
    """One image of the protocol: uint8 HR (modcropped; HxW if gray) and its uint8 LR."""

    name: str
    lr_image: np.ndarray
    hr_image: np.ndarray


def dataset_name(folder: Path) -> str:
    """Name of a benchmark folder: 'Set5' for both 'Set5' and 'Set5/HR'."""
    folder = Path(folder).absolute()
    return folder.parent.name if folder.name in ("HR", "hr") else folder.name


def bicubic_upscale(lr_image: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB `imresize(lr, scale)`, uint8 in and out."""
    return imresize(lr_image, scale)


def nearest_upscale(lr_image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling: every LR pixel becomes a scale x scale block."""
    return np.repeat(np.repeat(lr_image, scale, axis=0), scale, axis=1)


def model_upscaler(generator: torch.nn.Module, device: torch.device, tile: int = 256) -> UpscaleFn:
    """A generator as an UpscaleFn: fp32, in tiles of `tile` LR pixels (exact, see inference)."""

    def upscale(lr_image: np.ndarray) -> np.ndarray:
        lr_tensor = torch.from_numpy(lr_image.copy()).permute(2, 0, 1)[None].float().div(255)
        sr = upscale_tensor(generator, lr_tensor.to(device), tile=tile)
        return sr[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()

    return upscale


def make_eval_image(
    name: str,
    hr_image: np.ndarray,
    scale: int,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
    lr_image: np.ndarray | None = None,
    lr_name: str = "",
) -> EvalImage:
    """Modcrop `hr_image` and pair it with `lr_image` (from file `lr_name`), or with its
    degradation when None."""
    hr_image = modcrop(hr_image, scale)
    if lr_image is None:
        lr_image = degrade_image(hr_image, scale, degradation, gaussian_sigma)
    elif (lr_image.shape[0] * scale, lr_image.shape[1] * scale) != hr_image.shape[:2]:
        raise ValueError(
            f"LR image {lr_name or 'of ' + name} is {lr_image.shape[:2]}, but x{scale} must "
            f"give the modcropped HR size {hr_image.shape[:2]} of {name}"
        )
    return EvalImage(name, lr_image, hr_image)


def evaluate_image(upscale_fn: UpscaleFn, image: EvalImage, scale: int) -> tuple[dict, np.ndarray]:
    """(PSNR/SSIM on Y and RGB, NIQE, grid score; SR image) of one image; SR is 2-D when the HR
    image is gray. NIQE and the grid score are None where they are undefined."""
    lr_image = image.lr_image
    model_input = lr_image if lr_image.ndim == 3 else np.stack([lr_image] * 3, axis=-1)
    sr_image = upscale_fn(model_input)
    expected_shape = (image.hr_image.shape[0], image.hr_image.shape[1], 3)
    if sr_image.shape != expected_shape or sr_image.dtype != np.uint8:
        raise ValueError(
            f"upscale_fn returned {sr_image.dtype} {sr_image.shape} for {image.name}, "
            f"expected uint8 {expected_shape}"
        )
    if image.hr_image.ndim == 2:
        sr_image = np.floor(np.clip(gray_from_rgb(sr_image), 0, 255) + 0.5).astype(np.uint8)
    metrics = image_metrics(sr_image, image.hr_image, crop_border=scale)
    metrics["niqe"] = image_niqe(sr_image, crop_border=scale)
    grid = grid_score(sr_image, image.hr_image, crop_border=scale)
    # One unit everywhere a user reads it (tables, logs, JSON, curves): percent.
    metrics["grid_percent"] = None if grid is None else 100 * grid
    return metrics, sr_image


def reference_row(name: str, hr_image: np.ndarray, scale: int) -> dict:
    """The HR image's own row: its NIQE with the protocol's border crop, nothing else."""
    return {"image": name, **dict.fromkeys(METRIC_NAMES), "niqe": image_niqe(hr_image, scale)}


def mean_metrics(rows: list[dict]) -> dict[str, float | int | None]:
    """Each metric's mean over the rows that have it (None where none has), the number of
    rows (`num_images`) and of rows with a NIQE (`niqe_images`)."""
    if not rows:
        raise ValueError("no image could be evaluated")
    means = {}
    for name in METRIC_NAMES:
        values = [row[name] for row in rows if row[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    means["num_images"] = len(rows)
    means["niqe_images"] = sum(row["niqe"] is not None for row in rows)
    return means


def smallest_measurable(scale: int) -> int:
    """The smallest modcropped HR side the protocol can score: SSIM's window after shaving
    `scale` pixels from each border."""
    return 2 * scale + SSIM_WINDOW


def size_problem(hr_image: np.ndarray, scale: int) -> str | None:
    """Why the protocol cannot score `hr_image` at `scale`, or None when it can."""
    height, width = (size // scale * scale for size in hr_image.shape[:2])
    if min(height, width) >= smallest_measurable(scale):
        return None
    return (
        f"{width}x{height} after the modcrop is smaller than the {smallest_measurable(scale)} "
        f"px the protocol measures at x{scale}"
    )


def _read_or_warn(path: Path) -> np.ndarray | None:
    try:
        return read_image(path, keep_gray=True)
    except UnreadableImageError as error:
        warnings.warn(f"skipping unreadable image {error}", stacklevel=3)
        return None


def read_eval_images(
    hr_paths: list[Path],
    scale: int,
    *,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
    lr_paths: list[Path] | None = None,
) -> Iterator[EvalImage]:
    """EvalImages of files, LR from `lr_paths` (matched by order) or made; unreadable images
    and images too small to measure are skipped, each with a warning naming it."""
    if lr_paths is not None and len(lr_paths) != len(hr_paths):
        raise ValueError(f"{len(lr_paths)} LR files for {len(hr_paths)} HR files")
    for hr_path, lr_path in zip(hr_paths, lr_paths or [None] * len(hr_paths), strict=True):
        hr_image = _read_or_warn(hr_path)
        lr_image = None if lr_path is None else _read_or_warn(lr_path)
        if hr_image is None or (lr_path is not None and lr_image is None):
            continue
        problem = size_problem(hr_image, scale)
        if problem is not None:
            warnings.warn(f"skipping {hr_path}: {problem}", stacklevel=3)
            continue
        lr_name = "" if lr_path is None else str(lr_path)
        yield make_eval_image(
            hr_path.name, hr_image, scale, degradation, gaussian_sigma, lr_image, lr_name
        )


def evaluate_folder(
    upscale_fn: UpscaleFn,
    hr_paths: list[Path],
    scale: int,
    *,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
    lr_paths: list[Path] | None = None,
    progress: bool = True,
    on_image: Callable[[str, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Evaluate `upscale_fn` on HR image files; returns (mean metrics, per-image rows).

    `on_image(name, lr, sr, hr)` gets the uint8 arrays of each image (gray images as 2-D),
    e.g. to save SR outputs. Unreadable files are skipped with a warning.
    """
    images = read_eval_images(
        hr_paths, scale, degradation=degradation, gaussian_sigma=gaussian_sigma, lr_paths=lr_paths
    )
    rows = []
    for image in tqdm(
        images, desc="evaluating", unit="image", total=len(hr_paths), disable=not progress
    ):
        metrics, sr_image = evaluate_image(upscale_fn, image, scale)
        rows.append({"image": image.name, **metrics})
        if on_image is not None:
            on_image(image.name, image.lr_image, sr_image, image.hr_image)
    return mean_metrics(rows), rows


def center_crop(image: np.ndarray, max_size: int) -> np.ndarray:
    if max_size <= 0:
        return image
    height, width = image.shape[:2]
    top, left = max(0, (height - max_size) // 2), max(0, (width - max_size) // 2)
    return image[top : top + max_size, left : left + max_size]


def load_validation_images(
    folder: str | Path,
    scale: int,
    max_size: int = 0,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> list[EvalImage]:
    """Training's validation set as the protocol sees it.

    Each image is read as evaluate.py reads it (gray stays gray), centre-cropped to `max_size`
    (0: whole image), modcropped, and paired with its LR image, made once here. Images too
    small to measure (`size_problem`) or of more than `max_pixels` (told from the header,
    never decoded) are skipped with the unreadable ones, in one warning.
    """
    images, skipped = [], [describe_other_file(path) for path in other_files(folder)]
    for path in find_images(folder):
        try:
            hr_image = read_image(path, keep_gray=True, max_pixels=max_pixels)
            hr_image = center_crop(hr_image, max_size)
        except ImageTooLargeError as error:
            skipped.append(f"{path.name}: {error.reason} (data.max_image_pixels)")
            continue
        except Exception as error:  # PIL raises many types for a bad file
            reason = getattr(error, "reason", error)  # UnreadableImageError names the path
            skipped.append(f"{path.name}: failed to decode ({reason})")
            continue
        problem = size_problem(hr_image, scale)
        if problem is not None:
            skipped.append(f"{path.name}: {problem}")
            continue
        images.append(make_eval_image(path.stem, hr_image, scale, degradation, gaussian_sigma))
    warn_skipped(folder, skipped)
    if not images:
        raise ValueError(
            f"no usable validation images (at least {smallest_measurable(scale)} px) in {folder}"
        )
    return images
