"""Upscale PIL images and image files with a trained generator, in bounded memory.

`upscale` keeps the kind of image it is given: grayscale stays grayscale, an alpha channel is
upscaled with bicubic and re-attached (the generator only knows RGB), and 16-bit grayscale is
processed in float and returned as 16-bit. The output is assembled tile by tile in a uint8 (or
uint16) canvas, so an 8000x8000 result costs 192 MB, not a 768 MB float32 image. Any other
final scale is the model's output resized with Lanczos.

Files are written as PNG, JPEG or WebP (`save_image`), via a temporary file and a rename.
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

from srgan.data.images import UnreadableImageError, composite_on_white, gray16_to_uint8, open_image
from srgan.files import write_failure_cause
from srgan.inference.output_paths import OUTPUT_FORMATS, printable
from srgan.inference.tiles import upscale_into
from srgan.models.generator import Generator

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, the weights of PIL's convert("L")
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Modes converted before upscaling; anything not listed and not 16-bit becomes RGB.
MODE_CONVERSIONS = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB"}
KEPT_MODES = {"L", "LA", "RGB", "RGBA"}
DEFAULT_QUALITY = 95  # JPEG and WebP: upscaled detail is what the output is for
# Twice the largest model scale (x8): beyond it a Lanczos resize only adds pixels, and the
# output's size (and memory) grows with its square.
MAX_OUTSCALE = 16


def output_mode(image: Image.Image) -> str:
    """The mode `upscale` returns for `image`: one of KEPT_MODES, or "I;16" for 16-bit gray."""
    if image.mode in KEPT_MODES:
        return image.mode
    if image.mode in SIXTEEN_BIT_MODES:
        return "I;16"
    if image.mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    return MODE_CONVERSIONS.get(image.mode, "RGB")


def _normalise(image: Image.Image) -> Image.Image:
    """The image in one of KEPT_MODES or SIXTEEN_BIT_MODES."""
    if image.mode in KEPT_MODES or image.mode in SIXTEEN_BIT_MODES:
        return image
    return image.convert(output_mode(image))


def _run_model(generator: Generator, image: Image.Image, **tiling) -> Image.Image:
    """A normalised image upscaled by `generator.scale`, in its own mode."""
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

    upscale_into(generator, lr_image, write, **tiling)
    if alpha is not None:
        canvas[..., -1] = np.asarray(alpha.resize((width, height), Image.Resampling.BICUBIC))
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def upscale(
    generator: Generator,
    image: Image.Image,
    *,
    outscale: float | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> Image.Image:
    """Upscale a PIL image by `generator.scale`; `srgan.inference.tiles.upscale_into` tiles it.

    `outscale` (default: the model's scale) gives the final size, `outscale` times the input's:
    the model's output is resized to it with Lanczos. The EXIF orientation is applied first (the
    output carries no EXIF). Output modes: L, LA, RGB, RGBA as the input (palette images become
    RGB, or RGBA with transparency; other colour spaces become RGB); 16-bit grayscale ("I;16",
    "I") becomes "I;16".
    """
    image = ImageOps.exif_transpose(image)
    # An ICC profile describes the input's colour space: it still holds unless that was not
    # RGB or gray (CMYK, LAB, ...) and got converted.
    keeps_profile = image.mode in KEPT_MODES | SIXTEEN_BIT_MODES | MODE_CONVERSIONS.keys() | {"P"}
    icc_profile = image.info.get("icc_profile") if keeps_profile else None
    if outscale is not None and not 0 < outscale <= MAX_OUTSCALE:  # also refuses NaN
        raise ValueError(
            f"the output scale must be above 0 and at most {MAX_OUTSCALE}, not {outscale}"
        )
    width, height = image.size
    result = _run_model(
        generator,
        _normalise(image),
        tile=tile,
        tile_overlap=tile_overlap,
        precision=precision,
        progress=progress,
    )
    if outscale is not None and outscale != generator.scale:
        size = (max(round(width * outscale), 1), max(round(height * outscale), 1))
        result = result.resize(size, Image.Resampling.LANCZOS)
    if icc_profile:
        result.info["icc_profile"] = icc_profile
    return result


def convert_for_format(image: Image.Image, extension: str) -> tuple[Image.Image, bool]:
    """`image` in a mode that `extension` (of OUTPUT_FORMATS) stores; whether alpha was flattened.

    PNG stores every mode `upscale` returns. JPEG and WebP store 8 bits: 16-bit gray keeps its
    top 8 bits (PIL's convert() would clip every value above 255 to white). JPEG has no alpha
    channel, so transparency is composited on white; WebP keeps it.
    """
    if extension == "png":
        return image, False
    icc_profile = image.info.get("icc_profile")
    flattened = extension == "jpg" and image.mode in ("LA", "RGBA")
    if image.mode in SIXTEEN_BIT_MODES:
        image = Image.fromarray(gray16_to_uint8(image))
    elif flattened:
        image = composite_on_white(image).convert("L" if image.mode == "LA" else "RGB")
    if icc_profile:
        image.info["icc_profile"] = icc_profile
    return image, flattened


def save_image(image: Image.Image, path: Path, quality: int = DEFAULT_QUALITY) -> None:
    """Write `image` in the format of `path`'s extension (see `convert_for_format` for the mode)
    via a temp file and rename, so an interrupted run leaves no partial output (which a later
    run would then refuse to overwrite). `quality` (1-100) applies to JPEG and WebP."""
    format_name = OUTPUT_FORMATS[path.suffix[1:].lower()]
    options: dict = {"icc_profile": image.info.get("icc_profile")}
    if format_name == "JPEG":
        # No chroma subsampling: halving the colour resolution would undo part of the upscale.
        options.update(quality=quality, subsampling=0)
    elif format_name == "WEBP":
        options.update(quality=quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600), an image should get the usual mode.
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        image.save(temp_path, format=format_name, **options)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


@dataclass
class UpscaleSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output existed, --overwrite not given
    failed: list[Path] = field(default_factory=list)  # not an image, or corrupt
    unwritten: list[Path] = field(default_factory=list)  # upscaled, but saving it failed
    output_pixels: int = 0
    seconds: float = 0.0

    def describe(self, output: Path) -> str:
        """The closing line: what was written to `output`, how fast, and what was not."""
        notes = [f"{len(self.skipped)} skipped (output exists)"] if self.skipped else []
        notes += [f"{len(self.failed)} failed (unreadable)"] if self.failed else []
        notes += [f"{len(self.unwritten)} not written"] if self.unwritten else []
        rate = self.output_pixels / 1e6 / max(self.seconds, 1e-9)
        return (
            f"wrote {len(self.written)} image(s) to {printable(output)} in {self.seconds:.1f} s "
            f"({rate:.2f} output MP/s)" + "".join(f"; {note}" for note in notes)
        )


def _save_result(
    result: Image.Image,
    input_path: Path,
    output_path: Path,
    quality: int,
    summary: UpscaleSummary,
) -> None:
    """Write one result in its output's format, recording in `summary` whether it was written."""
    result, flattened = convert_for_format(result, output_path.suffix[1:].lower())
    if flattened:
        tqdm.write(
            f"warning: {printable(input_path)} has transparency, which JPEG cannot store: "
            "composited on white (--ext png or webp keeps it)",
            file=sys.stderr,
        )
    try:
        save_image(result, output_path, quality)
    except (OSError, ValueError) as error:  # a full disk, or PIL refusing e.g. its size
        tqdm.write(
            f"warning: skipping {printable(input_path)}: could not write "
            f"{printable(output_path)}: {write_failure_cause(error)}",
            file=sys.stderr,
        )
        summary.unwritten.append(input_path)
        return
    summary.written.append(output_path)
    summary.output_pixels += result.width * result.height


def upscale_files(
    generator: Generator,
    pairs: list[tuple[Path, Path]],
    *,
    overwrite: bool = False,
    outscale: float | None = None,
    quality: int = DEFAULT_QUALITY,
    tile: int | None = None,
    tile_overlap: int | None = None,
    precision: str = "fp32",
    progress: bool = True,
) -> UpscaleSummary:
    """Upscale each (input, output) pair, in the format of the output's extension; unreadable
    inputs and results that cannot be written are reported and skipped (the batch goes on),
    transparency flattened for JPEG is reported."""
    summary = UpscaleSummary()
    start = time.perf_counter()
    for input_path, output_path in tqdm(pairs, unit="image", disable=not progress):
        if output_path.exists() and not overwrite:
            tqdm.write(
                f"skipping {printable(input_path)}: {printable(output_path)} exists "
                "(--overwrite replaces it)"
            )
            summary.skipped.append(input_path)
            continue
        try:
            image = open_image(input_path)
        except UnreadableImageError as error:
            tqdm.write(f"warning: skipping unreadable image {printable(error)}", file=sys.stderr)
            summary.failed.append(input_path)
            continue
        result = upscale(
            generator,
            image,
            outscale=outscale,
            tile=tile,
            tile_overlap=tile_overlap,
            precision=precision,
            progress=progress,
        )
        _save_result(result, input_path, output_path, quality, summary)
    summary.seconds = time.perf_counter() - start
    return summary
