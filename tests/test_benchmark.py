"""The benchmark (what it times, how it caps time, what it counts) and that the fast input
pipeline changes speed, not results. Nothing here asserts a speed: the machine is shared."""

import dataclasses
import json
import runpy
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SCRIPT_ENV
from PIL import Image

from srgan.benchmark import hardware
from srgan.benchmark.hardware import Timing, count_flops, measure_rate
from srgan.benchmark.measure import gan_variants, markdown_table, run_benchmark
from srgan.benchmark.training_speed import (
    LEARNING_RATE,
    Variant,
    Workload,
    naive_pair,
    timed_network,
    training_variants,
)
from srgan.data.crops import TrainCrops
from srgan.data.degradation import degrade_batch
from srgan.data.images import read_image
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator, GeneratorSpec, unit_to_signed
from srgan.run.runtime import Runtime
from srgan.train.networks import Network
from srgan.train.steps import Batch, pretrain_step

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# Tiny networks and batches: the benchmark's logic, in seconds.
TINY = Workload(
    batch_size=2,
    crop_size=16,
    generator=GeneratorSpec(scale=4, num_blocks=1, num_channels=8),
    discriminator_channels=8,
    content_layer="vgg22",
)


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


class FakeClock:
    """A clock that only moves when a fake call says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def slow_call(self, seconds: float) -> Callable[[], None]:
        def call() -> None:
            self.calls += 1
            self.now += seconds

        return call


def test_measure_rate_stops_at_its_time_cap() -> None:
    clock = FakeClock()
    rate = measure_rate(clock.slow_call(1.0), CPU, Timing(seconds=3.5), clock=clock)
    # One warm-up call, then timed calls until another would pass 3.5 s.
    assert clock.calls == 4
    assert (rate.calls, rate.seconds, rate.per_second) == (3, 3.0, 1.0)


def test_measure_rate_runs_a_call_longer_than_the_cap_once() -> None:
    clock = FakeClock()
    rate = measure_rate(clock.slow_call(10.0), CPU, Timing(seconds=3.0), clock=clock)
    assert clock.calls == 2  # warm-up and one timed call, not a count of calls
    assert (rate.calls, rate.per_second) == (1, pytest.approx(0.1))


def test_measure_rate_grows_chunks_for_fast_calls() -> None:
    clock = FakeClock()
    rate = measure_rate(clock.slow_call(0.001), CPU, Timing(seconds=1.0, chunks=4), clock=clock)
    # 1 call, then chunks of up to 250 calls (a quarter of the cap) while they fit.
    assert 900 < rate.calls <= 1000 and rate.seconds <= 1.0
    assert rate.per_second == pytest.approx(1000)


def test_count_flops_of_a_known_convolution_and_matmul() -> None:
    conv = torch.nn.Conv2d(64, 32, kernel_size=3, padding=1)
    features = torch.randn(2, 64, 10, 12)
    # 2 FLOPs per multiply-add: batch x output pixels x output channels x (3 x 3 x 64).
    forward = 2 * (2 * 10 * 12) * 32 * (3 * 3 * 64)
    assert count_flops(lambda: conv(features)) == forward
    # The input needs no gradient: backward computes the weight gradient only, as costly as
    # the forward; with an input gradient it costs twice the forward.
    assert count_flops(lambda: conv(features).sum().backward()) == 2 * forward
    features.requires_grad_(True)
    assert count_flops(lambda: conv(features).sum().backward()) == 3 * forward
    left, right = torch.randn(5, 7), torch.randn(7, 11)
    assert count_flops(lambda: left @ right) == 2 * 5 * 7 * 11


def test_variants_are_a_ladder_from_the_baseline() -> None:
    names = [variant.name for variant in training_variants(["fp32"], compile=False)]
    assert names == ["fp32 NCHW", "fp32 channels_last", "fp32 channels_last fused Adam"]
    variants = training_variants(["fp32", "bf16"], compile=True)
    assert variants == [
        Variant("fp32 NCHW", "fp32", channels_last=False),
        Variant("bf16 NCHW", "bf16", channels_last=False),
        Variant("bf16 channels_last", "bf16", channels_last=True),
        Variant("bf16 channels_last fused Adam", "bf16", True, fused_adam=True),
        Variant("bf16 channels_last fused Adam compile", "bf16", True, True, compile=True),
    ]


def test_timed_networks_are_built_with_each_variants_options() -> None:
    # The baseline: NCHW, the multi-tensor Adam, eager; the fused rung: channels_last, fused.
    baseline, fused = Variant("a", "fp32", False), Variant("b", "fp32", True, fused_adam=True)
    for variant in (baseline, fused):
        runtime = Runtime(CPU, None, channels_last=variant.channels_last)
        network = timed_network(Generator(num_blocks=1, num_channels=8), runtime, variant)
        (group,) = network.optimizer.param_groups
        assert (group["fused"], group["foreach"]) == (variant.fused_adam, not variant.fused_adam)
        assert group["lr"] == LEARNING_RATE and group["betas"] == (0.9, 0.999)
        assert network.ddp is network.compiled is network.model  # not compiled
        weights = [p for p in network.model.parameters() if p.dim() == 4]
        layouts = {p.is_contiguous(memory_format=torch.channels_last) for p in weights}
        assert layouts == {variant.channels_last}


def test_gan_variants_on_a_cpu_are_the_baseline_and_the_fastest() -> None:
    variants = training_variants(["fp32", "bf16"], compile=False)
    rates = {variant.name: 1.0 for variant in variants} | {"bf16 channels_last": 2.5}
    chosen = [variant.name for variant in gan_variants(variants, rates, CPU)]
    assert chosen == ["fp32 NCHW", "bf16 channels_last"]
    rates = {variant.name: 1.0 for variant in variants} | {"fp32 NCHW": 3.0}
    assert gan_variants(variants, rates, CPU) == variants[:1]
    assert gan_variants(variants, rates, torch.device("cuda")) == variants


def tiny_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_native: bool) -> dict:
    """`run_benchmark` on the tiny workload, one timed call of each, bf16 native or not."""
    monkeypatch.setattr(hardware, "bf16_native", lambda device: bf16_native)
    paths = write_images(tmp_path, 2)
    return run_benchmark(
        CPU, paths, workload=TINY, seconds=0, checkpoint_parent=tmp_path, log=lambda line: None
    )


def test_non_native_precision_is_listed_but_not_timed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tiny_benchmark(tmp_path, monkeypatch, bf16_native=False)
    assert results["precisions"] == {"timed": ["fp32"], "not_native": ["bf16"]}
    assert [row["precision"] for row in results["ceiling"]] == ["fp32"]
    assert {row["precision"] for row in results["training"]} == {"fp32"}
    assert "not native here (not timed): bf16." in markdown_table(results)
    # fp32 pretrain variants, then the GAN step of the baseline and of the fastest.
    steps = [row["step"] for row in results["training"]]
    assert steps[:3] == ["pretrain"] * 3 and steps[3] == "gan" and len(steps) in (4, 5)


def test_native_bf16_is_timed_with_flops_and_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tiny_benchmark(tmp_path, monkeypatch, bf16_native=True)
    assert results["precisions"] == {"timed": ["fp32", "bf16"], "not_native": []}
    assert [row["precision"] for row in results["ceiling"]] == ["fp32", "bf16"]
    pretrain = [row for row in results["training"] if row["step"] == "pretrain"]
    assert [row["name"] for row in pretrain] == [
        variant.name for variant in training_variants(["fp32", "bf16"], compile=False)
    ]
    # The tiny generator at batch 2, LR 4x4: its convolutions, forward and backward.
    generator = Generator.from_spec(TINY.generator)
    lr_image = torch.rand(2, 3, 4, 4)
    expected = count_flops(lambda: generator(lr_image).sum().backward())
    assert results["flops"]["pretrain"] == expected
    ceilings = {row["precision"]: row["ceiling_gflops"] for row in results["ceiling"]}
    for row in results["ceiling"]:
        assert row["ceiling_gflops"] == max(row["matmul_gflops"], row["conv_gflops"]) > 0
    for row in results["training"]:
        assert row["steps_per_second"] > 0 and row["timed_calls"] == 1
        assert row["gflops"] == pytest.approx(
            results["flops"][row["step"]] * row["steps_per_second"] / 1e9
        )
        assert row["percent_of_ceiling"] == pytest.approx(
            100 * row["gflops"] / ceilings[row["precision"]]
        )
    assert pretrain[0]["vs_baseline"] == 1.0
    assert results["flops"]["gan"] > results["flops"]["pretrain"]


def test_benchmark_script_writes_json_with_the_machine(tmp_path: Path) -> None:
    write_images(tmp_path / "hr", 2)
    output = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "scripts/benchmark.py"), "--device", "cpu"]
    # The full-size networks on tiny batches; one timed call per measurement.
    command += ["--seconds", "0", "--threads", "1", "--json", str(output)]
    command += ["--data", str(tmp_path / "hr"), "--batch-size", "2", "--crop-size", "16"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=SCRIPT_ENV, timeout=600
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())
    machine = results["machine"]
    assert machine["torch"] == torch.__version__ and machine["torch_threads"] == 1
    assert machine["cpu"] and machine["cores"] >= 1 and machine["gpu"] is None
    assert machine["thread_variables"]["OMP_NUM_THREADS"] == SCRIPT_ENV["OMP_NUM_THREADS"]
    if Path("/proc/cpuinfo").is_file() and "avx2" in Path("/proc/cpuinfo").read_text():
        assert "avx2" in machine["cpu_flags"]
    assert results["device"] == "cpu" and results["settings"]["batch_size"] == 2
    assert results["load_average"]["start"] >= 0 and results["load_average"]["end"] >= 0
    data = results["data"]
    assert data["speedup"] == pytest.approx(
        data["pipeline_pairs_per_second"] / data["naive_pairs_per_second"]
    )
    # Checkpoints of the full-size networks: the GAN's adds the discriminator and its Adam.
    writes = {row["stage"]: row for row in results["checkpoint_write"]}
    assert writes.keys() == {"pretrain", "gan"}
    generator_bytes = 3 * 4 * 1_549_462  # weights, Adam's two moments; fp32
    assert generator_bytes < writes["pretrain"]["bytes"] < generator_bytes * 1.05
    discriminator = Discriminator(crop_size=16)
    discriminator_bytes = 3 * 4 * sum(p.numel() for p in discriminator.parameters())
    assert writes["gan"]["bytes"] - writes["pretrain"]["bytes"] >= discriminator_bytes
    assert all(row["seconds"] > 0 for row in writes.values())
    assert not list(ROOT.glob("checkpoints/tmp*")), "the timed checkpoints were left behind"
    # The table: two ceiling rows per timed precision, two data rows, one per timed step, one
    # per checkpoint write.
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    precisions = len(results["precisions"]["timed"])
    assert len(table) == 1 + 2 * precisions + 2 + len(results["training"]) + 2
    assert "| checkpoint write: GAN step's state (" in result.stdout


def run_script_in_process(
    script: str, arguments: list[str], monkeypatch: pytest.MonkeyPatch
) -> int | None:
    """Run scripts/<script> as __main__ in this process (no torch import to wait for)."""
    monkeypatch.setattr(sys, "argv", [script, *arguments])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # run_main sets it
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
        (["--seconds", "-1"], "--seconds must be >= 0"),
    ):
        code = run_script_in_process("benchmark.py", ["--device", "cpu", *arguments], monkeypatch)
        assert code == 2
        stderr = capsys.readouterr().err
        assert stderr.startswith("error: ") and message in stderr
        assert len(stderr.strip().splitlines()) == 1


def test_markdown_table_ratios_and_ceiling() -> None:
    results = {
        "machine": {
            "cpu": "test CPU",
            "cpu_flags": ["avx2", "avx512f", "sse2"],
            "cores": 2,
            "torch_threads": 2,
            "gpu": None,
            "torch": "x",
            "cuda": None,
        },
        "device": "cpu",
        "load_average": {"start": 0.5, "end": 1.5},
        "settings": {"batch_size": 16, "crop_size": 96, "generator": {"scale": 4}, "seconds": 10},
        "precisions": {"timed": ["fp32"], "not_native": ["bf16"]},
        "ceiling": [
            {
                "precision": "fp32",
                "matmul_gflops": 160.0,
                "ceiling_gflops": 160.0,
                "matmul_shape": "2048x2048",
                "conv_gflops": 120.0,
                "conv_shape": "3x3 on 16x64x24x24",
            }
        ],
        "data": {
            "naive_pairs_per_second": 13.0,
            "naive_workers": 2,
            "pipeline_pairs_per_second": 6500.0,
            "speedup": 500.0,
        },
        "training": [
            {
                "step": "pretrain",
                "name": "fp32 channels_last",
                "steps_per_second": 0.6,
                "vs_baseline": 1.2,
                "gflops": 80.0,
                "percent_of_ceiling": 50.0,
            }
        ],
        "checkpoint_write": [{"stage": "gan", "seconds": 0.25, "bytes": 302_000_000}],
    }
    table = markdown_table(results)
    assert table.startswith("Machine: test CPU (2 CPU cores; avx2 avx512f), 2 torch thread(s)")
    assert "load average 0.5 at the start, 1.5 at the end" in table
    assert "not native here (not timed): bf16." in table
    assert "| ceiling: fp32 conv 3x3 on 16x64x24x24 | 120 GFLOP/s | | 120 | 75% |" in table
    assert "| 6,500 pairs/s | 500× | | |" in table
    assert "| pretrain step: fp32 channels_last | 0.6 it/s | 1.20× | 80 | 50% |" in table
    assert "| checkpoint write: GAN step's state (302.0 MB, fsynced) | 0.25 s | | | |" in table
    results["device"] = "cuda"
    results["machine"] |= {"gpu": {"name": "test GPU"}, "cores": 16, "cuda": "13.0"}
    table = markdown_table(results)
    assert table.startswith(
        "Machine: test GPU (16 CPU cores), 2 torch thread(s); torch x, CUDA 13.0."
    )
    assert "(fp32 with TF32 matmuls allowed, as in training)." in table


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
        hr_image = crops.crops(plan).float() / 255  # as srgan/train/loop.py does
        pipeline = (degrade_batch(hr_image, 4, "bicubic"), hr_image)
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
    network = Network.plain(generator, optimizer, runtime.grad_scaler())
    losses = []
    for step, (lr_image, hr_image) in enumerate(batches):
        hr_image = unit_to_signed(runtime.to_device(hr_image))
        batch = Batch(step, runtime.to_device(lr_image), hr_image)
        losses.append(pretrain_step(network, runtime, batch)["pixel"].item())
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
