"""The SRResNet an SRGAN was trained from: recorded when the SRGAN is exported, found again
when it is interpolated with it (`srgan.inference.interpolation`).

A GAN checkpoint (kind "srgan") holds `pretrained_from`, the path or shipped model's name that
training read, and, in checkpoints of newer training code, `pretrained_sha256`, that file's
SHA-256. A safetensors export records `pretrained_sha256` and `pretrained_name`: the shipped
model's name where the SHA-256 is a shipped model's, else the file name of `pretrained_from`
(a whole path would only hold on the machine that trained it).

`base_model_path` finds the SRResNet: an explicit base wins; else, in this order, the shipped
model of the recorded name, the shipped model with the recorded SHA-256, the recorded path and
a file of the recorded name beside the SRGAN's file, the first that exists and whose SHA-256 is
the recorded one (where one is recorded). An explicit base that is not the recorded file is
warned about (`warn_unrecorded_base`) once the interpolation has run.
"""

import warnings
from pathlib import Path

import torch

from srgan.files import file_sha256
from srgan.inference.shipped_models import SHIPPED_MODELS, shipped_model_path, weights_path
from srgan.inference.weights import read_weights

RECORD_KEYS = ("pretrained_from", "pretrained_sha256", "pretrained_name")
BASE_HINT = "pass --base PATH_OR_NAME, the SRResNet to interpolate with"


def _shipped_file(name: str) -> Path | None:
    """The shipped model's file, or None where this installation lacks it."""
    try:
        return shipped_model_path(name)
    except FileNotFoundError:
        return None


def shipped_model_with_sha256(sha256: str | None) -> str | None:
    """The name of the shipped model whose file has this SHA-256, or None."""
    if not sha256:
        return None
    for name in SHIPPED_MODELS:
        path = _shipped_file(name)
        if path is not None and file_sha256(path) == sha256:
            return name
    return None


def is_gan(weights: dict) -> bool:
    """Whether a checkpoint-like dict (see `srgan.inference.weights.read_weights`) is an SRGAN's:
    a GAN checkpoint, or an export that records the SRResNet it was trained from."""
    return weights.get("kind") == "srgan" or any(weights.get(key) for key in RECORD_KEYS)


def shipped_model_with_weights(source: str | None) -> str | None:
    """The name of the shipped model whose generator weights equal those of the file `source`
    (an SRResNet checkpoint that was shipped as its export, another file), or None, also where
    `source` is not on this machine."""
    if not source or not weights_path(source).is_file():
        return None
    weights = read_weights(source).get("generator", {})
    for name in SHIPPED_MODELS:
        path = _shipped_file(name)
        if path is None:
            continue
        shipped = read_weights(path)["generator"]
        if shipped.keys() == weights.keys() and all(
            torch.equal(tensor, weights[key].to(tensor.dtype)) for key, tensor in shipped.items()
        ):
            return name
    return None


def pretrained_record(weights: dict) -> dict[str, str]:
    """{"pretrained_sha256", "pretrained_name"} for an SRGAN's export, each where known; {} for
    a checkpoint that records no SRResNet (an SRResNet's). An SRResNet shipped as an export of
    the checkpoint training read is recorded as that shipped model, with its file's SHA-256."""
    sha256 = weights.get("pretrained_sha256")
    source = weights.get("pretrained_from")
    name = shipped_model_with_sha256(sha256) or weights.get("pretrained_name")
    if name is None:
        name = shipped_model_with_weights(source)
        if name is not None:
            sha256 = file_sha256(shipped_model_path(name))
    if name is None and source:
        name = Path(source).name
    record = {"pretrained_sha256": sha256, "pretrained_name": name}
    return {key: value for key, value in record.items() if value}


def _candidates(weights: dict, source: Path) -> list[Path]:
    """The files that may be the recorded SRResNet, in the order of the module docstring."""
    name = weights.get("pretrained_name")
    shipped = [name] if name in SHIPPED_MODELS else []
    shipped.append(shipped_model_with_sha256(weights.get("pretrained_sha256")))
    candidates = [_shipped_file(model) for model in shipped if model is not None]
    if weights.get("pretrained_from"):
        candidates.append(weights_path(weights["pretrained_from"]))
    if name:
        candidates.append(source.parent / name)
    return list(dict.fromkeys(path for path in candidates if path is not None))


def warn_unrecorded_base(base: Path, weights: dict, source: Path) -> None:
    """Warn where `base` is not the SRResNet the SRGAN `weights` (read from `source`) records,
    when it records one: an explicit base wins, but then the two are likely unrelated."""
    sha256 = weights.get("pretrained_sha256")
    if sha256 and file_sha256(base) != sha256:
        warnings.warn(
            f"--base {base} is not the SRResNet {source} was trained from (its SHA-256 differs "
            "from the recorded one): the interpolation runs between unrelated weights",
            stacklevel=2,
        )


def base_model_path(weights: dict, source: Path, base: str | Path | None = None) -> Path:
    """The SRResNet file of the SRGAN `weights` read from `source` (see the module docstring).

    ValueError, naming `source` and saying to pass a base, where `weights` is no SRGAN's or no
    recorded file exists with the recorded SHA-256.
    """
    if base is not None:
        return weights_path(base)
    sha256 = weights.get("pretrained_sha256")
    if not any(weights.get(key) for key in RECORD_KEYS):
        what = "" if is_gan(weights) else " is not an SRGAN checkpoint: it"
        raise ValueError(f"{source}{what} records no SRResNet it was trained from; {BASE_HINT}")
    found = [path for path in _candidates(weights, source) if path.is_file()]
    for path in found:
        if not sha256 or file_sha256(path) == sha256:
            return path
    recorded = weights.get("pretrained_from") or weights.get("pretrained_name") or sha256
    if found:
        raise ValueError(
            f"{source} was trained from {recorded}, but {found[0]} has another SHA-256 than "
            f"the recorded {sha256[:12]}...; {BASE_HINT}"
        )
    raise ValueError(f"{source} was trained from {recorded}, which is not found; {BASE_HINT}")
