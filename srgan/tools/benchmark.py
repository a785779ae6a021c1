"""Speed of training on this machine, and how close it comes to what the hardware can do.

Four groups of measurements (`run_benchmark`):
- ceiling: a dense square matmul and the residual blocks' 3x3 convolution alone (forward,
  channels_last), in each native precision: the GFLOP/s this machine reaches at best;
- data: a naive per-sample loader against the training loop's in-RAM pipeline;
- pretrain step: the package's `pretrain_step` at the paper's size (16-block SRResNet, batch
  16, 96 px HR crops) in several precision/layout/optimizer variants;
- GAN step: `gan_step` (plus the discriminator and the VGG54 content loss).

Precisions: fp32 always; bf16 only where `bf16_native` says the hardware runs it natively
(oneDNN with AVX512-BF16 or AMX on a CPU, `torch.cuda.is_bf16_supported()` on CUDA). Elsewhere
bf16 is emulated and many times slower than fp32, so it is listed as not native and not timed.

Variants (`training_variants`): a ladder from the baseline, fp32 NCHW with torch's default
Adam, where each rung changes one thing: bf16 where native, then channels_last, then fused
Adam (the training loop's choice on CUDA), then torch.compile (by default on CUDA only: on a
CPU it compiles for minutes and has not been faster). A GAN step costs seconds on a CPU, so
there it is timed for the baseline and for the fastest pretrain variant only; on CUDA for
every variant.

Timing: every measurement is capped by time, not by a count of calls (`measure_rate`), so the
default CPU run takes a few minutes however slow the machine is.

FLOPs: counted once per step kind with `torch.utils.flop_counter.FlopCounterMode` during the
baseline's first (warm-up) call. It counts matmuls and convolutions, forward and backward,
2 FLOPs per multiply-add, only for the gradients the step really computes (no input gradient
for the first layer, no weight gradient for the frozen VGG). Elementwise work (BatchNorm,
PReLU, the losses, Adam) is not counted: it has no FLOP ceiling to be compared with.
Precision, memory layout and compilation do not change the count, so one count serves every
variant. "% of ceiling" is the step's counted GFLOP/s over the ceiling of the variant's
precision: the faster of its matmul and conv rows. (fp32 `torch.mm` runs in MKL and the convs
in oneDNN; on an AMD EPYC with AVX-512 the conv was the faster one, 102 against 75 GFLOP/s on
one core.)
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from srgan.data import TrainCrops, batch_stream
from srgan.degradation import degrade_batch
from srgan.discriminator import Discriminator
from srgan.generator import Generator, GeneratorSpec
from srgan.images import read_image
from srgan.losses import ContentLoss
from srgan.runtime import Runtime, bf16_native
from srgan.steps import LossWeights, Network, gan_step, pretrain_step

DIV2K_SIZE = (1356, 2040)  # (height, width) of a typical DIV2K training image
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
# Square matmul side: large enough to reach the ceiling, small enough for a few calls a second.
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
# Time cap of one training-step measurement; a GAN step gets twice as long.
DEFAULT_SECONDS = {"cpu": 10.0, "cuda": 2.0}
PIPELINE_BATCHES = 20  # batches per timed call of the in-RAM pipeline
# x86 SIMD families that decide how fast fp32 and bf16 run (the JSON keeps these flags).
SIMD_FLAG_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c")
# The ones the table names: the widest fp32 vector units and native bf16 (oneDNN's test).
KEY_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
# Thread settings read when torch starts; OMP_WAIT_POLICY=PASSIVE stops idle threads spinning,
# which matters on a CPU shared with other work.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


@dataclass(frozen=True)
class Workload:
    """The training step being timed; the defaults are the paper's sizes."""

    batch_size: int = 16
    crop_size: int = 96
    generator: GeneratorSpec = field(default_factory=GeneratorSpec)
    discriminator_channels: int = 64
    content_layer: str = "vgg54"


@dataclass(frozen=True)
class Variant:
    """One way to run the same step; the first of `training_variants` is the baseline."""

    name: str
    precision: str  # a key of PRECISIONS
    channels_last: bool
    fused_adam: bool = False  # False: torch's default Adam (foreach on CUDA, a loop on CPU)
    compile: bool = False


@dataclass(frozen=True)
class Timing:
    """What one measurement may spend."""

    seconds: float  # cap on the timed calls: no call starts once it is spent
    # Untimed first calls: allocation, oneDNN primitive creation, cuDNN autotuning, compiling.
    warmup_calls: int = 1
    chunks: int = 5  # the timed calls run in about this many chunks; the median chunk counts


