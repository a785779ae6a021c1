"""The benchmark: speed of training on this machine, and how close it comes to what the
hardware can do, measured into one JSON-able dict (`run_benchmark`) and shown as one markdown
table (`markdown_table`).

Four groups of measurements:
- ceiling: a dense square matmul and the residual blocks' 3x3 convolution alone, in each native
  precision: the GFLOP/s this machine reaches at best (srgan/benchmark/hardware.py);
- data: a naive per-sample loader against the training loop's in-RAM pipeline;
- pretrain step: the package's `pretrain_step` at the paper's size (16-block SRResNet, batch
  16, 96 px HR crops) in several precision/layout/optimizer variants;
- GAN step: `gan_step` (plus the discriminator and the VGG54 content loss);
- checkpoint write: a resumable checkpoint of each stage, written as a run writes it
  (srgan/run/checkpoints.py: atomic, fsynced, pruned). One step plus this write is the notice
  a preempted run needs to stop without losing work.
The last three are srgan/benchmark/training_speed.py's, which also says what a step's FLOPs and
its "% of ceiling" count.

Only the precisions the hardware runs natively are timed. torch.compile is a variant by
default on CUDA only: on a CPU it compiles for minutes and has not been faster. A GAN step
costs seconds on a CPU, so there it is timed for the baseline and for the fastest pretrain
variant only; on CUDA for every variant. Every measurement is capped by time, not by a count
of calls, so the default CPU run takes a few minutes however slow the machine is.
"""

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.benchmark.hardware import (
    Timing,
    measure_ceilings,
    measure_rate,
    split_precisions,
)
from srgan.benchmark.training_speed import (
    Variant,
    Workload,
    measure_data,
    measure_steps,
    training_rows,
    training_variants,
)
from srgan.config import Config
from srgan.machine import machine_info
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator
from srgan.run.checkpoints import StageCheckpoints
from srgan.run.runtime import Runtime
from srgan.train.networks import Network, build_network

DIV2K_SIZE = (1356, 2040)  # (height, width) of a typical DIV2K training image
# Time cap of one training-step measurement; a GAN step gets twice as long.
DEFAULT_SECONDS = {"cpu": 10.0, "cuda": 2.0}
# The CPU flags the table names: the widest fp32 vector units and native bf16 (oneDNN's test).
KEY_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def synthesize_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """DIV2K-sized PNGs of smooth colour noise plus stripes and grain.

    The grain keeps the PNGs about as large (and as slow to decode) as DIV2K photographs; a
    flat synthetic image would compress to almost nothing and flatter the naive loader.
    """
    height, width = DIV2K_SIZE
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for index in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (12, 18, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.float32)
        stripes = 24 * np.sin(0.21 * columns + 0.07 * rows + index)
        grain = rng.normal(0, 6, (height, width, 3)).astype(np.float32)
        image = np.clip(smooth + stripes[..., None] + grain, 0, 255).astype(np.uint8)
        paths.append(folder / f"{index:04d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def gan_variants(
    variants: list[Variant], pretrain_rates: dict[str, float], device: torch.device
) -> list[Variant]:
    """Every variant on CUDA; on a CPU the baseline and the fastest pretrain variant."""
    if device.type == "cuda":
        return variants
    fastest = max(variants, key=lambda variant: pretrain_rates[variant.name])
    return [variants[0]] if fastest == variants[0] else [variants[0], fastest]


def adam_network(module: torch.nn.Module, runtime: Runtime) -> Network:
    """`module` built as training builds it, its Adam's state filled in as after the first
    training step. The multi-tensor Adam on every device: its state has the same size as the
    fused one's."""
    network = build_network(module, runtime, fused_adam=False)
    for parameter in network.model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    network.optimizer.step()
    return network


def measure_checkpoint_writes(
    device: torch.device, workload: Workload, folder: Path, timing: Timing
) -> list[dict]:
    """Seconds and size of one resumable checkpoint per stage, written to `folder`."""
    runtime = Runtime(device, None, channels_last=False)
    torch.manual_seed(0)
    generator = adam_network(Generator.from_spec(workload.generator), runtime)
    discriminator = adam_network(
        Discriminator(crop_size=workload.crop_size, num_channels=workload.discriminator_channels),
        runtime,
    )
    stages = {
        "pretrain": ("srresnet", {"generator": generator}),
        "gan": ("srgan", {"generator": generator, "discriminator": discriminator}),
    }
    rows = []
    for stage, (kind, networks) in stages.items():
        checkpoints = StageCheckpoints(
            stage_name=stage,
            kind=kind,
            networks=networks,
            extra_state={},
            config=Config(),
            folder=folder,
            steps_per_epoch=1,
        )
        rate = measure_rate(partial(checkpoints.save_periodic, 1, {}), device, timing)
        size = checkpoints.last_saved.stat().st_size
        rows.append({"stage": stage, "seconds": 1 / rate.per_second, "bytes": size})
    return rows


def _run_header(
    device: torch.device, image_paths: list[Path], workload: Workload, seconds: float
) -> dict:
    """What was measured where: the machine, the settings and the precisions timed."""
    native, not_native = split_precisions(device)
    return {
        "machine": machine_info(device),
        "device": device.type,
        # Other work on the machine slows every number: keep the 1-minute load average with them.
        "load_average": {"start": os.getloadavg()[0]},
        "settings": {
            **asdict(workload),
            "seconds": seconds,
            "images": [str(path) for path in image_paths],
        },
        "precisions": {"timed": native, "not_native": not_native},
    }


