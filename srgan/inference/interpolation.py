"""Network interpolation, the perception-distortion knob (Wang et al. 2018, ESRGAN, arXiv
1809.00219 Section 3.4): a generator between an SRResNet and the SRGAN trained from it.

At strength S every parameter and floating-point buffer is (1 - S) * SRResNet + S * SRGAN;
integer buffers (BatchNorm's num_batches_tracked, which eval mode does not read) are the
SRGAN's. S = 0 gives the SRResNet's weights exactly, S = 1 the SRGAN's. Both networks must
have one GeneratorSpec, so their tensors pair up by name and shape.
"""

from pathlib import Path

import torch

from srgan.checkpoint import CheckpointError, generator_from_checkpoint
from srgan.inference.pretrained_source import base_model_path, warn_unrecorded_base
from srgan.inference.shipped_models import weights_path
from srgan.inference.weights import load_generator, read_weights
from srgan.models.generator import Generator


def check_strength(strength: float, option: str = "strength") -> float:
    """`strength` where it lies in [0, 1]; else ValueError naming `option` and the value."""
    if not 0 <= strength <= 1:  # NaN too
        raise ValueError(
            f"{option} must be between 0 (the SRResNet) and 1 (the SRGAN), not {strength}"
        )
    return strength


@torch.no_grad()
def interpolate_generators(
    srresnet: Generator,
    srgan: Generator,
    strength: float,
    names: tuple[str, str] = ("the SRResNet", "the SRGAN"),
) -> Generator:
    """A new generator, eval mode, with the weights of the module docstring; `names` (the two
    files) name them in the CheckpointError for generators of different specs."""
    check_strength(strength)
    if srresnet.spec != srgan.spec:
        raise CheckpointError(
            f"{names[0]} ({srresnet.spec.describe()}) and {names[1]} "
            f"({srgan.spec.describe()}) are different generators: they cannot be interpolated"
        )
    srgan_state = srgan.state_dict()
    mixed = {}
    for name, tensor in srresnet.state_dict().items():
        other = srgan_state[name]
        mixed[name] = (
            (1 - strength) * tensor + strength * other if other.is_floating_point() else other
        )
    generator = Generator.from_spec(srgan.spec).to(next(srgan.parameters()).device)
    generator.load_state_dict(mixed)
    return generator.eval()


def load_interpolated(
    path: str | Path,
    strength: float = 1.0,
    base: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Generator, Path | None]:
    """`interpolated_generator`, and the SRResNet file it was interpolated with (None where
    strength 1 without `base` loaded the SRGAN alone)."""
    check_strength(strength)
    if strength == 1 and base is None:
        return load_generator(path, device), None
    weights = read_weights(path)
    srgan = generator_from_checkpoint(weights, str(path))
    base_path = base_model_path(weights, weights_path(path), base)
    srresnet = generator_from_checkpoint(read_weights(base_path), str(base_path))
    generator = interpolate_generators(srresnet, srgan, strength, (str(base_path), str(path)))
    warn_unrecorded_base(base_path, weights, weights_path(path))
    return generator.to(device), base_path


def interpolated_generator(
    path: str | Path,
    strength: float = 1.0,
    base: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Generator:
    """The generator at `strength` between the SRResNet (0) and the SRGAN of `path` (1; a
    checkpoint, export or shipped model's name), eval mode, on `device`. The SRResNet is `base`
    where given, else the one the SRGAN records (see
    `srgan.inference.pretrained_source.base_model_path`); strength 1 without `base` is
    `load_generator(path)`, no SRResNet needed."""
    return load_interpolated(path, strength, base, device)[0]
