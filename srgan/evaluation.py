"""Evaluate one upscaling method on one folder of HR images, with the standard SR protocol.

For each HR image: modcrop to the scale, make the LR image (MATLAB bicubic by default, or load a
given LR file), upscale it with the method, and measure PSNR/SSIM on Y (and RGB) with `scale`
pixels shaved from each border. Also draws SRGAN-paper-style side-by-side comparison crops.
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from srgan.data import IMAGE_SUFFIXES, find_images, gray16_to_uint8
from srgan.degradation import gaussian_downsample
from srgan.imresize import imresize, modcrop
from srgan.metrics import gray_from_rgb, image_metrics

UpscaleFn = Callable[[np.ndarray], np.ndarray]  # uint8 LR HxWx3 -> uint8 SR (H*s)x(W*s)x3

METRIC_NAMES = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
PANEL_GAP = 8  # white pixels between comparison panels and around captions
CAPTION_FONT_SIZE = 16


def list_images(folder: Path) -> list[Path]:
    """Sorted image files directly inside `folder`; errors name the folder if missing or empty."""
    paths = find_images(folder)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {folder}")
    return paths


def dataset_name(folder: Path) -> str:
    """Name of a benchmark folder: 'Set5' for both 'Set5' and 'Set5/HR'."""
    folder = Path(folder).absolute()
    return folder.parent.name if folder.name in ("HR", "hr") else folder.name


def load_image(path: Path) -> np.ndarray:
    """Load an image as uint8: 2-D for grayscale files, HxWx3 RGB for everything else."""
    with Image.open(path) as image:
        if image.mode == "L":
            return np.array(image)
        if image.mode.startswith("I"):
            return gray16_to_uint8(image)
        return np.array(image.convert("RGB"))


def read_or_warn(path: Path) -> np.ndarray | None:
    """`load_image`, or None with a warning naming the file when it cannot be read."""
    try:
        return load_image(path)
    except OSError as error:  # includes PIL's UnidentifiedImageError and truncated files
        warnings.warn(f"skipping unreadable image {path}: {error}", stacklevel=3)
        return None


def degrade(
    hr_image: np.ndarray, scale: int, degradation: str, gaussian_sigma: float
) -> np.ndarray:
    """Make the uint8 LR image of a modcropped uint8 HR image (HxW or HxWx3).

    "bicubic": MATLAB `imresize(hr, 1/scale)` with antialiasing and uint8 rounding, which is how
    the benchmark LR files were made.
    "gaussian": `srgan.degradation.gaussian_downsample` (blur, then every scale-th pixel),
    rounded to uint8.
    """
    if hr_image.shape[0] % scale or hr_image.shape[1] % scale:
        raise ValueError(f"HR size {hr_image.shape[:2]} is not a multiple of scale {scale}")
    if degradation == "bicubic":
        return imresize(hr_image, 1 / scale)
    if degradation == "gaussian":
        # The training degradation itself, so evaluation sees exactly what training saw.
        planes = torch.from_numpy(np.atleast_3d(hr_image).transpose(2, 0, 1) / 255.0)
        lr_image = gaussian_downsample(planes, scale, gaussian_sigma).numpy().transpose(1, 2, 0)
        lr_image = np.floor(np.clip(lr_image * 255, 0, 255) + 0.5).astype(np.uint8)
        return lr_image if hr_image.ndim == 3 else lr_image[:, :, 0]
    raise ValueError(f"unknown degradation {degradation!r}, expected 'bicubic' or 'gaussian'")


def bicubic_upscale(lr_image: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB `imresize(lr, scale)`, uint8 in and out."""
    return imresize(lr_image, scale)


