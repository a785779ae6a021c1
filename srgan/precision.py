"""Numeric precisions by name, the one table training, inference and the benchmark share, and
whether a device runs bf16 natively.

A top-level module because inference and the benchmark must not import from `srgan.train`.
"""

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
