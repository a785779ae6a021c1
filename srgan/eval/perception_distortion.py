"""The perception-distortion picture of `scripts/evaluate.py --strengths`, one per dataset.

PSNR-Y (up: less distortion) against NIQE (drawn decreasing to the right: more natural), so
the better corner is the top right (Blau and Michaeli, "The Perception-Distortion Tradeoff",
CVPR 2018, draw the same plane). Each interpolated SRGAN is a line through its strengths, each
point labelled with S and its grid score; every other row with both numbers (bicubic, other
checkpoints, --outputs) is a labelled grey square, and the HR images' NIQE a dashed line.
Drawn with PIL, as the training curves are: no plotting dependency.
"""

import warnings
from pathlib import Path

from PIL import Image, ImageDraw

from srgan.eval.panels import caption_font
from srgan.eval.protocol import REFERENCE
from srgan.ticks import linear_ticks

WIDTH, HEIGHT = 1040, 660
LEFT, TOP, RIGHT, BOTTOM = 80, 60, 780, 590  # the plot area
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
INK, GRID, MUTED = (0, 0, 0), (228, 228, 228), (110, 110, 110)
LABEL_ROOM = 200  # pixels a point's label may take to its right

Curves = dict[str, dict[float, str]]  # interpolated checkpoint's name: {strength: row name}


def _label(name: str, means: dict) -> str:
    grid = means.get("grid_percent")
    return name if grid is None else f"{name}, grid {grid:.2f}%"


def _label_at(x: float, y: float, right_of: str, left_of: str) -> tuple[tuple[float, float], str]:
    """Where a point's label goes and its anchor: right of the point, or left of it near the
    plot's right edge, where it would run into the legend."""
    if x < RIGHT - LABEL_ROOM:
        return (x + 8, y), right_of
    return (x - 8, y), left_of


def _placed(means: dict) -> bool:
    return means.get("psnr_y") is not None and means.get("niqe") is not None


class _Plane:
    """Data coordinates (NIQE, PSNR-Y) to pixels over the given ticks, NIQE reversed."""

    def __init__(self, niqe_ticks: list[float], psnr_ticks: list[float]) -> None:
        self.niqe_ticks, self.psnr_ticks = niqe_ticks, psnr_ticks

    def x(self, niqe: float) -> float:
        low, high = self.niqe_ticks[0], self.niqe_ticks[-1]
        return LEFT + (high - niqe) / (high - low) * (RIGHT - LEFT)

    def y(self, psnr: float) -> float:
        low, high = self.psnr_ticks[0], self.psnr_ticks[-1]
        return BOTTOM - (psnr - low) / (high - low) * (BOTTOM - TOP)


def _draw_axes(draw: ImageDraw.ImageDraw, plane: _Plane, font, title: str) -> None:
    """Title, grid, tick labels and axis names."""
    draw.text((LEFT, 16), title, fill=INK, font=caption_font(17))
    for tick in plane.psnr_ticks:
        y = plane.y(tick)
        draw.line([(LEFT, y), (RIGHT, y)], fill=GRID)
        draw.text((LEFT - 8, y), f"{tick:g}", fill=INK, font=font, anchor="rm")
    for tick in plane.niqe_ticks:
        x = plane.x(tick)
        draw.line([(x, TOP), (x, BOTTOM)], fill=GRID)
        draw.text((x, BOTTOM + 8), f"{tick:g}", fill=INK, font=font, anchor="mt")
    draw.rectangle([LEFT, TOP, RIGHT, BOTTOM], outline=INK)
    draw.text((LEFT, TOP - 8), "PSNR-Y (dB)", fill=INK, font=font, anchor="ls")
    axis = "NIQE (lower, to the right: more natural)"
    draw.text(((LEFT + RIGHT) / 2, BOTTOM + 32), axis, fill=INK, font=font, anchor="mt")


