"""scripts/evaluate.py end to end: a checkpoint against bicubic, files written, bad input."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import TINY_RUN_NAME, describe, run_script, smooth_image
from PIL import Image

from srgan.checkpoint import load_checkpoint, save_checkpoint
from srgan.eval.panels import PANEL_GAP
from srgan.eval.protocol import load_validation_images
from srgan.inference.weights import load_generator
from srgan.run.validation import bicubic_reference, validate_generator


def image_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_evaluate_checkpoint_writes_results_images_and_comparisons(
    pretrained_run, tiny_dataset, tmp_path
):
    checkpoint = pretrained_run.run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_final.pt"
    out = tmp_path / "results"
    args = ["--checkpoint", str(checkpoint), "--data", str(tiny_dataset.valid_dir)]
    result = run_script("evaluate.py", [*args, "--out", str(out), "--save-images"], tmp_path)
    assert result.returncode == 0, describe(result)

    results = json.loads((out / "results.json").read_text())["results"]
    dataset = tiny_dataset.valid_dir.name
    methods = results[dataset]
    assert set(methods) == {"bicubic", checkpoint.stem, "HR"}
    num_images = len(list(tiny_dataset.valid_dir.glob("*.png")))
    assert methods.pop("HR")["num_images"] == num_images
    for metrics in methods.values():
        assert metrics["num_images"] == num_images
        assert 5 < metrics["psnr_y"] < 60 and 0 < metrics["ssim_y"] <= 1
    # The bicubic numbers do not depend on the model: a 4-step model must not score the same.
    assert methods["bicubic"]["psnr_y"] != methods[checkpoint.stem]["psnr_y"]

    table = (out / "results.md").read_text()
    assert f"| {dataset} | bicubic | {num_images} | {methods['bicubic']['psnr_y']:.2f} |" in table
    with (out / "per_image.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 * num_images  # bicubic, the model, HR
    mean_from_rows = np.mean([float(r["psnr_y"]) for r in rows if r["method"] == "bicubic"])
    assert abs(mean_from_rows - methods["bicubic"]["psnr_y"]) < 1e-9

    saved = sorted((out / "images" / dataset / checkpoint.stem).glob("*.png"))
    assert len(saved) == num_images
    hr_width, hr_height = image_size(sorted(tiny_dataset.valid_dir.glob("*.png"))[0])
    assert image_size(saved[0]) == (hr_width // 4 * 4, hr_height // 4 * 4)

    comparisons = sorted((out / "comparisons" / dataset).glob("*_comparison.png"))
    assert len(comparisons) == num_images
    # Three panels (bicubic | model | HR) of the same width, with gaps between them.
    panel_width = (image_size(comparisons[0])[0] - 2 * PANEL_GAP) / 3
    assert panel_width == int(panel_width) and panel_width >= hr_width // 4 * 4


def test_evaluate_refuses_bad_input_with_one_line(pretrained_run, tiny_dataset, tmp_path):
    state = load_checkpoint(
        pretrained_run.run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_final.pt"
    )
    x2 = tmp_path / "x2.pt"
    save_checkpoint({**state, "model": {**state["model"], "scale": 2}}, x2)
    not_ours = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, not_ours)
    empty = tmp_path / "empty"
    empty.mkdir()
    data = ["--data", str(tiny_dataset.valid_dir), "--out", str(tmp_path / "out")]
    cases = {
        "wrong scale": (["--checkpoint", str(x2), *data, "--scale", "4"], "x2"),
        "not ours": (["--checkpoint", str(not_ours), *data], "not an srgan checkpoint"),
        "empty folder": (["--method", "bicubic", "--data", str(empty)], "no images"),
        "missing folder": (["--method", "bicubic", "--data", str(tmp_path / "nope")], "not found"),
    }
    for label, (args, message) in cases.items():
        result = run_script("evaluate.py", args, tmp_path)
        assert result.returncode == 2, f"{label}: {describe(result)}"
        assert message in result.stderr, f"{label}: {describe(result)}"
        assert "Traceback" not in result.stderr, label


def test_validation_scores_equal_evaluate_py_on_a_folder_with_a_gray_image(
    pretrained_run, tmp_path
):
    """Training validation runs the evaluation protocol itself: a gray image is scored on its
    own values in both (an RGB copy would be scored on 16-235 Y, about 1 dB apart)."""
    folder = tmp_path / "valid"
    folder.mkdir()
    rng = np.random.default_rng(5)
    Image.fromarray(smooth_image(rng, 64, 60)).save(folder / "colour.png")
    Image.fromarray(smooth_image(rng, 72, 68)[..., 1]).save(folder / "gray.png")
    checkpoint = pretrained_run.run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_final.pt"
    out = tmp_path / "results"
    args = ["--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(out)]
    result = run_script("evaluate.py", args, tmp_path)
    assert result.returncode == 0, describe(result)
    evaluated = json.loads((out / "results.json").read_text())["results"]["valid"][checkpoint.stem]

    images = load_validation_images(folder, scale=4)
    assert [image.hr_image.ndim for image in images] == [3, 2]
    scores = validate_generator(load_generator(checkpoint), images, 4, torch.device("cpu")).scores
    assert scores["valid/psnr_y"] == pytest.approx(evaluated["psnr_y"], abs=1e-9)
    assert scores["valid/ssim_y"] == pytest.approx(evaluated["ssim_y"], abs=1e-12)
    assert scores["valid/grid_percent"] == pytest.approx(evaluated["grid_percent"], abs=1e-10)
    assert "valid/niqe" not in scores and evaluated["niqe"] is None  # both under 96 px
    # The bicubic reference training shows beside its validation is evaluate.py's bicubic row.
    results = json.loads((out / "results.json").read_text())["results"]["valid"]
    reference = bicubic_reference(images, 4)
    assert reference["valid/bicubic_psnr_y"] == pytest.approx(
        results["bicubic"]["psnr_y"], abs=1e-9
    )
    assert reference["valid/bicubic_ssim_y"] == pytest.approx(
        results["bicubic"]["ssim_y"], abs=1e-12
    )
