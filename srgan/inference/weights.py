"""Reading a generator's weights: our .pt checkpoints (`srgan.checkpoint`), .safetensors
exports, or a shipped model by name. Neither format runs code while loading."""

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from srgan.checkpoint import CheckpointError, generator_from_checkpoint, load_checkpoint
from srgan.inference.shipped_models import weights_path
from srgan.models.generator import Generator, GeneratorSpec

SAFETENSORS_FORMAT = "srgan-generator"  # metadata["format"] of our safetensors exports
# What an SRGAN's export records of the SRResNet it was trained from (see pretrained_source).
PRETRAINED_KEYS = ("pretrained_sha256", "pretrained_name")


def safetensors_metadata(
    spec: GeneratorSpec, degradation: str | None = None, pretrained: dict[str, str] | None = None
) -> dict[str, str]:
    """String metadata of a weights-only export (safetensors and ONNX allow strings only):
    the spec, the degradation the model was trained for when known, and for an SRGAN the
    PRETRAINED_KEYS of `pretrained` it has (`srgan.inference.pretrained_source`)."""
    metadata = {
        "format": SAFETENSORS_FORMAT,
        **{key: str(value) for key, value in spec.to_dict().items()},
        "paper": "Ledig et al., SRGAN, arXiv 1609.04802",
    }
    if degradation is not None:
        metadata["degradation"] = degradation
    metadata.update({key: pretrained[key] for key in PRETRAINED_KEYS if key in (pretrained or {})})
    return metadata


def read_safetensors(path: Path) -> dict:
    """A weights-only export as {"model": spec dict, "generator": state dict, "degradation"
    and PRETRAINED_KEYS if recorded}, the keys a checkpoint has.

    The spec comes from the file's metadata (see `safetensors_metadata`), so the model can be
    rebuilt without any pickled Python object.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
        state_dict = load_file(path)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise CheckpointError(
            f"{path} is not an srgan generator export (no '{SAFETENSORS_FORMAT}' metadata); "
            "make one with scripts/export.py --format safetensors"
        )
    try:
        spec = GeneratorSpec.from_dict(metadata)
    except ValueError as error:
        raise CheckpointError(f"{path} has unusable model metadata ({error})") from None
    weights = {"model": spec.to_dict(), "generator": state_dict}
    if "degradation" in metadata:
        weights["degradation"] = {"kind": metadata["degradation"]}
    weights.update({key: metadata[key] for key in PRETRAINED_KEYS if key in metadata})
    return weights


def read_weights(path: str | Path) -> dict:
    """A checkpoint of ours (.pt) or a .safetensors export, as a checkpoint-like dict; a
    shipped model's name (e.g. srresnet_x4_291) where no such file exists. Neither format runs
    code while loading."""
    path = weights_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return read_safetensors(path) if path.suffix == ".safetensors" else load_checkpoint(path)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The generator of a checkpoint (SRResNet or SRGAN), an export or a shipped model's name
    (see `read_weights`), eval mode, on `device`."""
    return generator_from_checkpoint(read_weights(path), str(path)).to(device)
