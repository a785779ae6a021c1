"""Pictures: curves.png (ticks, log scale, both stages on one step axis) and panel captions."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from srgan.eval.panels import caption_font, fit_width
from srgan.run import plotting
from srgan.run.plotting import (
    build_panels,
    format_step,
    format_tick,
    plot_curves,
    uses_log_scale,
)
from srgan.ticks import linear_ticks, log_ticks

PRETRAIN_STEPS, GAN_STEPS = 600, 300


def two_stage_rows() -> list[dict]:
    """Metrics rows as the two stages write them: the GAN stage counts its steps from 0 again."""
    rows = []
    for step in range(20, PRETRAIN_STEPS + 1, 20):
        row = {"stage": "pretrain", "step": step, "loss/pixel": 0.1 / step**0.5, "lr": 1e-4}
        rows.append(row | ({"valid/psnr_y": 20 + step / 100} if step % 100 == 0 else {}))
    for step in range(20, GAN_STEPS + 1, 20):
        losses = {"content": 0.02, "pixel": 0.005, "adversarial": 1.5, "discriminator": 0.7}
        row = {"stage": "gan", "step": step, "loss/d_real": 0.8, "loss/d_fake": 0.2}
        row |= {f"loss/{name}": value for name, value in losses.items()}
        rows.append(row | ({"valid/psnr_y": 25.5} if step % 100 == 0 else {}))
    return rows


def test_linear_ticks_are_round_and_cover_the_range() -> None:
    assert linear_ticks(0, 30000, target=8) == [5000.0 * index for index in range(7)]
    assert linear_ticks(26.2, 30.7) == pytest.approx([26, 27, 28, 29, 30, 31])
    steps_of_two = [0.0199 + 0.00002 * index for index in range(6)]
    assert linear_ticks(0.0199, 0.02) == pytest.approx(steps_of_two)
    flat = linear_ticks(25.0, 25.0)  # one value: a range around it, not a division by zero
    assert flat[0] < 25 < flat[-1]


def test_log_ticks_and_labels() -> None:
    # Up to three decades: 1, 2 and 5 times each power of ten, from below to above the data.
    assert log_ticks(0.0031, 0.052) == pytest.approx([2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1])
    # More: powers of ten only.
    assert log_ticks(0.0015, 3.0) == pytest.approx([1e-3, 1e-2, 1e-1, 1, 10])
    labels = [format_tick(tick, log_scale=True) for tick in (1e-3, 5e-4, 0.2, 1, 100, 2e4)]
    assert labels == ["1e-3", "5e-4", "0.2", "1", "100", "2e4"]
    assert format_tick(28.5, step=0.5) == "28.5" and format_tick(30, step=1) == "30"
    assert format_tick(0.0196, step=0.0002) == "0.0196"
    step_labels = {0: "0", 750: "750", 2500: "2.5k", 120000: "120k", 1.5e6: "1.5M"}
    assert {step: format_step(step) for step in step_labels} == step_labels


def test_log_scale_only_where_values_span_a_decade() -> None:
    assert uses_log_scale([0.004, 0.02, 0.09])
    assert not uses_log_scale([0.015, 0.09])  # a factor of 6
    assert not uses_log_scale([0.0, 0.5, 20.0])  # zero has no logarithm
    assert not uses_log_scale([])


def test_gan_steps_follow_pretraining_on_one_axis() -> None:
    panels, boundary = build_panels(two_stage_rows())
    assert boundary == PRETRAIN_STEPS
    losses, discriminator, validation = panels
    assert losses.log_scale and "log scale" in losses.title
    pixel_steps = [(x, stage) for x, _, stage in losses.series["pixel"]]
    assert pixel_steps[0] == (20, "pretrain")
    assert pixel_steps[-1] == (PRETRAIN_STEPS + GAN_STEPS, "gan")
    assert set(discriminator.series) == {"D(real)", "D(fake)"}  # not among the losses
    assert "d_real" not in losses.series and "lr" not in losses.series
    assert [x for x, _, _ in validation.series["PSNR-Y"]][-1] == PRETRAIN_STEPS + GAN_STEPS
    # One stage alone: no boundary, steps as logged.
    pretrain_only = [row for row in two_stage_rows() if row["stage"] == "pretrain"]
    panels, boundary = build_panels(pretrain_only)
    assert boundary is None and len(panels) == 2


def dashed_columns(image: np.ndarray, top: int, bottom: int) -> list[int]:
    """Columns with a dashed vertical line in rows top..bottom: runs of gray, then white."""
    rows = image[top:bottom].astype(int)
    neutral = rows.max(axis=2) - rows.min(axis=2) < 10  # the curves are coloured
    gray = (neutral & (rows.max(axis=2) < 200)).mean(axis=0)
    white = (rows > 240).all(axis=2).mean(axis=0)
    return [int(column) for column in np.nonzero((gray > 0.25) & (white > 0.25))[0]]


def test_curves_png_draws_both_stages_and_the_boundary(tmp_path: Path) -> None:
    plot_curves(two_stage_rows(), tmp_path / "logs" / "curves.png")
    with Image.open(tmp_path / "logs" / "curves.png") as written:
        image = np.asarray(written.convert("RGB"))
    assert image.shape == (3 * plotting.PANEL_HEIGHT, plotting.WIDTH, 3)
    plot_width = plotting.WIDTH - plotting.RIGHT - plotting.LEFT
    boundary_x = plotting.LEFT + PRETRAIN_STEPS / (PRETRAIN_STEPS + GAN_STEPS) * plot_width
    for panel in range(3):  # the dashed line is in every panel, at the last pretraining step
        top = panel * plotting.PANEL_HEIGHT + plotting.TOP + 60
        columns = dashed_columns(image, top, top + 120)
        assert columns and all(abs(column - boundary_x) <= 1 for column in columns), panel

    plot_curves([row for row in two_stage_rows() if row["stage"] == "gan"], tmp_path / "gan.png")
    with Image.open(tmp_path / "gan.png") as written:
        image = np.asarray(written.convert("RGB"))
    top = plotting.TOP + 60
    assert image.shape[0] == 3 * plotting.PANEL_HEIGHT and not dashed_columns(image, top, top + 120)


def test_no_rows_draws_an_empty_panel(tmp_path: Path) -> None:
    plot_curves([], tmp_path / "curves.png")
    with Image.open(tmp_path / "curves.png") as written:
        assert written.size == (plotting.WIDTH, plotting.PANEL_HEIGHT)


def test_validation_niqe_and_grid_score_get_their_own_panel() -> None:
    rows = two_stage_rows()
    for row in rows:
        if "valid/psnr_y" in row:
            row |= {"valid/niqe": 7.5 - row["step"] / 1000, "valid/grid_percent": 3.1}
    panels, _ = build_panels(rows)
    assert len(panels) == 4
    naturalness = panels[3]
    assert "NIQE" in naturalness.title and set(naturalness.series) == {"NIQE", "grid (%)"}
    assert naturalness.series["NIQE"][0] == (100, 7.4, "pretrain")
    assert naturalness.series["grid (%)"][-1] == (PRETRAIN_STEPS + GAN_STEPS, 3.1, "gan")
    assert "NIQE" not in panels[2].series  # the PSNR panel keeps its dB axis


def test_long_captions_keep_their_end_and_fit_the_panel() -> None:
    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), caption_font()
    name = "srgan_x4_srgan_mse_291_step00001500"
    assert draw.textlength(name, font=font) > 256  # too wide for a 256 px panel
    fitted = fit_width(draw, name, font, 256)
    assert fitted.startswith("…") and fitted.endswith("_step00001500")
    assert draw.textlength(fitted, font=font) <= 256
    assert fit_width(draw, "bicubic", font, 256) == "bicubic"


def test_validation_panel_shows_bicubic_beside_the_model() -> None:
    rows = two_stage_rows()
    for row in rows:
        if "valid/psnr_y" in row:
            row["valid/bicubic_psnr_y"] = 24.0
    panels, _ = build_panels(rows)
    assert set(panels[2].series) == {"PSNR-Y", "bicubic"}
    assert {value for _, value, _ in panels[2].series["bicubic"]} == {24.0}
