"""Provenance of an evaluation: what a results table needs to be reproduced and trusted.

Recorded in results.json beside the numbers: each checkpoint's path and SHA-256, the folders
of published outputs scored (--outputs: name, dataset, path, file count), the interpolated
checkpoints (--strengths: the SRGAN, its SRResNet and its SHA-256, the rows), the code (the
git commit and whether the working tree differs from it when the package runs from a git
checkout, the package version otherwise), the protocol's settings, the machine and the UTC
date.
"""

import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

from srgan.files import file_sha256
from srgan.machine import machine_info

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds srgan/


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    return completed.stdout.strip()


def code_version() -> dict:
    """{"commit", "dirty"} when the package is the top of a git checkout, else {"version"}.

    Dirty: tracked files modified or untracked files that git does not ignore, either of
    which may change what ran. A package installed into a virtual environment that lives
    inside some other checkout is not mistaken for that checkout's code.
    """
    try:
        if Path(_git("rev-parse", "--show-toplevel")).resolve() == PACKAGE_ROOT:
            return {
                "commit": _git("rev-parse", "HEAD"),
                "dirty": bool(_git("status", "--porcelain")),
            }
    except (OSError, subprocess.SubprocessError):
        pass  # no git, not a checkout, or git refuses it: the version is what is known
    try:
        return {"version": metadata.version("srgan")}
    except metadata.PackageNotFoundError:
        return {"version": None}


def protocol_settings(
    scale: int, degradation: str, gaussian_sigma: float, lr_dirs: list[Path] | None
) -> dict:
    """The evaluation protocol's settings, as `srgan.eval.protocol` applies them."""
    if lr_dirs is not None:
        lr_images = f"LR files from {', '.join(str(folder) for folder in lr_dirs)}"
    elif degradation == "bicubic":
        lr_images = f"MATLAB imresize(HR, 1/{scale}, 'bicubic'), antialiased, uint8"
    else:
        lr_images = f"Gaussian blur (sigma {gaussian_sigma}), every {scale}th pixel, uint8"
    return {
        "scale": scale,
        "modcrop": f"HR cropped to a multiple of {scale} (top-left anchored)",
        "border_crop": scale,
        "y_conversion": "BT.601: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on 0..255; "
        "gray images on their own values",
        "lr_degradation": lr_images,
        "output_rounding": "SR outputs clamped to [0, 1] and rounded to 8 bits before scoring",
        "niqe": "Mittal et al. 2013, MATLAB release conventions: Y rounded to integer levels, "
        "96 px patches; null under 96 px on a side after the border crop",
        "grid_percent": "percentage of the Hann-windowed Y residual's (SR - HR) spectral energy, "
        "DC excluded, within 1/64 cycle/pixel of the 15 non-zero (k/4, l/4)",
    }


def evaluation_provenance(
    checkpoints: list[Path],
    protocol: dict,
    device: torch.device,
    outputs: list[dict] | None = None,
    interpolations: list[dict] | None = None,
) -> dict:
    """The provenance block of results.json; models run in fp32 (`model_upscaler`), without
    TF32 on CUDA (`srgan.machine.exact_fp32_kernels`). `outputs`: the --outputs folders
    scored, {name, dataset, path, files} each; `interpolations`: the --strengths curves'
    `srgan.eval.strength_rows.StrengthCurve.provenance`."""
    return {
        "checkpoints": [{"path": str(path), "sha256": file_sha256(path)} for path in checkpoints],
        "outputs": outputs or [],
        "interpolations": interpolations or [],
        "code": code_version(),
        "protocol": protocol,
        "machine": {
            **machine_info(device),
            "device": str(device),
            "precision": "fp32",
            "tf32": False,
        },
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
