"""Training curves as a PNG, drawn with PIL so plotting needs no extra dependency."""

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: dict[str, list[tuple[float, float]]],
) -> None:
    left, top, right, bottom = box
    font = ImageFont.load_default()
    draw.rectangle(box, outline=(0, 0, 0))
    draw.text((left + 4, top - 14), title, fill=(0, 0, 0), font=font)
    points = [p for values in series.values() for p in values]
    if not points:
        draw.text((left + 8, top + 8), "no data yet", fill=(120, 120, 120), font=font)
        return
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_min, y_max = min(p[1] for p in points), max(p[1] for p in points)
    x_span, y_span = (x_max - x_min) or 1.0, (y_max - y_min) or 1.0
    draw.text((left + 4, top + 2), f"{y_max:.4g}", fill=(80, 80, 80), font=font)
    draw.text((left + 4, bottom - 12), f"{y_min:.4g}", fill=(80, 80, 80), font=font)
    draw.text((right - 60, bottom + 2), f"step {x_max:.0f}", fill=(80, 80, 80), font=font)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (
            left + 4 + (x - x_min) / x_span * (right - left - 8),
            bottom - 4 - (y - y_min) / y_span * (bottom - top - 8),
        )

    for index, (name, values) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        pixels = [to_pixel(x, y) for x, y in values]
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2)
        for x, y in pixels[-1:] if len(pixels) > 1 else pixels:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
        draw.text((right - 150, top + 4 + 12 * index), name, fill=color, font=font)


def plot_curves(rows: list[dict], path: Path) -> None:
    """log10 of the loss terms (top) and validation PSNR-Y (bottom), one colour per series.

    The x axis is the step across both stages: GAN steps continue after the last pretraining
    step, so the two stages sit side by side instead of on top of each other.
    """
    losses: dict[str, list[tuple[float, float]]] = {}
    psnr: dict[str, list[tuple[float, float]]] = {}
    pretrain_steps = max((r["step"] for r in rows if r.get("stage") == "pretrain"), default=0)
    for row in rows:
        prefix = row.get("stage", "")
        x = row["step"] + (pretrain_steps if prefix == "gan" else 0)
        for key, value in row.items():
            if key.startswith("loss/") and value > 0:
                losses.setdefault(f"{prefix} {key[5:]}", []).append((x, math.log10(value)))
            elif key == "valid/psnr_y":
                psnr.setdefault(f"{prefix} PSNR-Y (dB)", []).append((x, value))
    image = Image.new("RGB", (800, 600), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    _panel(draw, (40, 30, 780, 280), "training losses (log10)", losses)
    _panel(draw, (40, 330, 780, 580), "validation", psnr)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
