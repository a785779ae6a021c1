"""Only regular files are images: a FIFO named x.png (opening one blocks until someone writes
to it, so a reader would hang forever) is skipped by every reader of image folders: training
data, validation, upscale.py and evaluate.py."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image
from test_evaluate_inputs import results, run_evaluate
from test_upscale import run_upscale_command, save_generator_checkpoint

from srgan.data.crops import load_images
from srgan.eval.protocol import load_validation_images
from srgan.models.generator import Generator

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path/Set with one 48 px PNG and a FIFO named x.png. Opening the FIFO fails the test
    instead of blocking it: PIL's open is watched."""
    folder = tmp_path / "Set"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(smooth_image(rng, 48, 56)).save(folder / "photo.png")
    os.mkfifo(folder / "x.png")
    real_open = Image.open

    def open_regular_files_only(path: object, *args: object, **kwargs: object) -> Image.Image:
        if isinstance(path, str | Path) and Path(path).name == "x.png":
            pytest.fail(f"opened the FIFO {path}")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_regular_files_only)
    return folder


def test_training_data_skips_a_fifo_with_a_warning(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_images(folder, min_size=32)
    assert [image.shape for image in images] == [(48, 56, 3)]
    (warning,) = caught
    assert str(warning.message) == f"{folder}: skipped 1 file(s): x.png: not a regular file"


def test_validation_skips_a_fifo_with_a_warning(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_validation_images(folder, scale=4)
    assert [image.name for image in images] == ["photo"]
    assert [str(warning.message) for warning in caught] == [
        f"{folder}: skipped 1 file(s): x.png: not a regular file"
    ]


def test_upscale_skips_a_fifo_in_a_folder_and_refuses_one_given_by_name(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    torch.manual_seed(0)
    checkpoint = save_generator_checkpoint(
        Generator(scale=4, num_blocks=2, num_channels=8), tmp_path / "tiny.pt"
    )
    out = tmp_path / "out"
    args = ["--checkpoint", str(checkpoint), "-o", str(out)]
    assert run_upscale_command([*args, "-i", str(folder)], monkeypatch) == 0
    assert sorted(path.name for path in out.iterdir()) == ["photo_x4.png"]
    capsys.readouterr()
    assert run_upscale_command([*args, "-i", str(folder / "x.png")], monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: input {folder / 'x.png'} is not a regular file or a folder"
    )


def test_evaluate_skips_a_fifo(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = ["--method", "bicubic", "--data", str(folder), "--out", str(out)]
    assert run_evaluate(args, monkeypatch) == 0
    assert results(out)["Set"]["bicubic"]["num_images"] == 1
