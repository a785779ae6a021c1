"""Labelled side-by-side image panels: evaluation comparisons and training sample strips.

The region shown is the most textured window of the HR image, where SR methods differ
visibly (as in the SRGAN paper's figures); crops are enlarged with nearest neighbour so the
details being compared are not smoothed.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srgan.eval.metrics import gray_from_rgb

PANEL_GAP = 8  # white pixels between panels and around captions
CAPTION_FONT_SIZE = 16


def caption_font(size: int = CAPTION_FONT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 only has the small fixed-size bitmap font
        return ImageFont.load_default()


def texture_window(hr_image: np.ndarray, crop_size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the crop_size window with the most gradient energy.

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


def fit_width(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, or its longest ending that fits in `width` pixels after a leading ellipsis."""
    if draw.textlength(text, font=font) <= width:
        return text
    for start in range(1, len(text)):
        shortened = "…" + text[start:]
        if draw.textlength(shortened, font=font) <= width:
            return shortened
    return "…"


def _draw_caption(
    draw: ImageDraw.ImageDraw, caption: str, x: int, y: int, width: int, font, line_height: int
) -> None:
    """One centred line per caption line (e.g. the method, then its PSNR/SSIM); a line wider
    than the panel keeps its end (where checkpoint names differ: the step) behind an ellipsis,
    so neighbouring captions never overlap."""
    for line_index, line in enumerate(caption.split("\n")):
        line = fit_width(draw, line, font, width)
        text_width = draw.textlength(line, font=font)
        position = (x + (width - text_width) / 2, y + line_index * line_height)
        draw.text(position, line, fill="black", font=font)


def comparison_image(
    hr_image: np.ndarray,
    panels: list[tuple[str, np.ndarray]],
    crop_size: int = 128,
    zoom: int = 2,
    window: tuple[int, int, int, int] | None = None,
) -> Image.Image:
    """Side-by-side crops of `panels` [(caption, image), ...], all at the same region.

    The region is `window` (top, left, height, width), by default the most textured crop_size
    window of `hr_image`. Panels are placed left to right with PANEL_GAP pixels between them,
    so the width is len(panels) * crop_size * zoom + (len(panels) - 1) * PANEL_GAP for images
    >= crop_size.
    """
    top, left, height, width = window or texture_window(hr_image, crop_size)
    font = caption_font()
    line_height = font.getbbox("Ag")[3] + 4
    text_height = line_height * max(caption.count("\n") + 1 for caption, _ in panels)
    panel_height, panel_width = height * zoom, width * zoom
    canvas_size = (
        len(panels) * panel_width + (len(panels) - 1) * PANEL_GAP,
        panel_height + text_height + 2 * PANEL_GAP,
    )
    canvas = Image.new("RGB", canvas_size, "white")
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
        _draw_caption(draw, caption, x, panel_height + PANEL_GAP, panel_width, font, line_height)
    return canvas


def stack_rows(rows: list[Image.Image], title: str = "") -> Image.Image:
    """Images stacked top to bottom on white, under an optional one-line title."""
    font = caption_font()
    title_height = font.getbbox("Ag")[3] + 2 * PANEL_GAP if title else 0
    width = max(row.width for row in rows)
    height = title_height + sum(row.height for row in rows)
    canvas = Image.new("RGB", (width, height), "white")
    if title:
        ImageDraw.Draw(canvas).text((PANEL_GAP, PANEL_GAP), title, fill="black", font=font)
    y = title_height
    for row in rows:
        canvas.paste(row, (0, y))
        y += row.height
    return canvas
