"""scripts/evaluate.py with awkward inputs and outputs: an image too small for the protocol is
named and skipped, --out is checked before any work, earlier results are never silently
overwritten or mixed with new ones. Run in process (bicubic only: no model needed)."""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from srgan.commands import evaluate


def run_evaluate(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """scripts/evaluate.py with `args`, in this process; returns the exit code."""
    monkeypatch.setattr(sys, "argv", ["scripts/evaluate.py", *args])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # run_main sets it
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main()
    return exit_info.value.code


def write_images(folder: Path, sizes: dict[str, int]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size in sizes.items():
        Image.fromarray(smooth_image(rng, size, size + 8)).save(folder / name)
    return folder


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["results"]


def test_an_image_too_small_for_the_protocol_is_named_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_images(tmp_path / "Set", {"big.png": 48, "small.png": 16})
    out = tmp_path / "out"
    args = ["--method", "bicubic", "--data", str(data), "--out", str(out)]
    with pytest.warns(UserWarning) as caught:
        assert run_evaluate(args, monkeypatch) == 0
    messages = [str(warning.message) for warning in caught]
    skipped = (
        f"skipping {data / 'small.png'}: 24x16 after the modcrop is smaller than the 19 px the "
        "protocol measures at x4"
    )
    assert skipped in messages
    assert results(out)["Set"]["bicubic"]["num_images"] == 1


def test_an_out_that_is_a_file_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = write_images(tmp_path / "Set", {"big.png": 48})
    out = tmp_path / "out.txt"
    out.write_text("mine")
    monkeypatch.setattr(evaluate, "evaluate_folder", lambda *a, **k: pytest.fail("evaluated"))
    args = ["--method", "bicubic", "--data", str(data), "--out", str(out)]
    assert run_evaluate(args, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {out} is a file, not a folder"
    assert out.read_text() == "mine"


@pytest.mark.usefixtures("read_only_mount")
def test_an_unwritable_out_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = write_images(tmp_path / "Set", {"big.png": 48})
    monkeypatch.setattr(evaluate, "evaluate_folder", lambda *a, **k: pytest.fail("evaluated"))
    out = tmp_path / "mounted"
    args = ["--method", "bicubic", "--data", str(data), "--out", str(out)]
    assert run_evaluate(args, monkeypatch) == 1
    assert capsys.readouterr().err.strip() == f"error: could not write {out}: read-only file system"


def test_earlier_results_are_refused_or_moved_aside_never_mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = write_images(tmp_path / "Set", {"a.png": 48, "b.png": 40})
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # the user's own file: neither refused nor moved
    args = ["--method", "bicubic", "--data", str(data), "--out", str(out)]
    assert run_evaluate(args, monkeypatch) == 0
    first = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert out / "results.json" in first and out / "notes.txt" in first
    comparisons = out / "comparisons" / "Set"
    assert sorted(path.name for path in comparisons.iterdir()) == [
        "a_comparison.png",
        "b_comparison.png",
    ]

    (data / "b.png").unlink()
    capsys.readouterr()
    assert run_evaluate(args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --out {out} already holds results (")
    assert line.endswith(f"pass --overwrite, which moves them to {out}/old-<time>/")
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == first

    assert run_evaluate([*args, "--overwrite"], monkeypatch) == 0
    assert sorted(path.name for path in comparisons.iterdir()) == ["a_comparison.png"]
    assert results(out)["Set"]["bicubic"]["num_images"] == 1
    (archive,) = out.glob("old-*")
    assert (out / "notes.txt").read_text() == "mine"
    for path, data_bytes in first.items():
        if path.name != "notes.txt":
            assert (archive / path.relative_to(out)).read_bytes() == data_bytes


@pytest.mark.parametrize("sigma", ["0", "-1", "nan", "1e300"])
def test_an_absurd_gaussian_sigma_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, sigma: str
) -> None:
    data = write_images(tmp_path / "Set", {"big.png": 48})
    args = ["--method", "bicubic", "--data", str(data), "--out", str(tmp_path / "out")]
    args += ["--degradation", "gaussian", "--gaussian-sigma", sigma]
    assert run_evaluate(args, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --gaussian-sigma must be 0.01 to 10.0, got {float(sigma)}"
    )
