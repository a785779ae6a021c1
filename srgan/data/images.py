"""Image files -> uint8 arrays: one set of rules for training, validation, evaluation, upscaling.

Every reader of the package goes through `read_image`, whose one option says what happens to
grayscale files:
- `keep_gray=False` (training crops): everything becomes HxWx3 RGB;
- `keep_gray=True` (validation and evaluate.py): a gray file stays HxW, because the standard
  SR protocol scores a gray image on its own values, not on the 16-235 Y of an RGB copy.
Both composite transparency on white and keep the top 8 bits of 16-bit files.
"""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")
# Default bound on a training or validation image, read from its header before decoding (the
# paper has none; data.max_image_pixels, whose default tests keep equal): about 4x the largest
# DIV2K image (2040x2040, 4.2 MP), 48 MB as 8-bit RGB, so no real dataset meets it, while an
# 87 KB PNG that decodes to 9500x9500 (270 MB, then float copies) is refused.
MAX_IMAGE_PIXELS = 16_000_000


class UnreadableImageError(OSError):
    """A file that is not an image or cannot be decoded; the message names it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class ImageTooLargeError(UnreadableImageError):
    """An image whose header declares more pixels than its reader allows (never decoded)."""


def pixel_limit_problem(width: int, height: int, max_pixels: int) -> str | None:
    """Why a `width` x `height` image exceeds `max_pixels`, or None when it does not."""
    pixels = width * height
    if pixels <= max_pixels:
        return None
    amount = f"{pixels / 1e6:.1f} megapixels" if pixels >= 1e6 else f"{pixels:,} pixels"
    return f"{width}x{height} is {amount}, more than the limit of {max_pixels:,}"


def find_images(folder: str | Path) -> list[Path]:
    """Regular image files directly inside `folder` (or links to them), sorted by name.

    Only regular files: opening a FIFO named x.png would block the reader forever.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder {folder} does not exist (scripts/download_data.py fetches the known "
            "datasets: see data/README.md)"
        )
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def other_files(folder: str | Path) -> list[Path]:
    """What `find_images` leaves out of `folder` but a user may have meant as data: files of
    other types and entries that are not regular files (FIFOs, sockets, devices); hidden ones
    (e.g. `.complete`) and subfolders are not listed."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if not p.name.startswith(".")
        and not p.is_dir()
        and (p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file())
    )


def describe_other_file(path: Path) -> str:
    """'name: why it is skipped' for an entry of `other_files`."""
    reason = "not an image file" if path.is_file() else "not a regular file"
    return f"{path.name}: {reason}"


def open_image(path: Path, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode an image file; UnreadableImageError naming it if that fails.

    ImageTooLargeError, before anything is decoded, for an image of more than `max_pixels`
    (None: no bound). Of an animated or multi-page file only the first frame is read, with a
    warning naming the file.
    """
    try:
        with Image.open(path) as image:
            problem = None if max_pixels is None else pixel_limit_problem(*image.size, max_pixels)
            if problem is not None:
                raise ImageTooLargeError(path, problem)
            frames = image.n_frames if getattr(image, "is_animated", False) else 1
            image.load()  # decode now: a truncated file fails here, not halfway through
    except ImageTooLargeError:
        raise
    except (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(path, str(error)) from None
    if frames > 1:
        warnings.warn(
            f"{path} holds {frames} frames (an animation or several pages): only the first is used",
            stacklevel=2,
        )
    return image


def gray16_to_uint8(image: Image.Image) -> np.ndarray:
    """A 16-bit gray PIL image ("I;16*"; "I" holds 32-bit ints, read as 16-bit) -> HxW uint8.

    Keeps the top 8 bits, where PIL's convert() would clip every value above 255 to white.
    """
    values = np.asarray(image, dtype=np.uint32)
    if image.mode != "I" or values.max() > 255:
        values = np.minimum(values >> 8, 255)
    return values.astype(np.uint8)


def composite_on_white(image: Image.Image) -> Image.Image:
    """RGBA/LA/PA or palette-with-transparency -> RGB on white; other images unchanged.

    Dropping alpha would turn transparent regions into whatever colour they happen to store.
    """
    if image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image


def to_array(image: Image.Image, *, keep_gray: bool = False) -> np.ndarray:
    """Any PIL image -> uint8 HxWx3 RGB, or HxW for a gray image when `keep_gray`."""
    if image.mode.startswith("I"):
        gray = gray16_to_uint8(image)
    elif image.mode in GRAY_MODES:
        flat = composite_on_white(image)  # LA: gray on white, then back to one channel
        gray = np.asarray(flat.convert("L"), dtype=np.uint8)
    else:
        return np.asarray(composite_on_white(image).convert("RGB"), dtype=np.uint8)
    return gray if keep_gray else np.repeat(gray[:, :, None], 3, axis=2)


def read_image(
    path: str | Path, *, keep_gray: bool = False, max_pixels: int | None = None
) -> np.ndarray:
    """Decode an image file (see the module docstring for the two rules; `open_image` for
    `max_pixels` and animations)."""
    return to_array(open_image(Path(path), max_pixels), keep_gray=keep_gray)


def list_images(folder: Path) -> list[Path]:
    """Sorted image files directly inside `folder`; errors name the folder if missing or empty."""
    paths = find_images(folder)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {folder}")
    return paths


def warn_skipped(folder: str | Path, skipped: list[str]) -> None:
    """One warning that lists the files of `folder` a reader skipped ('name: reason' each)."""
    if skipped:
        warnings.warn(
            f"{folder}: skipped {len(skipped)} file(s): " + "; ".join(sorted(skipped)),
            stacklevel=3,
        )
