"""Upscale PIL images and image files with a trained generator, in bounded memory.

`upscale` keeps the kind of image it is given: grayscale stays grayscale, an alpha channel is
upscaled with bicubic and re-attached (the generator only knows RGB), and 16-bit grayscale is
processed in float and returned as 16-bit. The output is assembled tile by tile in a uint8 (or
uint16) canvas, so an 8000x8000 result costs 192 MB, not a 768 MB float32 image.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from srgan.evaluation import list_images
from srgan.generator import Generator
from srgan.inference import DEFAULT_TILE, upscale_into

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, the weights of PIL's convert("L")
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Modes converted before upscaling; anything not listed and not 16-bit becomes RGB.
MODE_CONVERSIONS = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB"}
KEPT_MODES = {"L", "LA", "RGB", "RGBA"}


class UnreadableImageError(OSError):
    """A file that is not an image or cannot be decoded; the message names it."""


def _normalise(image: Image.Image) -> Image.Image:
    """The image in one of KEPT_MODES or SIXTEEN_BIT_MODES."""
    if image.mode in KEPT_MODES or image.mode in SIXTEEN_BIT_MODES:
        return image
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.convert(MODE_CONVERSIONS.get(image.mode, "RGB"))


def upscale(
    generator: Generator,
    image: Image.Image,
    *,
    tile: int = DEFAULT_TILE,
    tile_overlap: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> Image.Image:
    """Upscale a PIL image by `generator.scale`; see `srgan.inference.upscale_into` for tiling.

    The EXIF orientation is applied first (the output carries no EXIF). Output modes: L, LA,
    RGB, RGBA as the input (palette images become RGB, or RGBA with transparency; other colour
    spaces become RGB); 16-bit grayscale ("I;16", "I") becomes "I;16".
    """
    image = ImageOps.exif_transpose(image)
    # An ICC profile describes the input's colour space: it still holds unless that was not
    # RGB or gray (CMYK, LAB, ...) and got converted.
    keeps_profile = image.mode in KEPT_MODES | SIXTEEN_BIT_MODES | MODE_CONVERSIONS.keys() | {"P"}
    icc_profile = image.info.get("icc_profile") if keeps_profile else None
    image = _normalise(image)
    sixteen_bit = image.mode in SIXTEEN_BIT_MODES
    gray = sixteen_bit or image.mode in ("L", "LA")
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    max_value = 65535 if sixteen_bit else 255

    if sixteen_bit:
        values = np.clip(np.asarray(image, dtype=np.float32), 0, 65535)
        lr_array = np.repeat(values[..., None], 3, axis=-1)
    else:
        lr_array = np.array(image.convert("RGB"))
    device = next(generator.parameters()).device
    lr_image = torch.from_numpy(lr_array).permute(2, 0, 1)[None].to(device).float() / max_value

    scale = generator.scale
    height, width = image.height * scale, image.width * scale
    channels = (1 if gray else 3) + (alpha is not None)
    canvas = np.empty((height, width, channels), dtype=np.uint16 if sixteen_bit else np.uint8)
    transfer_dtype = torch.int32 if sixteen_bit else torch.uint8  # torch has no full uint16
    luma = torch.tensor(LUMA_WEIGHTS, device=device).view(3, 1, 1)

    def write(rows: slice, cols: slice, sr_tile: torch.Tensor) -> None:
        if not torch.isfinite(sr_tile).all():  # even in fp32: never save NaN as black pixels
            raise ValueError("the generator's fp32 output is not finite: its weights are broken")
        sr_tile = sr_tile[0]
        if gray:
            sr_tile = (sr_tile * luma).sum(dim=0, keepdim=True)
        levels = (sr_tile * max_value).round().clamp(0, max_value).to(transfer_dtype)
        tile_array = levels.permute(1, 2, 0).cpu().numpy()
        canvas[rows, cols, : tile_array.shape[-1]] = tile_array

    upscale_into(
        generator,
        lr_image,
        write,
        tile=tile,
        tile_overlap=tile_overlap,
        precision=precision,
        progress=progress,
    )
    if alpha is not None:
        canvas[..., -1] = np.asarray(alpha.resize((width, height), Image.Resampling.BICUBIC))
    result = Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
    if icc_profile:
        result.info["icc_profile"] = icc_profile
    return result


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image file; UnreadableImageError naming it if that fails."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not halfway through
            return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(f"{path}: {error}") from None


def plan_outputs(inputs: list[Path], output_dir: Path, suffix: str) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs: files as given, folders' images, `<stem><suffix>.png`.

    Raises ValueError when two inputs would write the same output or an output would replace an
    input, and FileNotFoundError for a missing input.
    """
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            files += list_images(path)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    pairs, writers = [], {}
    input_files = {file.resolve(): file for file in files}
    for file in dict.fromkeys(files):  # a file given twice is upscaled once
        output = Path(output_dir) / f"{file.stem}{suffix}.png"
        key = output.resolve()
        if key in input_files:
            raise ValueError(
                f"{output} would overwrite the input {input_files[key]}; "
                "choose another --output or --suffix"
            )
        if key in writers and writers[key].resolve() != file.resolve():
            raise ValueError(f"{writers[key]} and {file} would both be written to {output}")
        if key not in writers:
            writers[key] = file
            pairs.append((file, output))
    return pairs


def save_png(image: Image.Image, path: Path) -> None:
    """Write a PNG via a temp file and rename, so an interrupted run leaves no partial output
    (which a later run would then refuse to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600), an image should get the usual mode.
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        image.save(temp_path, format="PNG")
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


@dataclass
class UpscaleSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output existed, --overwrite not given
    failed: list[Path] = field(default_factory=list)  # not an image, or corrupt
    output_pixels: int = 0
    seconds: float = 0.0


def upscale_files(
    generator: Generator,
    pairs: list[tuple[Path, Path]],
    *,
    overwrite: bool = False,
    tile: int = DEFAULT_TILE,
    tile_overlap: int | None = None,
    precision: str = "fp32",
    progress: bool = True,
) -> UpscaleSummary:
    """Upscale each (input, output) pair; unreadable inputs are reported and skipped."""
    summary = UpscaleSummary()
    start = time.perf_counter()
    for input_path, output_path in tqdm(pairs, unit="image", disable=not progress):
        if output_path.exists() and not overwrite:
            tqdm.write(f"skipping {input_path}: {output_path} exists (--overwrite replaces it)")
            summary.skipped.append(input_path)
            continue
        try:
            image = open_image(input_path)
        except UnreadableImageError as error:
            tqdm.write(f"warning: skipping unreadable image {error}", file=sys.stderr)
            summary.failed.append(input_path)
            continue
        result = upscale(
            generator,
            image,
            tile=tile,
            tile_overlap=tile_overlap,
            precision=precision,
            progress=progress,
        )
        save_png(result, output_path)
        summary.written.append(output_path)
        summary.output_pixels += result.width * result.height
    summary.seconds = time.perf_counter() - start
    return summary
