"""An install killed with SIGKILL leaves its staging folder: the next install of that set
removes it and says so, while a live install's folder is never touched."""

import hashlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCRIPT_ENV
from PIL import Image

from srgan.datasets import catalog
from srgan.datasets import install as download
from srgan.datasets.staging import install_lock

CHECKED = catalog.Dataset(
    name="checked",
    target="Checked",
    sources=(
        catalog.Source(url="http://h/files/Checked", manifest="Checked.sha256", local_folder="C"),
    ),
)
# Installs CHECKED from a local copy and stops for good once the images are staged, to be
# killed there: argv = manifest folder, root, local copy.
KILLED_INSTALL = """
import sys, time
from pathlib import Path
from srgan.datasets import catalog, install
catalog.MANIFESTS = Path(sys.argv[1])
def staged_then_stuck(*args):
    print("staged", flush=True)
    time.sleep(600)
install._check_images = staged_then_stuck
dataset = catalog.Dataset(name="checked", target="Checked", sources=(catalog.Source(
    url="http://h/files/Checked", manifest="Checked.sha256", local_folder="C"),))
install.download_dataset(dataset, Path(sys.argv[2]), progress=False, local_copy=Path(sys.argv[3]))
"""


def png_bytes(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local copy of CHECKED (tmp_path/copy/C/) and its manifest, which the catalog reads."""
    images = {"a.png": png_bytes((255, 0, 0)), "b.png": png_bytes((0, 255, 0))}
    (tmp_path / "manifests").mkdir()
    manifest = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in images.items()
    )
    (tmp_path / "manifests" / "Checked.sha256").write_text(manifest)
    monkeypatch.setattr(catalog, "MANIFESTS", tmp_path / "manifests")
    (tmp_path / "copy" / "C").mkdir(parents=True)
    for name, data in images.items():
        (tmp_path / "copy" / "C" / name).write_bytes(data)
    return tmp_path / "copy"


def test_a_killed_installs_staging_folder_is_removed_by_the_next_install(
    copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "data"
    args = [str(tmp_path / "manifests"), str(root), str(copy)]
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_INSTALL, *args],
        env=SCRIPT_ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "staged\n"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        process.stdout.close()
    (leftover,) = root.glob(".checked-*")
    assert sorted(path.name for path in (leftover / "images").iterdir()) == ["a.png", "b.png"]
    # Not of the staging pattern, or of another set: kept.
    (root / ".checked-mine").mkdir()
    (root / ".other-abcdefgh").mkdir()

    target = download.download_dataset(CHECKED, root, progress=False, local_copy=copy)
    assert capsys.readouterr().out.splitlines() == [
        f"checked: removed {leftover} (0.0 MB), left by an install that was killed (no live "
        "process holds it)",
        f"checked: installed 2 images in {target / '.'}",
    ]
    assert sorted(path.name for path in root.iterdir()) == [
        ".checked-mine",
        ".other-abcdefgh",
        "Checked",
    ]
    assert download.is_installed(CHECKED, root)


def test_a_live_installs_staging_folder_is_kept(copy: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    with install_lock(root, "checked"):
        live = root / ".checked-abcdefgh"
        live.mkdir()
        with pytest.raises(download.DownloadError) as error:
            download.download_dataset(CHECKED, root, progress=False, local_copy=copy)
        assert str(error.value) == (
            f"checked: another download of checked into {root} is running (it holds "
            f"{root / '.checked.lock'}); wait for it to finish"
        )
        assert live.is_dir()
    assert [path.name for path in root.iterdir()] == [".checked-abcdefgh"]  # the lock is gone