def _draw_rows(
    draw: ImageDraw.ImageDraw, plane: _Plane, font, methods: dict[str, dict], curves: Curves
) -> None:
    """The HR line, the reference squares, then each curve with its labelled points."""
    hr_niqe = methods.get(REFERENCE, {}).get("niqe")
    if hr_niqe is not None:
        x = plane.x(hr_niqe)
        for y in range(TOP, BOTTOM, 10):
            draw.line([(x, y), (x, min(y + 5, BOTTOM))], fill=MUTED, width=2)
        draw.text((x - 4, TOP + 4), f"HR {hr_niqe:.2f}", fill=MUTED, font=font, anchor="ra")
    interpolated = {row for rows in curves.values() for row in rows.values()}
    for name, means in methods.items():
        if name not in interpolated and _placed(means):
            x, y = plane.x(means["niqe"]), plane.y(means["psnr_y"])
            draw.rectangle([x - 4, y - 4, x + 4, y + 4], fill=MUTED)
            position, anchor = _label_at(x, y, "lm", "rm")
            draw.text(position, _label(name, means), fill=MUTED, font=font, anchor=anchor)
    for index, rows in enumerate(curves.values()):
        color = COLORS[index % len(COLORS)]
        placed = [(s, methods[row]) for s, row in sorted(rows.items()) if _placed(methods[row])]
        pixels = [(plane.x(m["niqe"]), plane.y(m["psnr_y"])) for _, m in placed]
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2, joint="curve")
        for (strength, means), (x, y) in zip(placed, pixels, strict=True):
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)
            position, anchor = _label_at(x, y - 6, "ls", "rs")
            draw.text(
                position, _label(f"S={strength:g}", means), fill=color, font=font, anchor=anchor
            )


def _draw_legend(draw: ImageDraw.ImageDraw, font, curves: Curves, unplaced: list[str]) -> None:
    """Each curve's name, what S means, and the rows left out for want of a NIQE."""
    lines = [(name, COLORS[index % len(COLORS)]) for index, name in enumerate(curves)]
    lines += [("S=0: SRResNet, S=1: SRGAN", MUTED), ("squares: other rows", MUTED)]
    lines += [("dashed: the HR images' NIQE", MUTED)]
    if unplaced:
        lines.append(("not drawn (no NIQE):", MUTED))
        lines += [(f"  {name}", MUTED) for name in unplaced]
    for index, (text, color) in enumerate(lines):
        draw.text((RIGHT + 16, TOP + 4 + 20 * index), text, fill=color, font=font)


def plot_perception_distortion(
    methods: dict[str, dict], curves: Curves, title: str, path: Path
) -> bool:
    """Draw one dataset's rows (`methods`: {row name: `srgan.eval.protocol.mean_metrics`}) as
    the PNG `path`, see the module docstring; False, writing nothing, where no interpolated row
    has both a PSNR-Y and a NIQE (NIQE needs images of 96 px and more after the border crop)."""
    interpolated = [row for rows in curves.values() for row in rows.values()]
    if not any(_placed(methods[row]) for row in interpolated):
        return False
    shown = {name: means for name, means in methods.items() if _placed(means)}
    niqe_values = [means["niqe"] for means in shown.values()]
    hr_niqe = methods.get(REFERENCE, {}).get("niqe")
    niqe_values += [hr_niqe] if hr_niqe is not None else []
    psnr_values = [means["psnr_y"] for means in shown.values()]
    plane = _Plane(
        linear_ticks(min(niqe_values), max(niqe_values)),
        linear_ticks(min(psnr_values), max(psnr_values)),
    )
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = caption_font(13)
    _draw_axes(draw, plane, font, title)
    _draw_rows(draw, plane, font, methods, curves)
    unplaced = [name for name, means in methods.items() if name != REFERENCE and name not in shown]
    _draw_legend(draw, font, curves, unplaced)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return True


def write_pictures(results: dict[str, dict], curves: Curves, folder: Path) -> bool:
    """`folder`/<dataset>.png for each dataset of `results` ({dataset: {row name: means}}),
    a warning for each without one; whether any was written."""
    written = False
    for dataset, methods in results.items():
        title = f"{dataset}: PSNR-Y against NIQE, SRResNet (S=0) to SRGAN (S=1)"
        if plot_perception_distortion(methods, curves, title, folder / f"{dataset}.png"):
            written = True
            continue
        warnings.warn(
            f"{dataset}: no perception-distortion picture: no interpolated row has a NIQE (it "
            "needs images of at least 96 px on a side after the border crop)",
            stacklevel=2,
        )
    return written
