"""scripts/evaluate.py --outputs: folders of precomputed SR images scored as rows, by exactly the
protocol of every other row; run in process on images written here, and on the paper's own
SRGAN and SRResNet outputs where ../shared/anchors has them."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, smooth_image
from PIL import Image
from test_evaluate_inputs import run_evaluate

from srgan.data.images import list_images, read_image
from srgan.data.imresize import modcrop
from srgan.eval import outputs
from srgan.eval.grid_score import grid_score
from srgan.eval.metrics import image_metrics, rgb_to_y
from srgan.eval.niqe import image_niqe
from srgan.eval.outputs import evaluate_outputs, match_folder, match_outputs
from srgan.eval.panels import PANEL_GAP

SHARED = REPO.parent / "shared"
ANCHORS = SHARED / "anchors"
SET14 = SHARED / "benchmarks" / "Set14" / "HR"


def noisy(image: np.ndarray, seed: int) -> np.ndarray:
    """`image` plus uniform noise of +-20 levels: an SR image that is not the HR image."""
    noise = np.random.default_rng(seed).integers(-20, 21, image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    """Set/: colour.png (RGB, 124x110, large enough for NIQE) and gray.png (mode L, 58x62)."""
    folder = tmp_path / "Set"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(smooth_image(rng, 110, 124)).save(folder / "colour.png")
    Image.fromarray(smooth_image(rng, 62, 58)[..., 0]).save(folder / "gray.png")
    return folder


def hr_image(folder: Path, name: str) -> np.ndarray:
    return modcrop(read_image(folder / name, keep_gray=True), 4)


def write_outputs(hr_folder: Path, folder: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
    """{HR name: its SR image}, each saved as folder/names[HR name] (gray as RGB, R = G = B)."""
    folder.mkdir()
    written = {}
    for seed, (hr_name, sr_name) in enumerate(names.items()):
        sr_image = noisy(hr_image(hr_folder, hr_name), seed)
        rgb = sr_image if sr_image.ndim == 3 else np.stack([sr_image] * 3, axis=-1)
        Image.fromarray(rgb).save(folder / sr_name)
        written[hr_name] = sr_image
    return written


def per_image_rows(out: Path, method: str) -> dict[str, dict]:
    with (out / "per_image.csv").open() as file:
        return {row["image"]: row for row in csv.DictReader(file) if row["method"] == method}


def test_an_outputs_row_is_scored_by_the_protocol(
    hr_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {"colour.png": "colour_Mine-x4.png", "gray.png": "gray_Mine-x4.png"}
    sr_images = write_outputs(hr_folder, tmp_path / "mine", names)
    out = tmp_path / "out"
    args = ["--outputs", f"Mine={tmp_path / 'mine'}", "--data", str(hr_folder), "--out", str(out)]
    assert run_evaluate(args, monkeypatch) == 0

    rows = per_image_rows(out, "Mine")
    for hr_name, sr_image in sr_images.items():
        hr = hr_image(hr_folder, hr_name)
        # The gray image is scored on its own values (the 16-235 Y of RGB is ~1 dB away).
        expected = image_metrics(sr_image, hr, crop_border=4)
        expected["grid_percent"] = 100 * grid_score(sr_image, hr, 4)
        for key, value in expected.items():
            assert float(rows[hr_name][key]) == pytest.approx(value, abs=1e-9), (hr_name, key)
    assert float(rows["colour.png"]["niqe"]) == pytest.approx(
        image_niqe(sr_images["colour.png"], 4), abs=1e-9
    )
    assert rows["gray.png"]["niqe"] == ""  # under 96 px: no NIQE, as for every row

    document = json.loads((out / "results.json").read_text())
    results = document["results"]["Set"]
    assert list(results) == ["bicubic", "Mine", "HR"]  # bicubic is added beside outputs
    mean_psnr = np.mean([float(row["psnr_y"]) for row in rows.values()])
    assert results["Mine"]["psnr_y"] == pytest.approx(mean_psnr, abs=1e-12)
    assert (results["Mine"]["num_images"], results["Mine"]["dataset_images"]) == (2, 2)
    assert document["provenance"]["outputs"] == [
        {"name": "Mine", "dataset": "Set", "path": str(tmp_path / "mine"), "files": 2}
    ]
    assert (
        f"| Set | Mine | 2 | {results['Mine']['psnr_y']:.2f} |" in (out / "results.md").read_text()
    )
    assert any(line.startswith("Mine & ") for line in (out / "results.tex").read_text().split("\n"))
    with Image.open(out / "comparisons" / "Set" / "colour_comparison.png") as picture:
        width = picture.width
    panel_width = 2 * 124  # the whole 124 px wide image, zoomed twice
    assert width == 3 * panel_width + 2 * PANEL_GAP  # bicubic | Mine | HR


def test_an_sr_file_is_matched_by_its_hr_stem_and_an_optional_suffix(tmp_path: Path) -> None:
    hr_paths = [tmp_path / name for name in ("face.png", "face_2.png", "man.png")]
    sr_paths = [tmp_path / "sr" / name for name in ("face_2_SRGAN.png", "face_x.bmp", "man.png")]
    sr_paths.append(tmp_path / "sr" / "mandrill_x.png")  # "man" followed by no "_": no match
    matches, unmatched = match_outputs(sr_paths, hr_paths)
    assert matches == {
        "face_2.png": sr_paths[0],  # the longest HR stem that fits wins
        "face.png": sr_paths[1],
        "man.png": sr_paths[2],
    }
    assert unmatched == [sr_paths[3]]

    twice = [tmp_path / "sr" / "man.png", tmp_path / "sr" / "man_SRGAN.png"]
    with pytest.raises(ValueError) as error:
        match_outputs(twice, hr_paths)
    assert str(error.value) == f"two SR images for man.png: {twice[0]} and {twice[1]}"


def test_an_sr_image_of_the_wrong_size_is_one_line_before_any_work(
    hr_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "mine"
    write_outputs(hr_folder, folder, {"colour.png": "colour.png"})
    Image.fromarray(np.zeros((110, 124, 3), np.uint8)).save(folder / "gray.png")  # HR's size
    monkeypatch.setattr(outputs, "evaluate_image", lambda *a, **k: pytest.fail("evaluated"))
    monkeypatch.setattr("srgan.commands.evaluate.evaluate_folder", lambda *a, **k: pytest.fail())
    args = ["--outputs", f"Mine={folder}", "--data", str(hr_folder), "--out", str(tmp_path / "o")]
    assert run_evaluate(args, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: SR image {folder / 'gray.png'} is 124x110, but {hr_folder / 'gray.png'} "
        "cropped to a multiple of 4 is 56x60"
    )
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_missing_sr_image_is_warned_about_and_the_row_covers_fewer_images(
    hr_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mine"
    write_outputs(hr_folder, folder, {"colour.png": "colour_Mine.png"})
    out = tmp_path / "out"
    args = ["--outputs", f"Mine={folder}", "--data", str(hr_folder), "--out", str(out)]
    with pytest.warns(UserWarning) as caught:
        assert run_evaluate(args, monkeypatch) == 0
    warned = (
        f"Mine: {folder} has no SR image for 1 of the 2 images of Set (gray.png): its row "
        "covers the other 1"
    )
    assert warned in [str(warning.message) for warning in caught]
    mine = json.loads((out / "results.json").read_text())["results"]["Set"]["Mine"]
    assert (mine["num_images"], mine["dataset_images"]) == (1, 2)
    assert list(per_image_rows(out, "Mine")) == ["colour.png"]
    assert "| Set | Mine | 1 of 2 |" in (out / "results.md").read_text()
    tex = (out / "results.tex").read_text()
    assert r"Set (Mine): 1 of 2" in tex and r"$^{\dagger}$" in tex


def test_outputs_that_fit_no_hr_image_are_refused(
    hr_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "mine"
    write_outputs(hr_folder, folder, {"colour.png": "img_001_SR.png"})
    args = ["--outputs", f"Mine={folder}", "--data", str(hr_folder), "--out", str(tmp_path / "o")]
    with pytest.warns(UserWarning) as caught:
        assert run_evaluate(args, monkeypatch) == 2
    # Only UserWarnings: a garbage-collected file elsewhere may add a ResourceWarning here.
    assert [str(warning.message) for warning in caught if warning.category is UserWarning] == [
        f"Mine: 1 image(s) of {folder} fit no HR image of Set, ignored: img_001_SR.png",
        f"Mine: {folder} has no SR image for any image of Set: no Mine row for Set",
    ]
    assert capsys.readouterr().err.strip() == (
        f"error: --outputs Mine: no image in {folder} fits an HR image of Set "
        "(<HR stem>[_suffix].png)"
    )


@pytest.mark.skipif(
    not ANCHORS.is_dir() or not SET14.is_dir(),
    reason=f"needs the paper's published outputs in {ANCHORS} and Set14 in {SET14}",
)
@pytest.mark.parametrize(
    ("method", "psnr_y", "anchors_psnr_y", "niqe", "grid"),
    [("SRGAN-VGG54", 26.02, 26.00, 3.87, 2.25), ("SRResNet-MSE", 28.50, 28.44, 6.07, 2.19)],
)
def test_the_papers_set14_rows(
    method: str, psnr_y: float, anchors_psnr_y: float, niqe: float, grid: float
) -> None:
    """NIQE and grid as in ../shared/anchors/README.md. Its PSNR-Y scores bridge's RGB SR file
    by its 16-235 Y against the gray HR's 0-255 values; the protocol turns the SR image into
    gray first, as for every method: within 0.02 dB of the paper's Table 2 (26.02, 28.49)."""
    hr_paths = list_images(SET14)
    matches = match_folder(method, ANCHORS / f"{method}_authors", "Set14", hr_paths)
    means, rows = evaluate_outputs(matches, hr_paths, 4)
    assert means["num_images"] == 14
    assert means["psnr_y"] == pytest.approx(psnr_y, abs=0.01)
    assert means["niqe"] == pytest.approx(niqe, abs=0.01)
    assert means["grid_percent"] == pytest.approx(grid, abs=0.01)

    bridge_sr = np.round(rgb_to_y(read_image(matches["bridge.png"]))).astype(np.uint8)
    bridge_anchors = image_metrics(bridge_sr, hr_image(SET14, "bridge.png"), 4)["psnr_y"]
    others = [row["psnr_y"] for row in rows if row["image"] != "bridge.png"]
    assert np.mean([*others, bridge_anchors]) == pytest.approx(anchors_psnr_y, abs=0.01)
