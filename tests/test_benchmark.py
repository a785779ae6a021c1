"""The benchmark script, and that the fast input pipeline changes speed, not results."""

import dataclasses
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SCRIPT_ENV
from PIL import Image

from srgan.benchmark import VARIANTS, markdown_table, naive_pair
from srgan.data import TrainCrops, read_image
from srgan.degradation import degrade
from srgan.generator import Generator
from srgan.runtime import Runtime
from srgan.steps import pretrain_step

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, count: int, height: int = 120, width: int = 160) -> list[Path]:
    """Random-noise PNGs: every pixel differs, so a wrong crop, flip or transpose shows."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        paths.append(folder / f"{index}.png")
        image = rng.integers(0, 256, (height + 10 * index, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(paths[-1])
    return paths


def test_benchmark_script_writes_json_and_table(tmp_path: Path) -> None:
    write_images(tmp_path / "hr", 2)
    output = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "scripts/benchmark.py"), "--device", "cpu", "--quick"]
    # Small batch and image sizes keep this test short; the networks are the full-size ones.
    command += ["--skip-compile", "--json", str(output), "--data", str(tmp_path / "hr")]
    command += ["--batch-size", "2", "--crop-size", "48", "--upscale-size", "16"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=SCRIPT_ENV, timeout=600
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())
    assert results["device"] == "cpu"
    assert results["load_average"]["start"] >= 0 and results["load_average"]["end"] >= 0
    assert results["versions"]["torch"] == torch.__version__
    assert results["settings"]["batch_size"] == 2 and results["settings"]["crop_size"] == 48
    data = results["data"]
    for key in ("naive_pairs_per_second", "pipeline_pairs_per_second", "speedup"):
        assert data[key] > 0, key
    assert data["speedup"] == pytest.approx(
        data["pipeline_pairs_per_second"] / data["naive_pairs_per_second"]
    )
    expected = [variant.name for variant in VARIANTS if not variant.compile]
    assert [row["variant"] for row in results["compute"]] == expected
    for row in results["compute"]:
        for key in ("pretrain_steps_per_second", "gan_steps_per_second"):
            assert row[key] > 0, (row["variant"], key)
        assert row["upscale_megapixels_per_second"] > 0
    # The table at the end has one row per variant and measurement, plus the two data rows.
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2 + 3 * len(expected)


def run_script_in_process(
    script: str, arguments: list[str], monkeypatch: pytest.MonkeyPatch
) -> int | None:
    """Run scripts/<script> as __main__ in this process (no torch import to wait for)."""
    monkeypatch.setattr(sys, "argv", [script, *arguments])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / script), run_name="__main__")
    return exit_info.value.code


def test_benchmark_script_rejects_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for arguments, message in (
        (["--data", str(tmp_path / "missing")], "missing"),
        (["--crop-size", "40"], "multiple of 16"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ):
        code = run_script_in_process("benchmark.py", ["--device", "cpu", *arguments], monkeypatch)
        assert code == 2
        stderr = capsys.readouterr().err
        assert stderr.startswith("error: ") and message in stderr
        assert len(stderr.strip().splitlines()) == 1


def test_markdown_table_speedups() -> None:
    rates = {"pretrain_steps_per_second": 2.0, "gan_steps_per_second": 0.5}
    results = {
        "machine": "test CPU (2 cores)",
        "device": "cpu",
        "load_average": {"start": 0.5, "end": 1.5},
        "versions": {"torch": "x", "cuda": None},
        "settings": {
            "batch_size": 16,
            "crop_size": 96,
            "scale": 4,
            "upscale_size": 128,
            "torch_threads": 2,
            "repeats": 3,
        },
        "data": {
            "naive_pairs_per_second": 13.0,
            "naive_workers": 2,
            "pipeline_pairs_per_second": 6500.0,
            "speedup": 500.0,
        },
        "compute": [
            {"variant": "fp32 NCHW eager", **rates, "upscale_megapixels_per_second": 0.1},
            {
                "variant": "bf16 channels_last",
                "pretrain_steps_per_second": 5.0,
                "gan_steps_per_second": 1.0,
                "upscale_megapixels_per_second": 0.3,
            },
        ],
    }
    table = markdown_table(results)
    assert table.startswith("Machine: test CPU (2 cores), 2 torch thread(s); torch x.")
    assert "load average 0.5 at the start, 1.5 at the end" in table
    assert "| 6,500 pairs/s | 500× |" in table
    assert "| pretrain step: bf16 channels_last | 5 it/s | 2.50× |" in table
    assert "| GAN step: bf16 channels_last | 1 it/s | 2.00× |" in table
    assert "| upscale: bf16 channels_last | 0.3 MP/s | 3.00× |" in table


def pipeline_and_naive_batches(
    paths: list[Path], crop_size: int, steps: int
) -> list[tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
    """(pipeline (LR, HR), naive (LR, HR)) per step, both cut by the same crop plans."""
    crops = TrainCrops([read_image(path) for path in paths], crop_size, crops_per_image=8)
    batches = []
    for step in range(steps):
        plan = crops.plan(seed=3, stage=0, epoch=0, step_in_epoch=step, batch_size=8)
        # Every flip/transpose combination once per batch.
        plan = dataclasses.replace(plan, transform=np.roll(np.arange(8), step))
        hr_image = crops.crops(plan).float() / 255  # as srgan/loop.py does
        pipeline = (degrade(hr_image, 4, "bicubic"), hr_image)
        pairs = [
            naive_pair(paths[index], top, left, transform, crop_size, 4)
            for index, top, left, transform in zip(
                plan.image_index, plan.top, plan.left, plan.transform, strict=True
            )
        ]
        naive = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
        batches.append((pipeline, naive))
    return batches


def pretrain_losses(
    batches: list[tuple[torch.Tensor, torch.Tensor]], channels_last: bool = False
) -> list[float]:
    """Pixel losses of a few fp32 pretraining steps of a tiny generator from a fixed init."""
    runtime = Runtime(torch.device("cpu"), None, channels_last)
    torch.manual_seed(0)
    generator = Generator(num_blocks=2, num_channels=16)
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    scaler = runtime.grad_scaler()
    losses = []
    for lr_image, hr_image in batches:
        lr_image, hr_image = runtime.to_device(lr_image), runtime.to_device(hr_image)
        step = pretrain_step(generator, optimizer, scaler, runtime, lr_image, hr_image * 2 - 1)
        losses.append(step["pixel"].item())
    return losses


def test_fast_pipeline_gives_the_naive_loaders_pairs_and_losses(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 3)
    batches = pipeline_and_naive_batches(paths, crop_size=32, steps=3)
    for (pipeline_lr, pipeline_hr), (naive_lr, naive_hr) in batches:
        assert torch.equal(pipeline_hr, naive_hr)
        assert pipeline_lr.shape == naive_lr.shape == (8, 3, 8, 8)
        # The batched and per-image matmuls may round differently in the last bit, which can
        # move a value across an 8-bit level at most once in a while.
        difference = (pipeline_lr - naive_lr).abs()
        assert difference.max() <= 1 / 255 + 1e-6
        assert (difference > 0).float().mean() < 1e-3
    pipeline_losses = pretrain_losses([pipeline for pipeline, _ in batches])
    naive_losses = pretrain_losses([naive for _, naive in batches])
    assert pipeline_losses == pytest.approx(naive_losses, rel=1e-5)
    # The losses really depend on the data: another crop plan gives other numbers.
    shifted = pretrain_losses([pipeline for pipeline, _ in batches[1:] + batches[:1]])
    assert shifted[0] != pytest.approx(pipeline_losses[0], rel=1e-3)


def test_channels_last_matches_nchw_in_fp32(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 2)
    batches = [pipeline for pipeline, _ in pipeline_and_naive_batches(paths, 32, steps=3)]
    nchw = pretrain_losses(batches, channels_last=False)
    channels_last = pretrain_losses(batches, channels_last=True)
    assert channels_last == pytest.approx(nchw, rel=1e-4)
    assert nchw[-1] != pytest.approx(nchw[0], rel=1e-3)  # the steps do train


def test_prepare_subimages_cuts_overlapping_tiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (100, 130, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    (tmp_path / "hr").mkdir()
    Image.fromarray(image).save(tmp_path / "hr" / "big.png")
    Image.fromarray(small).save(tmp_path / "hr" / "small.png")
    arguments = [str(tmp_path / "hr"), str(tmp_path / "sub"), "--size", "48", "--step", "32"]
    assert run_script_in_process("prepare_subimages.py", arguments, monkeypatch) == 0
    # Rows start at 0, 32 and 52 (flush with the bottom), columns at 0, 32, 64 and 82.
    tiles = sorted(path.name for path in (tmp_path / "sub").iterdir())
    assert tiles == [f"big_s{i:03d}.png" for i in range(1, 13)] + ["small_s001.png"]
    expected = {
        "big_s001.png": image[:48, :48],
        "big_s006.png": image[32:80, 32:80],
        "big_s012.png": image[52:100, 82:130],
        "small_s001.png": small,  # smaller than --size: kept whole
    }
    for name, pixels in expected.items():
        np.testing.assert_array_equal(read_image(tmp_path / "sub" / name), pixels)