@dataclass(frozen=True)
class Rate:
    per_second: float
    calls: int  # timed calls
    seconds: float  # the time they took


def synchronize(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without a sync the clock would stop before they finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_rate(
    call: Callable[[], object],
    device: torch.device,
    timing: Timing,
    clock: Callable[[], float] = time.perf_counter,
) -> Rate:
    """Calls per second of `call` after its warm-up, timed for about `timing.seconds`.

    The first timed chunk is a single call, which sizes the next chunks to about
    seconds / chunks each (the device is synchronized at chunk ends only, so queued CUDA
    kernels overlap). No chunk starts that would not fit in what is left of the cap, so the
    timed calls take at most the cap, or one call where a single call is longer. The rate is
    the median of the chunks' rates: a burst of other work on the machine moves it less than
    it moves a mean.
    """
    for _ in range(timing.warmup_calls):
        call()
    synchronize(device)
    chunk_rates, calls, elapsed, chunk = [], 0, 0.0, 1
    while True:
        start = clock()
        for _ in range(chunk):
            call()
        synchronize(device)
        duration = max(clock() - start, 1e-9)
        chunk_rates.append(chunk / duration)
        calls, elapsed = calls + chunk, elapsed + duration
        per_call = duration / chunk
        remaining = timing.seconds - elapsed
        if remaining < per_call:
            return Rate(statistics.median(chunk_rates), calls, elapsed)
        chunk_target = math.ceil(timing.seconds / timing.chunks / per_call)
        chunk = max(1, min(int(remaining / per_call), chunk_target))


def count_flops(call: Callable[[], object]) -> int:
    """Matmul and convolution FLOPs of one call of `call` (see the module docstring)."""
    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and its SIMD flags (from /proc/cpuinfo on Linux; else no flags)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    entries = {}
    for line in lines:
        key, _, value = line.partition(":")
        entries.setdefault(key.strip(), value.strip())  # the first core's entry
    model = entries.get("model name") or platform.processor() or "unknown CPU"
    flags = entries.get("flags", "").split()
    return model, sorted(flag for flag in flags if flag.startswith(SIMD_FLAG_PREFIXES))


def cpu_cores() -> int:
    """Cores this process may run on (all cores where the OS has no affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info(device: torch.device) -> dict:
    """What the numbers depend on: processor, accelerator, library versions, threads."""
    model, flags = cpu_model_and_flags()
    info = {
        "cpu": model,
        "cpu_flags": flags,
        "cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "gpu": None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = {
            "name": properties.name,
            "capability": f"{properties.major}.{properties.minor}",
            "memory_gib": round(properties.total_memory / 2**30, 1),
        }
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def split_precisions(device: torch.device) -> tuple[list[str], list[str]]:
    """(native precisions, which are timed; the others, which are only listed)."""
    native = ["fp32"] + (["bf16"] if bf16_native(device) else [])
    return native, [name for name in PRECISIONS if name not in native]


def training_variants(native: list[str], compile: bool) -> list[Variant]:
    """A ladder from the fp32 NCHW baseline, each variant changing one thing from the one
    before: the fastest native precision (the last of `native`), channels_last, fused Adam,
    then torch.compile if asked for."""
    best = native[-1]
    variants = [Variant("fp32 NCHW", "fp32", channels_last=False)]
    if best != "fp32":
        variants.append(Variant(f"{best} NCHW", best, channels_last=False))
    variants.append(Variant(f"{best} channels_last", best, channels_last=True))
    fused = Variant(f"{best} channels_last fused Adam", best, True, fused_adam=True)
    variants.append(fused)
    if compile:
        variants.append(replace(fused, name=f"{fused.name} compile", compile=True))
    return variants


def gan_variants(
    variants: list[Variant], pretrain_rates: dict[str, float], device: torch.device
) -> list[Variant]:
    """Every variant on CUDA; on a CPU the baseline and the fastest pretrain variant."""
    if device.type == "cuda":
        return variants
    fastest = max(variants, key=lambda variant: pretrain_rates[variant.name])
    return [variants[0]] if fastest == variants[0] else [variants[0], fastest]


def ceiling_calls(
    device: torch.device, precision: str, workload: Workload
) -> dict[str, tuple[Callable[[], object], int, str]]:
    """Matmul and conv calls in `precision`, each with its FLOPs and a description."""
    dtype = PRECISIONS[precision] or torch.float32
    size = MATMUL_SIZE[device.type]
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    # The residual blocks' convolution, the bulk of the generator's work.
    channels = workload.generator.num_channels
    side = workload.crop_size // workload.generator.scale
    shape = (workload.batch_size, channels, side, side)
    features = torch.randn(shape, device=device, dtype=dtype)
    features = features.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)

    def convolve() -> None:
        with torch.no_grad():
            conv(features)

    conv_flops = 2 * math.prod(shape) * channels * 9
    return {
        "matmul": (lambda: torch.mm(left, right), 2 * size**3, f"{size}x{size}"),
        "conv": (convolve, conv_flops, "3x3 on " + "x".join(map(str, shape))),
    }


def measure_ceilings(
    device: torch.device,
    native: list[str],
    workload: Workload,
    timing: Timing,
    log: Callable[[str], None],
) -> list[dict]:
    rows = []
    for precision in native:
        row = {"precision": precision}
        for name, (call, flops, shape) in ceiling_calls(device, precision, workload).items():
            row[f"{name}_gflops"] = flops * measure_rate(call, device, timing).per_second / 1e9
            row[f"{name}_shape"] = shape
        row["ceiling_gflops"] = max(row["matmul_gflops"], row["conv_gflops"])
        log(
            f"ceiling {precision}: matmul {row['matmul_gflops']:.0f} GFLOP/s, "
            f"conv {row['conv_gflops']:.0f} GFLOP/s"
        )
        rows.append(row)
    return rows


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
    """One (LR, HR) pair the per-sample way: open the PNG, crop, flip, to tensor, downscale.

    `transform` has TrainCrops' meaning (bits: horizontal flip, vertical flip, transpose),
    so the same crop plan gives the same pairs as the in-RAM pipeline.
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
    return degrade_batch(hr_image, scale, "bicubic"), hr_image


def naive_loader_call(
    paths: list[Path], crop_size: int, scale: int, pool: ThreadPoolExecutor, workers: int
) -> Callable[[], None]:
    """A call that makes `workers` random pairs with `naive_pair`, one per thread (like
    DataLoader workers; PIL releases the GIL while decoding)."""
    rng = np.random.default_rng(0)
    sizes = {}
    for path in paths:
        with Image.open(path) as image:
            sizes[path] = image.size

    def call() -> None:
        plan = []
        for _ in range(workers):
            path = paths[rng.integers(len(paths))]
            width, height = sizes[path]
            top, left = rng.integers(height - crop_size + 1), rng.integers(width - crop_size + 1)
            plan.append((path, int(top), int(left), int(rng.integers(8)), crop_size, scale))
        list(pool.map(lambda arguments: naive_pair(*arguments), plan))

    return call


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
        lr_image = degrade_batch(hr_image, scale, "bicubic")
    return lr_image, hr_image


def measure_data(
    device: torch.device,
    image_paths: list[Path],
    workload: Workload,
    timing: Timing,
    log: Callable[[str], None],
) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """Pairs/s of the naive loader and of the in-RAM pipeline, and one pipeline batch."""
    crop_size, scale = workload.crop_size, workload.generator.scale
    workers = cpu_cores()
    with ThreadPoolExecutor(workers) as pool:
        call = naive_loader_call(image_paths, crop_size, scale, pool, workers)
        naive = workers * measure_rate(call, torch.device("cpu"), timing).per_second
    log(f"naive loader: {naive:.1f} pairs/s ({workers} threads)")
    start = time.perf_counter()
    # The one-time cost the pipeline pays instead: each image decoded once (srgan.data).
    images = [read_image(path) for path in image_paths]
    decode_seconds = (time.perf_counter() - start) / len(image_paths)
    # An epoch as long as DIV2K's (800 crops), so each plan shuffles a realistic order.
    crops = TrainCrops(images, crop_size, crops_per_image=max(1, 800 // len(images)))
    runtime = Runtime(device, None, channels_last=False)

    def pipeline() -> None:
        pipeline_pairs(crops, runtime, workload.batch_size, scale, PIPELINE_BATCHES)

    pairs_per_call = PIPELINE_BATCHES * workload.batch_size
    fast = pairs_per_call * measure_rate(pipeline, device, timing).per_second
    log(f"in-RAM pipeline: {fast:,.0f} pairs/s (decoding: {decode_seconds:.2f} s/image)")
    data = {
        "naive_pairs_per_second": naive,
        "naive_workers": workers,
        "pipeline_pairs_per_second": fast,
        "speedup": fast / naive,
        "decode_seconds_per_image": decode_seconds,
    }
    return data, pipeline_pairs(crops, runtime, workload.batch_size, scale, 1)


def content_loss_for(workload: Workload) -> ContentLoss:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG weights: the speed is the same
        return ContentLoss(layer=workload.content_layer, weights="random")


def training_call(
    variant: Variant,
    step: str,
    device: torch.device,
    workload: Workload,
    batch: tuple[torch.Tensor, torch.Tensor],
    content_loss: ContentLoss | None,
) -> Callable[[], None]:
    """One `pretrain_step` or `gan_step` of `variant` on `batch`, ready to time.

    The networks are built the way srgan/stages.py builds them: the compiled module runs the
    step, the bare one holds the weights, and every variant starts from the same weights.
    """
    runtime = Runtime(device, PRECISIONS[variant.precision], variant.channels_last)
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format

    def network(bare: torch.nn.Module) -> Network:
        bare = bare.to(device, memory_format=memory_format)
        module = torch.compile(bare) if variant.compile else bare
        # fused=None is torch's default: foreach kernels on CUDA, a per-tensor loop on a CPU.
        optimizer = torch.optim.Adam(bare.parameters(), lr=1e-5, fused=variant.fused_adam or None)
        return Network(module, module, bare, optimizer, runtime.grad_scaler())

    torch.manual_seed(0)
    generator = network(Generator.from_spec(workload.generator))
    lr_image = runtime.to_device(batch[0])
    hr_image = runtime.to_device(batch[1]) * 2 - 1
    if step == "pretrain":
        return lambda: pretrain_step(generator, runtime, lr_image, hr_image)
    discriminator = network(
        Discriminator(crop_size=workload.crop_size, num_channels=workload.discriminator_channels)
    )
    content = copy.deepcopy(content_loss).to(device, memory_format=memory_format)
    weights = LossWeights()
    return lambda: gan_step(
        generator, discriminator, content, weights, runtime, (lr_image, hr_image)
    )


def measure_steps(
    step: str,
    variants: list[Variant],
    device: torch.device,
    workload: Workload,
    batch: tuple[torch.Tensor, torch.Tensor],
    timing: Timing,
    log: Callable[[str], None],
) -> tuple[int, dict[str, Rate]]:
    """FLOPs of one `step` and its rate per variant; variants[0] must be the eager baseline.

    The baseline's first call runs under the FLOP counter and counts as one of its warm-up
    calls. Each variant's networks are freed before the next one is built.
    """
    content_loss = content_loss_for(workload) if step == "gan" else None
    flops, rates = 0, {}
    for variant in variants:
        call = training_call(variant, step, device, workload, batch, content_loss)
        # Compiling takes the first calls: forward, backward, and recompiles as flags change.
        warmup_calls = timing.warmup_calls + (2 if variant.compile else 0)
        if not rates:
            flops = count_flops(call)
            warmup_calls -= 1
        rates[variant.name] = measure_rate(call, device, replace(timing, warmup_calls=warmup_calls))
        log(f"{step} {variant.name}: {rates[variant.name].per_second:.3g} it/s")
        del call  # frees this variant's networks before the next one is built
    return flops, rates


def training_rows(
    step: str, flops: int, rates: dict[str, Rate], variants: list[Variant], ceilings: list[dict]
) -> list[dict]:
    """One JSON row per timed variant: rate, ratio to the baseline, GFLOP/s, % of ceiling."""
    ceiling = {row["precision"]: row["ceiling_gflops"] for row in ceilings}
    baseline = rates[variants[0].name].per_second
    rows = []
    for variant in variants:
        if variant.name not in rates:
            continue
        rate = rates[variant.name]
        gflops = flops * rate.per_second / 1e9
        rows.append(
            {
                "step": step,
                **asdict(variant),
                "steps_per_second": rate.per_second,
                "timed_calls": rate.calls,
                "timed_seconds": rate.seconds,
                "vs_baseline": rate.per_second / baseline,
                "gflops": gflops,
                "percent_of_ceiling": 100 * gflops / ceiling[variant.precision],
            }
        )
    return rows


def run_benchmark(
    device: torch.device,
    image_paths: list[Path],
    *,
    workload: Workload | None = None,
    seconds: float | None = None,
    compile: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """All measurements as a JSON-able dict (see `markdown_table`).

    seconds: time cap of a pretrain-step measurement (default DEFAULT_SECONDS); a GAN step
    gets twice, the data pipeline half and each ceiling a quarter of it. 0 times one call
    of each. compile: add the torch.compile variant (default: on CUDA only).
    """
    workload = workload or Workload()
    seconds = DEFAULT_SECONDS[device.type] if seconds is None else seconds
    compile = device.type == "cuda" if compile is None else compile
    native, not_native = split_precisions(device)
    results: dict = {
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
    results["ceiling"] = measure_ceilings(device, native, workload, Timing(seconds / 4), log)
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
        f"| data: in-RAM crops + batched bicubic (`batch_stream` + `degrade_batch`) | "
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
    return "\n".join(lines)
