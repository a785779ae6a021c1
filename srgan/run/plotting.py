"""Training curves as a PNG, drawn with PIL so plotting needs no extra dependency.

`plot_curves` stacks up to four panels on one step axis: the loss terms (on a log scale when
they span a decade or more), the discriminator's mean outputs D(real) and D(fake) (GAN stage
only), validation PSNR-Y, and validation NIQE with the grid score in % (two numbers of similar
range, one panel: NIQE falls as outputs look more natural, and a rising grid score says how
much of that is a pixel-shuffle checkerboard). GAN steps continue after the last pretraining
step, and a dashed line marks where the GAN stage begins.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from srgan.ticks import linear_ticks, log_ticks

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
# Loss-log entries that are probabilities, not losses: they get their own 0-1 panel.
DISCRIMINATOR_OUTPUTS = {"d_real": "D(real)", "d_fake": "D(fake)"}
WIDTH, PANEL_HEIGHT = 1000, 300  # pixels; each panel's height includes its title and labels
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 42, 48  # margins of each panel's plot area
INK, GRID, MUTED = (0, 0, 0), (228, 228, 228), (90, 90, 90)
SUPERSAMPLE = 2  # drawn at twice the size, then reduced: anti-aliased lines
MAX_DOTS = 40  # a line with at most this many points gets a dot on each

Point = tuple[float, float, str]  # step on the common axis, value, stage


@dataclass
class Panel:
    title: str
    series: dict[str, list[Point]] = field(default_factory=dict)
    log_scale: bool = False
    value_range: tuple[float, float] | None = None  # fixed range; default: the data's


def uses_log_scale(values: list[float]) -> bool:
    """Whether `values` need a log axis: all positive and spanning a factor of 10 or more."""
    return bool(values) and min(values) > 0 and max(values) >= 10 * min(values)


def format_tick(value: float, log_scale: bool = False, step: float = 1.0) -> str:
    """A y tick label: "1e-3" or "0.2" style on a log axis, else just the digits `step` needs."""
    if log_scale:
        exponent = math.floor(math.log10(value) + 1e-9)
        mantissa = round(value / 10**exponent)
        if -1 <= exponent <= 2:
            return f"{mantissa * 10.0**exponent:g}"
        return f"{mantissa}e{exponent}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def format_step(step: float) -> str:
    """A step count as a short label: 750, 2.5k, 120k, 1.5M."""
    for divisor, unit in ((1e6, "M"), (1e3, "k")):
        if abs(step) >= divisor:
            return f"{step / divisor:.4g}{unit}"
    return f"{step:.4g}"


def stage_boundary(rows: list[dict]) -> int | None:
    """The last pretraining step when the rows hold both stages (GAN steps are drawn after it)."""
    stages = {row.get("stage") for row in rows}
    if not {"pretrain", "gan"} <= stages:
        return None
    return max(row["step"] for row in rows if row.get("stage") == "pretrain")


def build_panels(rows: list[dict]) -> tuple[list[Panel], int | None]:
    """The panels that have data, and the stage boundary step (see `stage_boundary`)."""
    boundary = stage_boundary(rows)
    losses = Panel("training losses")
    discriminator = Panel("discriminator outputs (GAN)", value_range=(0.0, 1.0))
    validation = Panel("validation PSNR-Y (dB)")
    naturalness = Panel("validation NIQE (lower: more natural) and grid score (%)")
    for row in rows:
        stage = row.get("stage", "")
        x = row["step"] + (boundary if boundary is not None and stage == "gan" else 0)
        for key, value in row.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            name = key.removeprefix("loss/")
            if name in DISCRIMINATOR_OUTPUTS:
                discriminator.series.setdefault(DISCRIMINATOR_OUTPUTS[name], []).append(
                    (x, value, stage)
                )
            elif key.startswith("loss/"):
                losses.series.setdefault(name, []).append((x, value, stage))
            elif key == "valid/psnr_y":
                validation.series.setdefault("PSNR-Y", []).append((x, value, stage))
            elif key == "valid/bicubic_psnr_y":  # the bar the model's PSNR is read against
                validation.series.setdefault("bicubic", []).append((x, value, stage))
            elif key == "valid/niqe":
                naturalness.series.setdefault("NIQE", []).append((x, value, stage))
            elif key in (
                "valid/grid_percent",
                "valid/grid",
            ):  # "valid/grid": a fraction, older runs
                percent = value if key == "valid/grid_percent" else 100 * value
                naturalness.series.setdefault("grid (%)", []).append((x, percent, stage))
    loss_values = [value for points in losses.series.values() for _, value, _ in points]
    losses.log_scale = uses_log_scale(loss_values)
    if losses.log_scale:
        losses.title += " (log scale)"
    panels = [panel for panel in (losses, discriminator, validation, naturalness) if panel.series]
    return panels or [losses], boundary


class _Canvas:
    """ImageDraw at SUPERSAMPLE times the size, taking final-size coordinates: reduced to the
    final size at the end, lines come out anti-aliased and as wide as asked (PIL draws wide
    polylines a pixel thinner, and without anti-aliasing)."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.fonts = {size: ImageFont.load_default(size=size * SUPERSAMPLE) for size in (13, 15)}

    def line(self, points: list[tuple[float, float]], color: tuple, width: float = 1) -> None:
        scaled = [(x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in points]
        self.draw.line(scaled, fill=color, width=round(width * SUPERSAMPLE), joint="curve")

    def dot(self, x: float, y: float, radius: float, color: tuple) -> None:
        box = [(x - radius) * SUPERSAMPLE, (y - radius) * SUPERSAMPLE]
        self.draw.ellipse(box + [(x + radius) * SUPERSAMPLE, (y + radius) * SUPERSAMPLE], color)

    def text(
        self, xy: tuple, text: str, anchor: str = "la", color: tuple = INK, size: int = 13
    ) -> None:
        position = (xy[0] * SUPERSAMPLE, xy[1] * SUPERSAMPLE)
        self.draw.text(position, text, fill=color, font=self.fonts[size], anchor=anchor)

    def text_width(self, text: str, size: int = 13) -> float:
        return self.draw.textlength(text, font=self.fonts[size]) / SUPERSAMPLE

    def rectangle(self, box: tuple[int, int, int, int]) -> None:
        left, top, right, bottom = box
        self.line([(left, top), (right, top), (right, bottom), (left, bottom), (left, top)], INK)

    def final(self) -> Image.Image:
        return self.image.reduce(SUPERSAMPLE)


def _draw_frame(canvas: _Canvas, box: tuple, panel: Panel) -> tuple[float, float]:
    """Title, y grid and tick labels; returns the y axis range (log10 of it on a log scale)."""
    left, top, right, bottom = box
    canvas.text((left, top - 26), panel.title, size=15)
    values = [value for points in panel.series.values() for _, value, _ in points]
    if panel.value_range is not None:
        ticks = linear_ticks(*panel.value_range)
    elif panel.log_scale:
        ticks = log_ticks(min(values), max(values))
    else:
        ticks = linear_ticks(min(values), max(values))
    transform = math.log10 if panel.log_scale else float
    low, high = transform(ticks[0]), transform(ticks[-1])
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for tick in ticks:
        y = bottom - (transform(tick) - low) / (high - low) * (bottom - top)
        canvas.line([(left, y), (right, y)], GRID)
        canvas.line([(left - 5, y), (left, y)], INK)
        canvas.text((left - 8, y), format_tick(tick, panel.log_scale, step), anchor="rm")
    return low, high


def _draw_boundary(canvas: _Canvas, box: tuple, x: float, title: str) -> None:
    """A dashed line at the stage boundary, "pretrain" written left of it and "GAN" right.

    A label goes above the frame, or inside it where it would run into the panel title, and
    is left out where its side of the line has no room for it (the other one says enough).
    """
    left, top, right, bottom = box
    for y in range(int(top), int(bottom), 8):
        canvas.line([(x, y), (x, min(y + 4, bottom))], MUTED, width=1.5)
    title_end = left + canvas.text_width(title, 15) + 12
    for label, start in (("pretrain", x - 6 - canvas.text_width("pretrain")), ("GAN", x + 6)):
        if start < left + 4 or start + canvas.text_width(label) > right - 4:
            continue
        canvas.text((start, top - 4 if start > title_end else top + 16), label, "ls", MUTED)


def _draw_panel(
    canvas: _Canvas,
    box: tuple[int, int, int, int],
    panel: Panel,
    x_axis: tuple[float, list[float]],
    boundary: int | None,
) -> None:
    """One panel; `x_axis` is (last step, step ticks): the step axis runs from 0 to it."""
    left, top, right, bottom = box
    x_max, x_ticks = x_axis
    if not panel.series:
        canvas.rectangle(box)
        canvas.text((left + 10, top + 10), "no data yet", color=MUTED)
        return
    low, high = _draw_frame(canvas, box, panel)

    def to_pixel_x(x: float) -> float:
        return left + x / x_max * (right - left)

    def to_pixel(x: float, value: float) -> tuple[float, float]:
        value = math.log10(value) if panel.log_scale else value
        return to_pixel_x(x), bottom - (value - low) / (high - low) * (bottom - top)

    for x in x_ticks:
        canvas.line([(to_pixel_x(x), bottom), (to_pixel_x(x), bottom + 5)], INK)
        canvas.text((to_pixel_x(x), bottom + 8), format_step(x), anchor="mt")
    if boundary is not None:
        _draw_boundary(canvas, box, to_pixel_x(boundary), panel.title)
    canvas.text((right + 14, top - 26), "last value", color=MUTED)
    for index, (name, points) in enumerate(panel.series.items()):
        color = COLORS[index % len(COLORS)]
        for stage in dict.fromkeys(stage for _, _, stage in points):  # one line per stage
            pixels = [
                to_pixel(x, value) for x, value, point_stage in points if point_stage == stage
            ]
            canvas.line(pixels, color, width=2)
            # Sparse series (validation) get a dot per point, the others one at their end.
            for x, y in pixels if len(pixels) <= MAX_DOTS else pixels[-1:]:
                canvas.dot(x, y, 2.5, color)
        legend_y = top + 8 + 20 * index
        canvas.line([(right + 14, legend_y), (right + 34, legend_y)], color, width=3)
        canvas.text((right + 40, legend_y), f"{name} {points[-1][1]:.4g}", anchor="lm")
    canvas.rectangle(box)


def plot_curves(rows: list[dict], path: Path) -> None:
    """Draw the metrics rows of a run (both stages) as `path`, a PNG; see the module docstring.

    Each legend entry ends with the series' last value.
    """
    panels, boundary = build_panels(rows)
    steps = [x for panel in panels for points in panel.series.values() for x, _, _ in points]
    x_max = max(steps, default=0) or 1
    # The axis ends at the last step, not at a round number past it; steps are whole numbers.
    x_ticks = [
        tick
        for tick in linear_ticks(0, x_max, target=8)
        if tick <= x_max * (1 + 1e-9) and tick == round(tick)
    ]
    height = PANEL_HEIGHT * len(panels)
    canvas = _Canvas(WIDTH, height)
    for index, panel in enumerate(panels):
        box = (LEFT, PANEL_HEIGHT * index + TOP, WIDTH - RIGHT, PANEL_HEIGHT * (index + 1) - BOTTOM)
        _draw_panel(canvas, box, panel, (x_max, x_ticks), boundary)
    if steps:
        axis_label = "step" + (" (GAN steps continue the pretraining count)" if boundary else "")
        canvas.text(((LEFT + WIDTH - RIGHT) / 2, height - 16), axis_label, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.final().save(path)
