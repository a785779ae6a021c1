"""What this machine can do: its native precisions, the rate of a call capped by time, FLOP
counts, and the matmul/conv ceilings (its description is `srgan.machine.machine_info`).

Precisions: fp32 always; bf16 only where `srgan.machine.bf16_native` says the hardware runs
it natively (oneDNN with AVX512-BF16 or AMX on a CPU, Ampere or newer on CUDA). Elsewhere bf16
is emulated and many times slower than fp32, so it is listed as not native and not timed.

Timing: every measurement is capped by time, not by a count of calls (`measure_rate`), so it
takes about as long however slow the machine is.

FLOPs (`count_flops`): matmuls and convolutions, forward and backward, 2 FLOPs per
multiply-add, only for the gradients the call really computes. Elementwise work (BatchNorm,
PReLU, losses, optimizers) is not counted: it has no FLOP ceiling to be compared with.

Ceilings (`measure_ceilings`): a dense square matmul and a 3x3 convolution alone (forward,
channels_last), in each native precision: the GFLOP/s this machine reaches at best. A
precision's ceiling is the faster of the two. (fp32 `torch.mm` runs in MKL and the convs in
oneDNN; on an AMD EPYC with AVX-512 the conv was the faster one, 102 against 75 GFLOP/s on
one core.)
"""

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from srgan.machine import PRECISIONS, bf16_native

# The precisions timed where native; fp16 needs a GPU and a loss scaler, and is left to training.
TIMED_PRECISIONS = ("fp32", "bf16")
# Square matmul side: large enough to reach the ceiling, small enough for a few calls a second.
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}


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


def split_precisions(device: torch.device) -> tuple[list[str], list[str]]:
    """(native precisions, which are timed; the others, which are only listed)."""
    native = ["fp32"] + (["bf16"] if bf16_native(device) else [])
    return native, [name for name in TIMED_PRECISIONS if name not in native]


def ceiling_calls(
    device: torch.device, precision: str, conv_shape: tuple[int, int, int, int]
) -> dict[str, tuple[Callable[[], object], int, str]]:
    """Matmul and conv calls in `precision`, each with its FLOPs and a description; the conv
    keeps the channel count of its (batch, channels, height, width) input `conv_shape`."""
    dtype = PRECISIONS[precision]
    size = MATMUL_SIZE[device.type]
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    channels = conv_shape[1]
    features = torch.randn(conv_shape, device=device, dtype=dtype)
    features = features.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)

    def convolve() -> None:
        with torch.no_grad():
            conv(features)

    conv_flops = 2 * math.prod(conv_shape) * channels * 9
    return {
        "matmul": (lambda: torch.mm(left, right), 2 * size**3, f"{size}x{size}"),
        "conv": (convolve, conv_flops, "3x3 on " + "x".join(map(str, conv_shape))),
    }


def measure_ceilings(
    device: torch.device,
    native: list[str],
    conv_shape: tuple[int, int, int, int],
    timing: Timing,
    log: Callable[[str], None],
) -> list[dict]:
    """One JSON row per native precision: matmul and conv GFLOP/s, and the faster of the two."""
    rows = []
    for precision in native:
        row = {"precision": precision}
        for name, (call, flops, shape) in ceiling_calls(device, precision, conv_shape).items():
            row[f"{name}_gflops"] = flops * measure_rate(call, device, timing).per_second / 1e9
            row[f"{name}_shape"] = shape
        row["ceiling_gflops"] = max(row["matmul_gflops"], row["conv_gflops"])
        log(
            f"ceiling {precision}: matmul {row['matmul_gflops']:.0f} GFLOP/s, "
            f"conv {row['conv_gflops']:.0f} GFLOP/s"
        )
        rows.append(row)
    return rows
