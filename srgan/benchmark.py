"""Speed measurements: the input pipeline against a naive loader, training steps, upscaling.

Data: "pairs" are (LR, HR) float tensors ready for a training step. The naive loader is what
peer SRGAN repos do in `Dataset.__getitem__`: decode a whole 2040x1356 PNG, cut one crop,
flip it, downscale it. Our pipeline is the training loop's: images decoded once into RAM,
crops cut by `TrainCrops` in a background thread (`batch_stream`), bicubic degradation batched
on the training device.

Compute: the package's own step functions (`pretrain_step`, `gan_step`) at the paper's size
(16-block SRResNet, 96 px crops, VGG54 content loss), in several precision/layout variants.
Every number is the median of timed repeats after warm-up steps, which are not counted (they
hold first-call allocation, cuDNN autotuning and torch.compile).
"""

import copy
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.data import TrainCrops, batch_stream, read_image
from srgan.degradation import degrade
from srgan.discriminator import Discriminator
from srgan.generator import Generator
from srgan.inference import upscale_tensor
from srgan.losses import ContentLoss
from srgan.runtime import Runtime
from srgan.steps import LossWeights, gan_step, pretrain_step

DIV2K_SIZE = (1356, 2040)  # (height, width) of a typical DIV2K training image


@dataclass(frozen=True)
class Variant:
    """One way to run the same computation; the first of VARIANTS is the baseline."""

    name: str
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool = False


VARIANTS = (
    Variant("fp32 NCHW eager", None, False),
    Variant("fp32 channels_last", None, True),
    Variant("bf16 NCHW", torch.bfloat16, False),
    Variant("bf16 channels_last", torch.bfloat16, True),
    Variant("bf16 channels_last compile", torch.bfloat16, True, compile=True),
)


@dataclass(frozen=True)
class Timing:
    warmup: int  # untimed calls before measuring (the last one sizes the timed runs)
    repeats: int  # timed runs; their median is reported
    min_seconds: float  # each timed run repeats the call until it lasts at least this long


