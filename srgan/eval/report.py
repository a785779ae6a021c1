"""Writing evaluation results: results.json (with provenance), a markdown and a LaTeX table,
per-image CSV, comparison PNGs.

A metric an image does not have (NIQE under 96 px; anything but NIQE for the HR row) is null
in JSON, empty in the CSV and "—" in the markdown table; means are over the images that have
it, and a NIQE mean over only some of a set's images says how many. A row that covers only
some of a set's images (an --outputs folder without the others) says "k of n" in its images
column; `dataset_images` (n) is in results.json beside `num_images` (k).
"""

import csv
import json
from pathlib import Path

import numpy as np

from srgan.eval.latex_table import covers_part, latex_table
from srgan.eval.panels import comparison_image
from srgan.eval.protocol import METRIC_NAMES

MISSING = "—"


def write_results(results: dict, per_image: list[dict], out_dir: Path, provenance: dict) -> None:
    """results: {dataset: {method: `srgan.eval.protocol.mean_metrics`}}; provenance: see
    `srgan.eval.provenance`. results.json is {"provenance": ..., "results": results}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"provenance": provenance, "results": results}
    (out_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (out_dir / "results.md").write_text(results_table(results))
    (out_dir / "results.tex").write_text(latex_table(results, provenance["protocol"]))
    with (out_dir / "per_image.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["dataset", "method", "image", *METRIC_NAMES])
        writer.writeheader()
        writer.writerows(per_image)  # None is written as an empty field


def number(value: float | None, digits: int, factor: float = 1.0) -> str:
    """`value * factor` with `digits` decimals, or the missing mark."""
    return MISSING if value is None else f"{value * factor:.{digits}f}"


def images_cell(means: dict) -> str:
    """The row's image count, "k of n" when it covers only k of the set's n images."""
    cell = str(means["num_images"])
    return f"{cell} of {means['dataset_images']}" if covers_part(means) else cell


def niqe_cell(means: dict) -> str:
    """The NIQE mean, with (k/n) when only k of the n images have a score."""
    cell = number(means["niqe"], 2)
    if means["niqe"] is not None and means["niqe_images"] < means["num_images"]:
        cell += f" ({means['niqe_images']}/{means['num_images']})"
    return cell


def results_table(results: dict) -> str:
    """Markdown: one row per (dataset, method): PSNR/SSIM on Y (the protocol), NIQE (lower is
    more natural), the grid score in %, then PSNR/SSIM on RGB. The HR row has NIQE only."""
    lines = [
        "| dataset | method | images | PSNR-Y (dB) | SSIM-Y | NIQE | grid (%) | PSNR-RGB (dB) "
        "| SSIM-RGB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    partial = covered = False
    for dataset, methods in results.items():
        for method, m in methods.items():
            partial |= m["niqe_images"] < m["num_images"]
            covered |= covers_part(m)
            lines.append(
                f"| {dataset} | {method} | {images_cell(m)} | {number(m['psnr_y'], 2)} | "
                f"{number(m['ssim_y'], 4)} | {niqe_cell(m)} | {number(m['grid_percent'], 2)} | "
                f"{number(m['psnr_rgb'], 2)} | {number(m['ssim_rgb'], 4)} |"
            )
    lines.append("")
    lines.append(
        "NIQE (Mittal et al. 2013) on Y with the same border crop; grid: share of the SR - HR "
        "error's spectral energy at the pixel-shuffle periods (2 and 4 px)."
    )
    if partial:
        lines.append(
            "NIQE (k/n): mean over the k of n images at least 96 px on a side after the crop; "
            f"{MISSING}: no image has one."
        )
    if covered:
        lines.append(
            "images k of n: the row has SR images for only k of the set's n images; its means "
            "are over those k, so they compare with the other rows only roughly."
        )
    return "\n".join(lines) + "\n"


def write_comparisons(
    images: dict[str, dict[str, np.ndarray]],
    rows: list[dict],
    hr_images: dict[str, np.ndarray],
    out_dir: Path,
) -> list[Path]:
    """One PNG per image: the same crop of every method's output and the HR, with PSNR/SSIM."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = {(row["method"], row["image"]): row for row in rows}
    written = []
    for image_name, outputs in images.items():
        panels = []
        for method, sr_image in outputs.items():
            row = scores[(method, image_name)]
            panels.append((f"{method}\n{row['psnr_y']:.2f} dB / {row['ssim_y']:.3f}", sr_image))
        panels.append(("HR", hr_images[image_name]))
        path = out_dir / f"{Path(image_name).stem}_comparison.png"
        comparison_image(hr_images[image_name], panels).save(path)
        written.append(path)
    return written
