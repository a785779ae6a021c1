"""The machine code runs on: its description (for results that say where they were measured),
the numeric precisions by name, and which of them it runs natively.

Top level, because training, inference, evaluation and the benchmark all need it and none of
them may import from the others for it.
"""

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

# runtime.precision and --precision names -> the dtype a network computes in. The order is the
# one the upscale command lists its choices in.
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def amp_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of `precision`: None for fp32, which runs without autocast."""
    return None if precision == "fp32" else PRECISIONS[precision]


def bf16_native(device: torch.device) -> bool:
    """Whether `device` runs bf16 natively (else bf16 autocast would be slower than fp32)."""
    if device.type == "cuda":
        # Pre-Ampere GPUs (T4, V100) only emulate bf16: the default would count them.
        return torch.cuda.is_bf16_supported(including_emulation=False)
    # oneDNN runs bf16 convolutions natively on CPUs with AVX512-BF16 or AMX; elsewhere it
    # emulates them and autocast would be slower than fp32.
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_device(device: str) -> torch.device:
    """`device` ("auto", "cpu" or "cuda") as the device to run on: "auto" takes CUDA where it is
    available. ValueError for "cuda" where it is not, rather than a failure at the first tensor."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("cuda was asked for, but CUDA is not available here")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`precision` ("fp32", "bf16", "fp16" or "auto") as `device` will run it: "auto" is bf16
    where the hardware runs it natively and fp32 elsewhere. ValueError for one it cannot run
    (fp16 on a CPU) and for bf16 where it would only be emulated: on a CPU without AVX512-BF16
    or AMX that ran 17 to 50 times slower than fp32, and silently running fp32 instead would
    give other numbers than asked for."""
    native = bf16_native(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}, expected one of {', '.join(PRECISIONS)}"
        )
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; on a CPU use bf16 or fp32")
    if precision == "bf16" and not native:
        hardware = (
            "this GPU only emulates bf16 (native from Ampere on)"
            if device.type == "cuda"
            else "this CPU has no native bf16 (AVX512-BF16 or AMX)"
        )
        raise ValueError(
            f"bf16: {hardware}, so it would run many times slower than fp32 (17-50x on "
            "AVX2-only CPUs); use fp32 or auto"
        )
    return precision


@contextlib.contextmanager
def exact_fp32_kernels() -> Iterator[None]:
    """Within: true fp32 convolutions and matmuls on CUDA (no TF32, which training turns on)
    and no cuDNN autotuning (validation and tiles come in many shapes, each would be tuned);
    the earlier settings are restored after. On a CPU these flags change nothing."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark)
    cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = False, False, False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = saved


# x86 SIMD families that decide how fast fp32 and bf16 run (machine_info keeps these flags).
SIMD_FLAG_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c")
# Thread settings read when torch starts; OMP_WAIT_POLICY=PASSIVE stops idle threads spinning,
# which matters on a CPU shared with other work.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


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
