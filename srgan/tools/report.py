"""Writing evaluation results: results.json, a markdown table, per-image CSV, comparison PNGs."""

import csv
import json
from pathlib import Path

import numpy as np

from srgan.evaluation import METRIC_NAMES
from srgan.panels import comparison_image


def write_results(results: dict, per_image: list[dict], out_dir: Path) -> None:
    """results: {dataset: {method: {psnr_y, ssim_y, psnr_rgb, ssim_rgb, num_images}}}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(results_table(results))
    with (out_dir / "per_image.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["dataset", "method", "image", *METRIC_NAMES])
        writer.writeheader()
        writer.writerows(per_image)


def results_table(results: dict) -> str:
    """Markdown: one row per (dataset, method), PSNR/SSIM on Y (the protocol) and on RGB."""
    lines = [
        "| dataset | method | images | PSNR-Y (dB) | SSIM-Y | PSNR-RGB (dB) | SSIM-RGB |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, methods in results.items():
        for method, m in methods.items():
            lines.append(
                f"| {dataset} | {method} | {m['num_images']} | {m['psnr_y']:.2f} | "
                f"{m['ssim_y']:.4f} | {m['psnr_rgb']:.2f} | {m['ssim_rgb']:.4f} |"
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