def run_benchmark(
    device: torch.device,
    image_paths: list[Path],
    *,
    workload: Workload | None = None,
    seconds: float | None = None,
    compile: bool | None = None,
    checkpoint_parent: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """All measurements as a JSON-able dict (see `markdown_table`).

    seconds: time cap of a pretrain-step measurement (default DEFAULT_SECONDS); a GAN step
    gets twice, the data pipeline half and each ceiling a quarter of it. 0 times one call
    of each. compile: add the torch.compile variant (default: on CUDA only).
    checkpoint_parent: where the checkpoint writes are timed, in a temporary folder (default:
    the system's temporary folder; a run's checkpoint folder times that disk).
    """
    workload = workload or Workload()
    seconds = DEFAULT_SECONDS[device.type] if seconds is None else seconds
    compile = device.type == "cuda" if compile is None else compile
    results = _run_header(device, image_paths, workload, seconds)
    native = results["precisions"]["timed"]
    results["ceiling"] = measure_ceilings(
        device, native, workload.residual_features, Timing(seconds / 4), log
    )
    results["data"], batch = measure_data(device, image_paths, workload, Timing(seconds / 2), log)
    variants = training_variants(native, compile)
    flops, rates = measure_steps(
        "pretrain", variants, device, workload, batch, Timing(seconds), log
    )
    results["flops"] = {"pretrain": flops}
    results["training"] = training_rows("pretrain", flops, rates, variants, results["ceiling"])
    pretrain_rates = {name: rate.per_second for name, rate in rates.items()}
    chosen = gan_variants(variants, pretrain_rates, device)
    flops, rates = measure_steps("gan", chosen, device, workload, batch, Timing(2 * seconds), log)
    results["flops"]["gan"] = flops
    results["training"] += training_rows("gan", flops, rates, variants, results["ceiling"])
    with tempfile.TemporaryDirectory(dir=checkpoint_parent) as folder:
        results["checkpoint_write"] = measure_checkpoint_writes(
            device, workload, Path(folder), Timing(seconds / 2)
        )
    results["load_average"]["end"] = os.getloadavg()[0]
    return results


def format_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def describe_machine(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    where = machine["gpu"]["name"] if machine["gpu"] else machine["cpu"]
    flags = " ".join(flag for flag in KEY_FLAGS if flag in machine["cpu_flags"])
    versions = f"torch {machine['torch']}" + (
        f", CUDA {machine['cuda']}" if results["device"] == "cuda" else ""
    )
    not_native = ", ".join(results["precisions"]["not_native"]) or "none"
    return (
        f"Machine: {where} ({machine['cores']} CPU cores"
        + (f"; {flags}" if flags and not machine["gpu"] else "")
        + f"), {machine['torch_threads']} torch thread(s); {versions}. "
        f"Batch {settings['batch_size']}, {settings['crop_size']} px HR crops, "
        f"x{settings['generator']['scale']}. Each rate is the median of time-capped chunks "
        f"after warm-up ({settings['seconds']:g} s per pretrain measurement, twice that per GAN "
        f"step); load average {results['load_average']['start']:.1f} at the start, "
        f"{results['load_average']['end']:.1f} at the end.\n"
        f"Precisions timed: {', '.join(results['precisions']['timed'])}; "
        f"not native here (not timed): {not_native}. GFLOP/s counts convolutions and matmuls; "
        "% of ceiling is against the faster ceiling row of the row's precision"
        + (" (fp32 with TF32 matmuls allowed, as in training)." if machine["gpu"] else ".")
    )


def markdown_table(results: dict) -> str:
    """The results as one README-ready markdown table, with the machine described above it."""
    data = results["data"]
    lines = [
        describe_machine(results),
        "",
        "| measurement | throughput | vs baseline | GFLOP/s | % of ceiling |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in results["ceiling"]:
        for name in ("matmul", "conv"):
            gflops = row[f"{name}_gflops"]
            percent = 100 * gflops / row["ceiling_gflops"]
            lines.append(
                f"| ceiling: {row['precision']} {name} {row[f'{name}_shape']} | "
                f"{format_rate(gflops)} GFLOP/s | | {format_rate(gflops)} | {percent:.0f}% |"
            )
    lines += [
        f"| data: naive loader (PNG decode, crop, bicubic per sample; {data['naive_workers']} "
        f"threads) | {format_rate(data['naive_pairs_per_second'])} pairs/s | 1× | | |",
        f"| data: in-RAM crops + batched bicubic (`BatchStream` + `degrade_batch`) | "
        f"{format_rate(data['pipeline_pairs_per_second'])} pairs/s | "
        f"{data['speedup']:,.0f}× | | |",
    ]
    labels = {"pretrain": "pretrain step", "gan": "GAN step"}
    for row in results["training"]:
        lines.append(
            f"| {labels[row['step']]}: {row['name']} | {format_rate(row['steps_per_second'])} "
            f"it/s | {row['vs_baseline']:.2f}× | {format_rate(row['gflops'])} | "
            f"{row['percent_of_ceiling']:.0f}% |"
        )
    for row in results["checkpoint_write"]:
        lines.append(
            f"| checkpoint write: {labels[row['stage']]}'s state "
            f"({row['bytes'] / 1e6:.1f} MB, fsynced) | {row['seconds']:.3g} s | | | |"
        )
    return "\n".join(lines)
