"""scripts/upscale.py where writing fails or options are absurd: an output that cannot be
written is refused before the first image, a file that fails to save is skipped while the
batch goes on, an absurd --outscale is one line. Run in process (`upscale_main`)."""

import errno
import os
from pathlib import Path

import pytest
import torch
from test_upscale import rgb_image, run_upscale_command, save_generator_checkpoint

from srgan.inference import upscaling
from srgan.inference.upscaling import upscale as upscale_image
from srgan.models.generator import Generator


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    """Arguments upscaling two small photos of tmp_path/in with a tiny x4 checkpoint."""
    torch.manual_seed(0)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    checkpoint = save_generator_checkpoint(generator, tmp_path / "tiny.pt")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        rgb_image(12, 16).save(folder / name)
    return ["--checkpoint", str(checkpoint), "-i", str(folder)]


def error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_an_output_that_is_a_file_is_refused_before_any_image(
    photos: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    assert run_upscale_command([*photos, "-o", str(existing)], monkeypatch) == 2
    assert error_lines(capsys) == [f"error: --output {existing} is a file, not a folder"]
    assert existing.read_text() == "mine"


@pytest.mark.usefixtures("read_only_mount")
def test_an_unwritable_output_folder_is_refused_before_any_image(
    photos: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(upscaling, "upscale", lambda *args, **kwargs: pytest.fail("upscaled"))
    out = tmp_path / "mounted"
    assert run_upscale_command([*photos, "-o", str(out)], monkeypatch) == 1
    assert error_lines(capsys) == [f"error: could not write {out}: read-only file system"]
    assert list(out.iterdir()) == []


def test_a_file_that_fails_to_save_is_skipped_and_the_batch_goes_on(
    photos: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    real_save = upscaling.save_image

    def disk_full_for_a(image: object, path: Path, quality: int) -> None:
        if path.name == "a_x4.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(image, path, quality)

    monkeypatch.setattr(upscaling, "save_image", disk_full_for_a)
    out = tmp_path / "out"
    assert run_upscale_command([*photos, "-o", str(out)], monkeypatch) == 1
    captured = capsys.readouterr()
    warning = (
        f"warning: skipping {tmp_path / 'in' / 'a.png'}: could not write {out / 'a_x4.png'}: "
        "no space left on device"
    )
    assert warning in captured.err.splitlines()
    assert "Traceback" not in captured.err
    assert sorted(path.name for path in out.iterdir()) == ["b_x4.png"]
    assert "wrote 1 image(s)" in captured.out and "; 1 not written" in captured.out


@pytest.mark.parametrize("outscale", ["inf", "1e6", "nan", "-1", "0", "16.5"])
def test_an_absurd_outscale_is_one_line(
    photos: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    outscale: str,
) -> None:
    # Should the check ever go, fail here rather than allocate a 10^12-pixel image.
    monkeypatch.setattr(upscaling, "upscale", lambda *args, **kwargs: pytest.fail("upscaled"))
    out = tmp_path / "out"
    code = run_upscale_command([*photos, "-o", str(out), "--outscale", outscale], monkeypatch)
    assert code == 2
    assert error_lines(capsys) == [
        f"error: --outscale must be above 0 and at most 16, not {float(outscale)}"
    ]
    assert not out.exists()
    with pytest.raises(ValueError, match="at most 16"):  # the API too (no generator needed)
        upscale_image(None, rgb_image(4, 4), outscale=float(outscale))


def test_the_largest_outscale_works(
    photos: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run_upscale_command([*photos, "-o", str(out), "--outscale", "16"], monkeypatch) == 0
    assert sorted(path.name for path in out.iterdir()) == ["a_x16.png", "b_x16.png"]
