"""scripts/evaluate.py never drops or mislabels a row: datasets and checkpoints of the same name,
checkpoints named like a reserved row (bicubic, HR) get their parent folders prepended, and
an --outputs NAME that is taken is refused before any work. Run in process on tiny models."""

import json
from pathlib import Path

import pytest
import torch
from test_evaluate_inputs import run_evaluate, write_images

from srgan.checkpoint import save_checkpoint
from srgan.eval.row_names import checkpoint_names, dataset_names
from srgan.models.generator import Generator, GeneratorSpec


def tiny_checkpoint(path: Path, seed: int) -> Path:
    """A randomly initialised x4 generator of one block and 8 channels, saved at `path`."""
    torch.manual_seed(seed)
    spec = GeneratorSpec(scale=4, num_blocks=1, num_channels=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        {"model": spec.to_dict(), "generator": Generator.from_spec(spec).state_dict()}, path
    )
    return path


def evaluate(args: list[str], out: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """results.json's results of a run that must succeed."""
    args = [*args, "--out", str(out), "--device", "cpu"]
    assert run_evaluate(args, monkeypatch) == 0
    return json.loads((out / "results.json").read_text())["results"]


def test_two_datasets_of_one_name_are_both_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_images(tmp_path / "a" / "Set", {"x.png": 48})
    second = write_images(tmp_path / "b" / "Set" / "HR", {"y.png": 40, "z.png": 44})
    args = ["--method", "bicubic", "--data", str(first), str(second)]
    results = evaluate(args, tmp_path / "out", monkeypatch)
    assert list(results) == ["a/Set", "b/Set"]
    assert [results[name]["bicubic"]["num_images"] for name in results] == [1, 2]
    assert sorted(
        path.name for path in (tmp_path / "out" / "comparisons" / "b" / "Set").iterdir()
    ) == [
        "y_comparison.png",
        "z_comparison.png",
    ]


def test_checkpoints_of_one_file_name_are_two_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_images(tmp_path / "Set", {"x.png": 48})
    first = tiny_checkpoint(tmp_path / "r1" / "model.pt", seed=1)
    second = tiny_checkpoint(tmp_path / "r2" / "model.pt", seed=2)
    results = evaluate(
        ["--checkpoint", str(first), str(second), "--data", str(data)],
        tmp_path / "out",
        monkeypatch,
    )
    rows = results["Set"]
    assert list(rows) == ["bicubic", "r1/model", "r2/model", "HR"]
    assert rows["r1/model"]["psnr_y"] != rows["r2/model"]["psnr_y"]  # two models, two scores


@pytest.mark.parametrize("name", ["bicubic", "HR"])
def test_a_checkpoint_named_like_a_reserved_row_does_not_replace_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = write_images(tmp_path / "Set", {"x.png": 48, "y.png": 40})
    checkpoint = tiny_checkpoint(tmp_path / "runs" / f"{name}.pt", seed=3)
    rows = evaluate(
        ["--checkpoint", str(checkpoint), "--data", str(data)], tmp_path / "out", monkeypatch
    )["Set"]
    assert list(rows) == ["bicubic", f"runs/{name}", "HR"]
    bicubic = evaluate(
        ["--method", "bicubic", "--data", str(data)], tmp_path / "baseline", monkeypatch
    )["Set"]
    assert rows["bicubic"] == bicubic["bicubic"] and rows["HR"] == bicubic["HR"]
    assert rows["HR"]["psnr_y"] is None and rows[f"runs/{name}"]["psnr_y"] is not None
    assert len(list((tmp_path / "out" / "comparisons" / "Set").iterdir())) == 2


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["HR={folder}"], "--outputs NAME 'HR' is reserved: choose another"),
        (
            ["Mine={folder}", "Mine={folder}"],
            "--outputs NAME 'Mine' is given twice: choose another",
        ),
    ],
)
def test_an_outputs_name_that_is_taken_is_refused_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    outputs: list[str],
    message: str,
) -> None:
    data = write_images(tmp_path / "Set", {"x.png": 48})
    monkeypatch.setattr("srgan.commands.evaluate.evaluate_folder", lambda *a, **k: pytest.fail())
    specs = [spec.format(folder=data) for spec in outputs]
    args = ["--outputs", *specs, "--data", str(data), "--out", str(tmp_path / "out")]
    assert run_evaluate(args, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_names_no_parent_folder_can_settle_are_refused(tmp_path: Path) -> None:
    model = tmp_path / "r" / "model.pt"
    assert checkpoint_names([model, tmp_path / "r1" / "model.pt"], ()) == ["r/model", "r1/model"]
    assert checkpoint_names([tmp_path / "bicubic.pt"], ("bicubic",)) == [f"{tmp_path.name}/bicubic"]
    with pytest.raises(ValueError, match=f"^--checkpoint {model} is given twice$"):
        checkpoint_names([model, model], ())
    export = tmp_path / "r" / "model.safetensors"
    with pytest.raises(
        ValueError, match=f"^--checkpoint {model} and {export} would share one name$"
    ):
        checkpoint_names([model, export], ())
    with pytest.raises(ValueError, match="^--checkpoint /HR.pt would be named 'HR'"):
        checkpoint_names([Path("/HR.pt")], ("HR",))
    assert dataset_names([tmp_path / "Set5" / "HR", tmp_path / "x" / "Set5"]) == [
        f"{tmp_path.name}/Set5",
        "x/Set5",
    ]