def synchronize(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without a sync the clock would stop before they finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_rates(
    calls: dict[str, Callable[[], object]],
    device: torch.device,
    timing: Timing,
    extra_warmup: dict[str, int] | None = None,
) -> dict[str, float]:
    """Median calls per second of each callable, warm-up excluded.

    The timed runs take turns (a, b, c, a, b, c, ...), so a change in the machine's load during
    the measurement slows all of them alike instead of skewing their ratios.
    """
    counts = {}
    for name, call in calls.items():
        for _ in range(timing.warmup - 1 + (extra_warmup or {}).get(name, 0)):
            call()
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        counts[name] = max(1, math.ceil(timing.min_seconds / (time.perf_counter() - start)))
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(timing.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(counts[name]):
                call()
            synchronize(device)
            rates[name].append(counts[name] / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    # /proc/cpuinfo names the CPU model on Linux; platform.processor() often only says "x86_64".
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [line for line in cpuinfo.splitlines() if line.startswith("model name")]
    model = names[0].split(":", 1)[1].strip() if names else platform.processor() or "CPU"
    return f"{model} ({len(os.sched_getaffinity(0))} cores)"


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


def naive_pair(
    path: Path, top: int, left: int, transform: int, crop_size: int, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One (LR, HR) pair the peer-repo way: open the PNG, crop, flip, to tensor, downscale.

    `transform` has TrainCrops' meaning (bits: horizontal flip, vertical flip, transpose),
    so the same crop plan gives the same pairs as our pipeline (tests/test_benchmark.py).
    """
    with Image.open(path) as image:  # crop() decodes the whole file first
        crop = image.convert("RGB").crop((left, top, left + crop_size, top + crop_size))
    if transform & 1:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if transform & 2:
        crop = crop.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if transform & 4:
        crop = crop.transpose(Image.Transpose.TRANSPOSE)
    hr_image = torch.from_numpy(np.array(crop)).permute(2, 0, 1).float() / 255
    return degrade(hr_image, scale, "bicubic"), hr_image


def naive_pairs_per_second(
    paths: list[Path], crop_size: int, scale: int, samples: int, workers: int
) -> float:
    """Pairs/s of `naive_pair` in `workers` threads (like DataLoader workers; PIL drops the GIL)."""
    rng = np.random.default_rng(0)
    plan = []
    for index in range(samples):
        path = paths[index % len(paths)]
        with Image.open(path) as image:
            width, height = image.size
        top, left = rng.integers(0, height - crop_size + 1), rng.integers(0, width - crop_size + 1)
        plan.append((path, int(top), int(left), int(rng.integers(0, 8)), crop_size, scale))
    naive_pair(*plan[0])  # warm-up: file cache, imresize weights
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(lambda arguments: naive_pair(*arguments), plan))
        return samples / (time.perf_counter() - start)


def pipeline_pairs(
    crops: TrainCrops, runtime: Runtime, batch_size: int, scale: int, batches: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the training loop's input path for `batches` steps; returns the last (LR, HR) batch."""
    steps_per_epoch = crops.steps_per_epoch(batch_size)
    positions = [(s // steps_per_epoch, s % steps_per_epoch, s) for s in range(batches)]
    stream = batch_stream(
        crops,
        positions,
        seed=0,
        stage=0,
        batch_size=batch_size,
        rows=slice(None),
        pin_memory=runtime.device.type == "cuda",
    )
    for hr_uint8 in stream:
        hr_image = runtime.to_device(hr_uint8).float() / 255
        lr_image = degrade(hr_image, scale, "bicubic")
    return lr_image, hr_image


def variant_calls(
    variant: Variant,
    device: torch.device,
    content_loss: ContentLoss,
    lr_batch: torch.Tensor,
    hr_batch: torch.Tensor,
    upscale_size: int,
) -> dict[str, Callable[[], None]]:
    """One pretrain step, one GAN step and one upscaling call of `variant`, ready to time."""
    runtime = Runtime(device, variant.amp_dtype, variant.channels_last)
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    torch.manual_seed(0)  # every variant starts from the same weights
    generator_bare = Generator().to(device, memory_format=memory_format)
    discriminator_bare = Discriminator(crop_size=hr_batch.shape[-1]).to(
        device, memory_format=memory_format
    )
    content_loss = copy.deepcopy(content_loss).to(device, memory_format=memory_format)
    # As srgan/stages.py does: the compiled module runs the step, the bare one holds the weights.
    generator = torch.compile(generator_bare) if variant.compile else generator_bare
    discriminator = torch.compile(discriminator_bare) if variant.compile else discriminator_bare
    fused = device.type == "cuda"
    generator_optimizer = torch.optim.Adam(generator_bare.parameters(), lr=1e-5, fused=fused)
    discriminator_optimizer = torch.optim.Adam(
        discriminator_bare.parameters(), lr=1e-5, fused=fused
    )
    generator_scaler, discriminator_scaler = runtime.grad_scaler(), runtime.grad_scaler()
    lr_image = runtime.to_device(lr_batch)
    hr_image = runtime.to_device(hr_batch) * 2 - 1
    lr_large = runtime.to_device(torch.rand(1, 3, upscale_size, upscale_size))

    def pretrain() -> None:
        generator.train()
        pretrain_step(generator, generator_optimizer, generator_scaler, runtime, lr_image, hr_image)

    def gan() -> None:
        generator.train()
        gan_step(
            generator,
            discriminator,
            discriminator_bare,
            content_loss,
            generator_optimizer,
            discriminator_optimizer,
            generator_scaler,
            discriminator_scaler,
            LossWeights(),
            runtime,
            lr_image,
            hr_image,
        )

    def upscale() -> None:
        generator.eval()
        with runtime.autocast():
            upscale_tensor(generator, lr_large)

    return {"pretrain": pretrain, "gan": gan, "upscale": upscale}


def format_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def markdown_table(results: dict) -> str:
    """The results as one README-ready markdown table, speed-ups against each group's baseline."""
    settings, data = results["settings"], results["data"]
    lines = [
        f"Machine: {results['machine']}, {settings['torch_threads']} torch thread(s); "
        f"torch {results['versions']['torch']}"
        + (f", CUDA {results['versions']['cuda']}" if results["device"] == "cuda" else "")
        + f". Batch {settings['batch_size']}, {settings['crop_size']} px HR crops, "
        f"x{settings['scale']}; upscaling a {settings['upscale_size']} px LR image; "
        f"median of {settings['repeats']} timed run(s) after warm-up; load average "
        f"{results['load_average']['start']:.1f} at the start, {results['load_average']['end']:.1f}"
        " at the end.",
        "",
        "| measurement | throughput | speed-up |",
        "|---|---:|---:|",
        f"| data: naive loader (PNG decode, crop, bicubic per sample; "
        f"{data['naive_workers']} threads) | {format_rate(data['naive_pairs_per_second'])} "
        f"pairs/s | 1× |",
        f"| data: in-RAM crops + batched bicubic (`batch_stream` + `degrade`) | "
        f"{format_rate(data['pipeline_pairs_per_second'])} pairs/s | "
        f"{data['speedup']:,.0f}× |",
    ]
    groups = (
        ("pretrain step", "pretrain_steps_per_second", "it/s"),
        ("GAN step", "gan_steps_per_second", "it/s"),
        ("upscale", "upscale_megapixels_per_second", "MP/s"),
    )
    for label, key, unit in groups:
        baseline = results["compute"][0][key]
        for row in results["compute"]:
            lines.append(
                f"| {label}: {row['variant']} | {format_rate(row[key])} {unit} | "
                f"{row[key] / baseline:.2f}× |"
            )
    return "\n".join(lines)


def run_benchmark(
    device: torch.device,
    image_paths: list[Path],
    *,
    batch_size: int = 16,
    crop_size: int = 96,
    scale: int = 4,
    upscale_size: int = 128,
    quick: bool = False,
    skip_compile: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """All measurements as a JSON-able dict (see `markdown_table`)."""
    timing = Timing(warmup=1, repeats=1, min_seconds=0.0) if quick else Timing(2, 3, 1.0)
    cores = len(os.sched_getaffinity(0))
    results: dict = {
        "machine": machine_description(device),
        "device": device.type,
        # Other work on the machine slows every number: keep the 1-minute load average with them.
        "load_average": {"start": os.getloadavg()[0]},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        },
        "settings": {
            "batch_size": batch_size,
            "crop_size": crop_size,
            "scale": scale,
            "upscale_size": upscale_size,
            "torch_threads": torch.get_num_threads(),
            "images": [str(path) for path in image_paths],
            "quick": quick,
            "warmup": timing.warmup,
            "repeats": timing.repeats,
        },
    }
    naive = naive_pairs_per_second(image_paths, crop_size, scale, 4 if quick else 32, cores)
    log(f"naive loader: {naive:.1f} pairs/s ({cores} threads)")
    start = time.perf_counter()
    # The one-time cost our pipeline pays instead: each image decoded once (srgan.data).
    images = [read_image(path) for path in image_paths]
    # An epoch as long as DIV2K's (800 crops), so each plan shuffles a realistic order.
    crops = TrainCrops(images, crop_size, crops_per_image=max(1, 800 // len(images)))
    decode_seconds = (time.perf_counter() - start) / len(image_paths)
    runtime = Runtime(device, None, channels_last=False)
    batches = 20 if quick else 200

    def pipeline() -> None:
        pipeline_pairs(crops, runtime, batch_size, scale, batches)

    rate = median_rates({"pipeline": pipeline}, device, timing)["pipeline"]
    pipeline_rate = batches * batch_size * rate
    log(f"in-RAM pipeline: {pipeline_rate:,.0f} pairs/s (decoding: {decode_seconds:.2f} s/image)")
    results["data"] = {
        "naive_pairs_per_second": naive,
        "naive_workers": cores,
        "pipeline_pairs_per_second": pipeline_rate,
        "speedup": pipeline_rate / naive,
        "decode_seconds_per_image": decode_seconds,
    }
    lr_batch, hr_batch = pipeline_pairs(crops, runtime, batch_size, scale, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG weights: the speed is the same
        content_loss = ContentLoss(layer="vgg54", weights="random")
    variants = [v for v in VARIANTS if not (v.compile and skip_compile)]
    calls = {
        v.name: variant_calls(v, device, content_loss, lr_batch, hr_batch, upscale_size)
        for v in variants
    }
    # torch.compile compiles in its first calls (forward, backward, eval): more warm-up.
    extra_warmup = {v.name: 2 for v in variants if v.compile}
    rates = {}
    for kind in ("pretrain", "gan", "upscale"):
        kind_calls = {name: variant[kind] for name, variant in calls.items()}
        rates[kind] = median_rates(kind_calls, device, timing, extra_warmup)
        log(f"{kind} calls/s: " + ", ".join(f"{n} {r:.3g}" for n, r in rates[kind].items()))
    output_megapixels = (upscale_size * scale) ** 2 / 1e6
    results["compute"] = [
        {
            "variant": v.name,
            "pretrain_steps_per_second": rates["pretrain"][v.name],
            "gan_steps_per_second": rates["gan"][v.name],
            "upscale_megapixels_per_second": rates["upscale"][v.name] * output_megapixels,
        }
        for v in variants
    ]
    results["load_average"]["end"] = os.getloadavg()[0]
    return results
