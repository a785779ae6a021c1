"""Exports: safetensors round trip through load_generator, torch.export programs, ONNX (if
installed) with the shapes its graph declares."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import REPO, SCRIPT_ENV, describe, run_script
from safetensors import safe_open
from safetensors.torch import save_file
from test_upscale import save_generator_checkpoint

from srgan.checkpoint import CheckpointError
from srgan.inference.export import (
    check_program,
    check_safetensors,
    export_onnx,
    export_program,
    export_safetensors,
    onnx_declared_shapes,
)
from srgan.inference.weights import load_generator
from srgan.models.generator import Generator


@pytest.fixture(scope="module")
def generator() -> Generator:
    # Unusual hyper-parameters, so a loader that assumed the defaults would fail.
    torch.manual_seed(0)
    return Generator(scale=2, num_blocks=3, num_channels=12).eval()


def test_safetensors_round_trip(generator: Generator, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    export_safetensors(generator, path)
    with safe_open(str(path), framework="pt") as file:
        metadata = file.metadata()
    assert {key: metadata[key] for key in ("scale", "num_blocks", "num_channels")} == {
        "scale": "2",
        "num_blocks": "3",
        "num_channels": "12",
    }
    loaded = load_generator(path)
    assert (loaded.scale, len(loaded.blocks)) == (2, 3)
    assert check_safetensors(generator, path) == 0.0


def test_safetensors_without_our_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not an srgan generator export"):
        load_generator(path)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(CheckpointError, match="garbage.safetensors"):
        load_generator(tmp_path / "garbage.safetensors")


def test_program_matches_pytorch_with_dynamic_size(generator: Generator, tmp_path: Path) -> None:
    path = tmp_path / "model.pt2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning, unlike TorchScript's
        export_program(generator, path)
        assert check_program(generator, path) < 1e-6
        extra_files = {"srgan.json": ""}
        loaded = torch.export.load(str(path), extra_files=extra_files).module()
    assert json.loads(extra_files["srgan.json"])["scale"] == "2"
    sr_image = loaded(torch.rand(1, 3, 10, 7))  # another batch and size than the example's
    assert sr_image.shape == (1, 3, 20, 14) and sr_image.min() >= 0 and sr_image.max() <= 1


def test_onnx_matches_pytorch_with_dynamic_size(generator: Generator, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    pytest.importorskip("onnxscript")
    export_onnx(generator, path)  # exported at 32x32; checked at 64x48 below
    # The graph declares the output scale times the input, not the same size.
    assert onnx_declared_shapes(path) == {
        "lr_image": ["batch", 3, "height", "width"],
        "sr_image": ["batch", 3, "2*height", "2*width"],
    }
    torch.manual_seed(1)
    lr_image = torch.rand(1, 3, 48, 64)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (sr_image,) = session.run(None, {"lr_image": lr_image.numpy()})
    with torch.no_grad():
        expected = ((generator(lr_image) + 1) / 2).clamp(0, 1)
    assert sr_image.shape == (1, 3, 96, 128)
    assert abs(torch.from_numpy(sr_image) - expected).max() <= 1e-4
    metadata = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    assert metadata["scale"] == "2"


def test_export_script(tmp_path: Path) -> None:
    torch.manual_seed(0)
    checkpoint = save_generator_checkpoint(
        Generator(num_blocks=1, num_channels=8), tmp_path / "g.pt"
    )
    out = tmp_path / "g.safetensors"
    args = ["--checkpoint", str(checkpoint), "--format", "safetensors", "--out", str(out)]
    result = run_script("export.py", args, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "max abs difference 0.00e+00, ok" in result.stdout
    assert load_generator(out).scale == 4
    again = run_script("export.py", args, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: {out} exists; pass --overwrite to replace it"
    )
    # Without the onnx package, ONNX export says what to install (one line, exit 2).
    script = REPO / "scripts" / "export.py"
    without_onnx = (
        f"import runpy, sys; sys.modules['onnx'] = None; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    onnx_args = ["--checkpoint", str(checkpoint), "--format", "onnx", "--out", "g.onnx"]
    result = subprocess.run(
        [sys.executable, "-c", without_onnx, *onnx_args],
        cwd=tmp_path,
        env=SCRIPT_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2, describe(result)
    assert not (tmp_path / "g.onnx").exists()
    assert result.stderr.strip() == (
        "error: ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript"
    )


def test_torchscript_flag_writes_a_program(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(num_blocks=1, num_channels=8)
    checkpoint = save_generator_checkpoint(generator, tmp_path / "g.pt")
    args = ["--checkpoint", str(checkpoint), "--format", "torchscript", "--out", "g.ts"]
    result = run_script("export.py", args, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith(
        "note: --format torchscript is deprecated in torch; writing a torch.export program "
        "instead (g.pt2; load it with torch.export.load(path).module())\n"
    )
    assert "FutureWarning" not in result.stderr and "max abs difference" in result.stdout
    assert not (tmp_path / "g.ts").exists()
    assert check_program(generator.eval(), tmp_path / "g.pt2") < 1e-6
    wrong = ["--checkpoint", str(checkpoint), "--format", "pt2", "--out", "g.ts"]
    result = run_script("export.py", wrong, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --out g.ts: a pt2 program's file name must end in .pt2"
    )
