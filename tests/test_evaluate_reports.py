"""What scripts/evaluate.py reports beside PSNR/SSIM: NIQE (missing under 96 px), the grid
score, the HR row, results.tex and the provenance of the numbers; end to end on a tiny model."""

import csv
import hashlib
import json
import re
from datetime import datetime, timedelta

import numpy as np
import pytest
import torch
from conftest import TINY_RUN_NAME, describe, run_script, smooth_image
from PIL import Image

from srgan.data.imresize import modcrop
from srgan.eval.grid_score import grid_score
from srgan.eval.niqe import image_niqe
from srgan.eval.protocol import load_validation_images
from srgan.inference.weights import load_generator
from srgan.run.validation import validate_generator


@pytest.fixture(scope="module")
def evaluated(pretrained_run, tmp_path_factory):
    """evaluate.py on a folder of one image with a NIQE (136x128) and one without (64x64)."""
    root = tmp_path_factory.mktemp("evaluate_reports")
    folder = root / "Mixed" / "HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    Image.fromarray(smooth_image(rng, 128, 136)).save(folder / "large.png")
    Image.fromarray(smooth_image(rng, 64, 64)).save(folder / "small.png")
    checkpoint = pretrained_run.run_dir / "checkpoints" / f"srresnet_x4_{TINY_RUN_NAME}_final.pt"
    out = root / "results"
    args = ["--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(out)]
    result = run_script("evaluate.py", [*args, "--save-images", "--device", "cpu"], root)
    assert result.returncode == 0, describe(result)
    return folder, checkpoint, out


def test_niqe_grid_and_the_hr_row_in_results_json(evaluated) -> None:
    folder, checkpoint, out = evaluated
    results = json.loads((out / "results.json").read_text())["results"]["Mixed"]
    assert list(results) == ["bicubic", checkpoint.stem, "HR"]
    hr = modcrop(np.asarray(Image.open(folder / "large.png")), 4)
    bicubic = np.asarray(Image.open(out / "images" / "Mixed" / "bicubic" / "large.png"))
    # The SR image's NIQE with the 4 px border crop, over the one image of 96 px or more.
    assert results["bicubic"]["niqe"] == pytest.approx(image_niqe(bicubic, 4), abs=1e-12)
    for method in results:
        assert (results[method]["niqe_images"], results[method]["num_images"]) == (1, 2)
    assert results["HR"]["niqe"] == pytest.approx(image_niqe(hr, 4), abs=1e-12)
    # The HR row has NIQE only; every method has a grid score, in percent.
    assert all(results["HR"][key] is None for key in ("psnr_y", "ssim_y", "grid_percent"))
    for method in ("bicubic", checkpoint.stem):
        assert 0 < results[method]["grid_percent"] < 100

    with (out / "per_image.csv").open() as file:
        rows = {(row["method"], row["image"]): row for row in csv.DictReader(file)}
    assert len(rows) == 6
    assert rows[("bicubic", "small.png")]["niqe"] == ""  # missing: empty, never a number
    assert (
        rows[("HR", "large.png")]["psnr_y"] == ""
        and rows[("HR", "large.png")]["grid_percent"] == ""
    )
    large_grid = float(rows[("bicubic", "large.png")]["grid_percent"])
    assert large_grid == pytest.approx(100 * grid_score(bicubic, hr, 4), abs=1e-10)
    grids = [float(rows[("bicubic", name)]["grid_percent"]) for name in ("large.png", "small.png")]
    assert results["bicubic"]["grid_percent"] == pytest.approx(np.mean(grids), abs=1e-10)


def test_markdown_and_latex_tables(evaluated) -> None:
    _, checkpoint, out = evaluated
    results = json.loads((out / "results.json").read_text())["results"]["Mixed"]
    table = (out / "results.md").read_text()
    hr_niqe = f"{results['HR']['niqe']:.2f}"
    assert f"| Mixed | HR | 2 | — | — | {hr_niqe} (1/2) | — | — | — |" in table
    bicubic = results["bicubic"]
    assert f"| {bicubic['niqe']:.2f} (1/2) | {bicubic['grid_percent']:.2f} |" in table
    assert "NIQE (k/n)" in table  # says what (1/2) means

    latex = (out / "results.tex").read_text().splitlines()
    assert latex[2] == r"\begin{tabular}{lcccc}" and latex[-1] == r"\end{tabular}"
    assert {r"\toprule", r"\midrule", r"\bottomrule"} <= set(latex)
    assert r" & \multicolumn{4}{c}{Mixed} \\" in latex
    model_row = next(line for line in latex if line.startswith("srresnet"))
    assert model_row.startswith(checkpoint.stem.replace("_", r"\_") + " & ")
    assert f"& -- & -- & {hr_niqe}$^{{\\ast}}$ & -- \\\\" in latex[latex.index(r"\midrule") + 3]
    assert any("1 of 2" in line for line in latex)  # the note under the starred NIQE


def test_provenance(evaluated) -> None:
    _, checkpoint, out = evaluated
    provenance = json.loads((out / "results.json").read_text())["provenance"]
    sha256 = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert provenance["checkpoints"] == [{"path": str(checkpoint), "sha256": sha256}]
    code = provenance["code"]
    if "commit" in code:  # a git checkout: the commit, and whether the tree differs from it
        assert re.fullmatch(r"[0-9a-f]{40}", code["commit"]) and isinstance(code["dirty"], bool)
    else:
        assert set(code) == {"version"}
    protocol = provenance["protocol"]
    assert (protocol["scale"], protocol["border_crop"]) == (4, 4)
    assert "imresize" in protocol["lr_degradation"] and "8 bits" in protocol["output_rounding"]
    assert "16 + (65.481 R" in protocol["y_conversion"]
    machine = provenance["machine"]
    assert (machine["device"], machine["precision"], machine["gpu"]) == ("cpu", "fp32", None)
    assert machine["cpu"] and machine["torch"] == torch.__version__
    date = datetime.fromisoformat(provenance["date_utc"])
    assert date.utcoffset() == timedelta(0)


def test_training_validation_reports_the_same_niqe_and_grid(evaluated) -> None:
    """valid/niqe is the mean over the validation images that have one, as in evaluate.py."""
    folder, checkpoint, out = evaluated
    model = json.loads((out / "results.json").read_text())["results"]["Mixed"][checkpoint.stem]
    images = load_validation_images(folder, scale=4)
    scores = validate_generator(load_generator(checkpoint), images, 4, torch.device("cpu")).scores
    assert scores["valid/niqe"] == pytest.approx(model["niqe"], abs=1e-12)
    assert scores["valid/grid_percent"] == pytest.approx(model["grid_percent"], abs=1e-10)
    assert scores["valid/psnr_y"] == pytest.approx(model["psnr_y"], abs=1e-9)
