"""How fast the training loop's work runs here: its input pipeline against a naive loader, and
its steps in several precision/layout/optimizer variants.

Data (`measure_data`): LR/HR pairs per second of a naive per-sample loader (open the PNG,
crop, flip, downscale; one thread per core) and of the training loop's in-RAM pipeline
(`BatchStream`, then `prepare_batch`: one batched `degrade_batch` per step).

Steps (`measure_steps`): the package's `pretrain_step`, and `gan_step` (plus the discriminator
and the content loss), on the `Workload`, by default the paper's size: 16-block SRResNet,
batch 16, 96 px HR crops, VGG54 content loss.

Variants (`training_variants`): a ladder from the baseline, fp32 NCHW with the multi-tensor
Adam that training runs on a CPU, where each rung changes one thing: bf16 where native, then
channels_last, then fused Adam (training's choice on CUDA), then torch.compile if asked for.

FLOPs: counted with `count_flops` once per step kind during the baseline's first (warm-up)
call, so only for the gradients the step really computes (no input gradient for the first
layer, no weight gradient for the frozen VGG). Precision, memory layout and compilation do not
change the count, so one count serves every variant. "% of ceiling" is the step's counted
GFLOP/s over the ceiling of the variant's precision (`measure_ceilings`).
"""

import copy
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.benchmark.hardware import Rate, Timing, count_flops, measure_rate
from srgan.data.crops import BatchStream, TrainCrops
from srgan.data.degradation import degrade_batch
from srgan.data.images import read_image
from srgan.machine import amp_dtype, cpu_cores
from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator, GeneratorSpec
from srgan.models.losses import ContentLoss, GanLosses
from srgan.run.runtime import Runtime
from srgan.train.networks import Network, build_network
from srgan.train.steps import Batch, Degradation, gan_step, prepare_batch, pretrain_step

PIPELINE_BATCHES = 20  # batches per timed call of the in-RAM pipeline
# The timed steps' learning rate: small, so that the weights change as in training.
LEARNING_RATE = 1e-5


@dataclass(frozen=True)
class Workload:
    """The training step being timed; the defaults are the paper's sizes."""

    batch_size: int = 16
    crop_size: int = 96
    generator: GeneratorSpec = field(default_factory=GeneratorSpec)
    discriminator_channels: int = 64
    content_layer: str = "vgg54"

    @property
    def residual_features(self) -> tuple[int, int, int, int]:
        """(batch, channels, height, width) of the residual blocks' input: their 3x3
        convolution is the bulk of the generator's work."""
        side = self.crop_size // self.generator.scale
        return (self.batch_size, self.generator.num_channels, side, side)


@dataclass(frozen=True)
class Variant:
    """One way to run the same step; the first of `training_variants` is the baseline."""

    name: str
    precision: str  # one of srgan.benchmark.hardware.TIMED_PRECISIONS
    channels_last: bool
    fused_adam: bool = False  # False: the multi-tensor (foreach) Adam
    compile: bool = False


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
) -> Batch:
    """Run the training loop's input path for `batches` steps; returns the last batch."""
    stream = BatchStream(
        crops,
        range(batches),
        seed=0,
        stage=0,
        batch_size=batch_size,
        rows=slice(None),
        pin_memory=runtime.device.type == "cuda",
    )
    degradation = Degradation(scale)
    with stream:
        for step, hr_uint8 in enumerate(stream):
            batch = prepare_batch(hr_uint8, step, runtime, degradation)
    return batch


def measure_data(
    device: torch.device,
    image_paths: list[Path],
    workload: Workload,
    timing: Timing,
    log: Callable[[str], None],
) -> tuple[dict, Batch]:
    """Pairs/s of the naive loader and of the in-RAM pipeline, and one pipeline batch."""
    crop_size, scale = workload.crop_size, workload.generator.scale
    workers = cpu_cores()
    with ThreadPoolExecutor(workers) as pool:
        call = naive_loader_call(image_paths, crop_size, scale, pool, workers)
        naive = workers * measure_rate(call, torch.device("cpu"), timing).per_second
    log(f"naive loader: {naive:.1f} pairs/s ({workers} threads)")
    start = time.perf_counter()
    # The one-time cost the pipeline pays instead: each image decoded once (srgan.data.crops).
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


def timed_network(module: torch.nn.Module, runtime: Runtime, variant: Variant) -> Network:
    """`module` built as training builds it (`build_network`), with `variant`'s Adam and
    compilation, at a fixed small learning rate (the loop sets it before each step)."""
    network = build_network(module, runtime, compile=variant.compile, fused_adam=variant.fused_adam)
    for group in network.optimizer.param_groups:
        group["lr"] = LEARNING_RATE
    return network


def training_call(
    variant: Variant,
    step: str,
    device: torch.device,
    workload: Workload,
    batch: Batch,
    content_loss: ContentLoss | None,
) -> Callable[[], None]:
    """One `pretrain_step` or `gan_step` of `variant` on `batch`, ready to time.

    The networks are built as training builds them, and every variant starts from the same
    weights; the batch moves to the variant's memory layout.
    """
    runtime = Runtime(device, amp_dtype(variant.precision), variant.channels_last)
    torch.manual_seed(0)
    generator = timed_network(Generator.from_spec(workload.generator), runtime, variant)
    batch = Batch(batch.step, runtime.to_device(batch.lr_image), runtime.to_device(batch.hr_image))
    if step == "pretrain":
        return lambda: pretrain_step(generator, runtime, batch)
    discriminator = timed_network(
        Discriminator(crop_size=workload.crop_size, num_channels=workload.discriminator_channels),
        runtime,
        variant,
    )
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    loss = GanLosses(copy.deepcopy(content_loss).to(device, memory_format=memory_format))
    return lambda: gan_step(generator, discriminator, loss, runtime, batch)


def measure_steps(
    step: str,
    variants: list[Variant],
    device: torch.device,
    workload: Workload,
    batch: Batch,
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