def nearest_upscale(lr_image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling: every LR pixel becomes a scale x scale block."""
    return np.repeat(np.repeat(lr_image, scale, axis=0), scale, axis=1)


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
    """Evaluate `upscale_fn` on HR images; returns (mean metrics, per-image rows).

    LR images are read from `lr_paths` (matched to `hr_paths` by order) when given, else made
    with `degrade`. Grayscale images are fed to the method as 3 equal channels and its output is
    turned back into gray. `on_image(name, lr, sr, hr)` is called with the uint8 arrays of each
    image (gray images as 2-D), e.g. to save SR outputs. Unreadable files are skipped with a
    warning.
    """
    if lr_paths is not None and len(lr_paths) != len(hr_paths):
        raise ValueError(f"{len(lr_paths)} LR files for {len(hr_paths)} HR files")
    lr_or_none = lr_paths if lr_paths is not None else [None] * len(hr_paths)
    pairs = list(zip(hr_paths, lr_or_none, strict=True))
    rows = []
    for hr_path, lr_path in tqdm(pairs, desc="evaluating", unit="image", disable=not progress):
        hr_image = read_or_warn(hr_path)
        lr_image = None if lr_path is None else read_or_warn(lr_path)
        if hr_image is None or (lr_path is not None and lr_image is None):
            continue
        hr_image = modcrop(hr_image, scale)
        if lr_image is None:
            lr_image = degrade(hr_image, scale, degradation, gaussian_sigma)
        elif (lr_image.shape[0] * scale, lr_image.shape[1] * scale) != hr_image.shape[:2]:
            raise ValueError(
                f"LR file {lr_path} is {lr_image.shape[:2]}, but x{scale} must give the "
                f"modcropped HR size {hr_image.shape[:2]} of {hr_path}"
            )

        model_input = lr_image if lr_image.ndim == 3 else np.stack([lr_image] * 3, axis=-1)
        sr_image = upscale_fn(model_input)
        expected_shape = (hr_image.shape[0], hr_image.shape[1], 3)
        if sr_image.shape != expected_shape or sr_image.dtype != np.uint8:
            raise ValueError(
                f"upscale_fn returned {sr_image.dtype} {sr_image.shape} for {hr_path.name}, "
                f"expected uint8 {expected_shape}"
            )
        if hr_image.ndim == 2:
            sr_image = np.floor(np.clip(gray_from_rgb(sr_image), 0, 255) + 0.5).astype(np.uint8)

        row = {"image": hr_path.name, **image_metrics(sr_image, hr_image, crop_border=scale)}
        rows.append(row)
        if on_image is not None:
            on_image(hr_path.name, lr_image, sr_image, hr_image)

    if not rows:
        raise ValueError("no image could be evaluated")
    means = {name: float(np.mean([row[name] for row in rows])) for name in METRIC_NAMES}
    means["num_images"] = len(rows)
    return means, rows


def texture_window(hr_image: np.ndarray, crop_size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the crop_size window with the most gradient energy.

    The most textured region is where SR methods differ visibly, as in the SRGAN paper figures.
    Images smaller than crop_size give a window clipped to the image.
    """
    gray = hr_image.astype(np.float64) if hr_image.ndim == 2 else gray_from_rgb(hr_image)
    energy = np.zeros_like(gray)
    energy[:-1, :] += np.diff(gray, axis=0) ** 2
    energy[:, :-1] += np.diff(gray, axis=1) ** 2
    height, width = min(crop_size, gray.shape[0]), min(crop_size, gray.shape[1])
    # Summed-area table: the energy of every window position in O(H*W).
    table = np.pad(energy.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    window_sums = (
        table[height:, width:]
        - table[:-height, width:]
        - table[height:, :-width]
        + table[:-height, :-width]
    )
    top, left = np.unravel_index(np.argmax(window_sums), window_sums.shape)
    return int(top), int(left), height, width


def comparison_image(
    hr_image: np.ndarray,
    panels: list[tuple[str, np.ndarray]],
    crop_size: int = 128,
    zoom: int = 2,
) -> Image.Image:
    """Side-by-side crops of `panels` [(caption, image), ...], all at the same region.

    The region is the most textured crop_size window of `hr_image`; each crop is enlarged by
    `zoom` with nearest neighbour (no smoothing of the details being compared) and captioned.
    Panels are placed left to right with PANEL_GAP pixels between them, so the width is
    len(panels) * crop_size * zoom + (len(panels) - 1) * PANEL_GAP for images >= crop_size.
    """
    top, left, height, width = texture_window(hr_image, crop_size)
    try:
        font = ImageFont.load_default(size=CAPTION_FONT_SIZE)
    except TypeError:  # Pillow < 10.1 only has the small fixed-size bitmap font
        font = ImageFont.load_default()
    line_height = font.getbbox("Ag")[3] + 4
    text_height = line_height * max(caption.count("\n") + 1 for caption, _ in panels)

    panel_height, panel_width = height * zoom, width * zoom
    canvas = Image.new(
        "RGB",
        (
            len(panels) * panel_width + (len(panels) - 1) * PANEL_GAP,
            panel_height + text_height + 2 * PANEL_GAP,
        ),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    for index, (caption, image) in enumerate(panels):
        if image.shape[:2] != hr_image.shape[:2]:
            raise ValueError(f"panel {caption!r} is {image.shape[:2]}, HR is {hr_image.shape[:2]}")
        crop = image[top : top + height, left : left + width]
        if crop.ndim == 2:
            crop = np.stack([crop] * 3, axis=-1)
        crop = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1).astype(np.uint8)
        x = index * (panel_width + PANEL_GAP)
        canvas.paste(Image.fromarray(crop), (x, 0))
        # One centred line per caption line (e.g. the method, then its PSNR/SSIM).
        for line_index, line in enumerate(caption.split("\n")):
            text_width = draw.textlength(line, font=font)
            draw.text(
                (
                    x + (panel_width - text_width) / 2,
                    panel_height + PANEL_GAP + line_index * line_height,
                ),
                line,
                fill="black",
                font=font,
            )
    return canvas
