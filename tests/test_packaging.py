"""The package as users get it: a wheel built from this tree carries the shipped weights (kept
once in git, in checkpoints/), and its `srgan-upscale` runs with them; torch.hub loads every
shipped model by name through hubconf.py."""

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import REPO, SCRIPT_ENV
from PIL import Image

from srgan.inference.shipped_models import SHIPPED_MODELS, weights_file_name
from srgan.models.generator import Generator

# What a build reads; copied so that setuptools' build/ and egg-info land in tmp_path, not in
# the working tree.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "srgan")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    (source / "checkpoints").mkdir()
    for model in SHIPPED_MODELS:
        shutil.copy2(REPO / "checkpoints" / weights_file_name(model), source / "checkpoints")
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*command, "--quiet", "-w", str(dist)], cwd=source, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (built,) = dist.glob("srgan-*.whl")
    return built


def test_wheel_carries_the_shipped_weights_and_every_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for model in SHIPPED_MODELS:
            file_name = weights_file_name(model)
            packaged = archive.read(f"srgan/weights/{file_name}")
            # The weights themselves, not a link or a stand-in.
            assert sha256(packaged) == sha256((REPO / "checkpoints" / file_name).read_bytes())
        licence = next(name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence).startswith(b"MIT License")
        entry_points = next(name for name in names if name.endswith("entry_points.txt"))
        assert "srgan-upscale = srgan.commands.upscale:main" in archive.read(entry_points).decode()
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "srgan").rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"


def test_installed_wheel_upscales_with_the_packaged_model(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*install, "--target", str(target), str(wheel)], check=True)
    Image.new("RGB", (10, 8), (200, 120, 40)).save(tmp_path / "photo.png")
    # PYTHONPATH puts the installed copy ahead of this checkout's editable install.
    env = {**SCRIPT_ENV, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, str(target / "bin" / "srgan-upscale"), "photo.png", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    packaged = target / "srgan" / "weights" / weights_file_name(next(iter(SHIPPED_MODELS)))
    assert f"({packaged}, the default" in result.stdout
    with Image.open(tmp_path / "results" / "upscaled" / "photo_x4.png") as written:
        assert written.size == (40, 32)


def test_hub_loads_every_shipped_model() -> None:
    hubconf = (REPO / "hubconf.py").read_text()
    assert '"srresnet_x4_291", source="local"' in hubconf  # the documented call
    for name in SHIPPED_MODELS:
        model = torch.hub.load(str(REPO), name, source="local")
        assert isinstance(model, Generator) and not model.training
        with torch.no_grad():
            sr_image = model(torch.rand(1, 3, 6, 5))
        assert sr_image.shape == (1, 3, 6 * model.scale, 5 * model.scale)
        assert sr_image.min() >= -1 and sr_image.max() <= 1


def test_hub_entry_points_are_the_shipped_table_and_documented() -> None:
    # torch.hub lists every public callable of hubconf.py as a model.
    namespace: dict = {}
    exec(compile((REPO / "hubconf.py").read_text(), "hubconf.py", "exec"), namespace)
    public = {
        name for name, value in namespace.items() if callable(value) and not name.startswith("_")
    }
    assert public == set(SHIPPED_MODELS)
    for name in SHIPPED_MODELS:
        assert "eval mode" in namespace[name].__doc__
        assert SHIPPED_MODELS[name] in namespace[name].__doc__


def test_citation_names_the_paper_and_the_licence() -> None:
    citation = (REPO / "CITATION.cff").read_text()
    for fact in ("cff-version: 1.2.0", "license: MIT", "arXiv:1609.04802", "10.1109/CVPR.2017.19"):
        assert fact in citation
