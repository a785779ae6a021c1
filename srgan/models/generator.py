"""SRResNet generator of SRGAN (Ledig et al., arXiv 1609.04802, Section 2.2 and Figure 4)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

SCALES = (2, 4, 8)
# Bounds no real generator comes near (the paper: 16 blocks of 64 channels; EDSR, among the
# largest of its kind: 32 of 256). A config or a file asking for more is a mistake or a hostile
# file, and building it would exhaust memory long before any other error.
MAX_BLOCKS = 256
MAX_CHANNELS = 1024
# How a spec's `upsample_blur` reads from JSON (bool) and from export metadata (strings).
BOOLEANS = {"false": False, "true": True, "0": False, "1": True}


# The paper's ranges (Section 3.2): LR inputs in [0, 1], HR targets and SR outputs in [-1, 1]
# (the tanh). These two are the only conversions between them.
def unit_to_signed(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], e.g. an HR image into the generator's output range."""
    return image * 2 - 1


def signed_to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], e.g. a generator output into an image's range."""
    return (image + 1) / 2


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything it takes to rebuild a generator: the one description of a model's shape.

    The config's `model` section extends it, checkpoints store it as their `model` entry
    (`to_dict`), safetensors exports as string metadata, and `Generator.from_spec` builds it.
    """

    scale: int = 4
    num_blocks: int = 16
    num_channels: int = 64
    # Not in the paper: a 2x2 box blur after each pixel shuffle (Sugawara et al. 2018, arXiv
    # 1806.02658), which cannot paint a checkerboard at the shuffle's period. It has no weights,
    # so only the spec tells its files apart.
    upsample_blur: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        return {f.name: getattr(self, f.name) for f in fields(GeneratorSpec)}

    @classmethod
    def from_dict(cls, values: dict) -> "GeneratorSpec":
        """From a checkpoint's `model` entry or export metadata (values may be strings; files
        written before `upsample_blur` existed have none, and none).

        Raises ValueError naming what is missing or malformed.
        """
        if not isinstance(values, dict):
            raise ValueError(f"expected a dict of model hyper-parameters, got {values!r}")
        try:
            sizes = {name: int(values[name]) for name in ("scale", "num_blocks", "num_channels")}
            blur = str(values.get("upsample_blur", False)).lower()
            if blur not in BOOLEANS:
                raise ValueError(f"upsample_blur must be true or false, got {blur!r}")
            spec = cls(**sizes, upsample_blur=BOOLEANS[blur])
        except KeyError as error:
            raise ValueError(f"model hyper-parameter {error} is missing") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"malformed model hyper-parameters {values!r} ({error})") from None
        problem = spec.problem()
        if problem is not None:
            raise ValueError(" ".join(problem))
        return spec

    def problem(self) -> tuple[str, str] | None:
        """(field, what is wrong) for a value outside what a generator can be, or None."""
        if self.scale not in SCALES:
            return "scale", f"must be 2, 4 or 8, got {self.scale}"
        if not 1 <= self.num_blocks <= MAX_BLOCKS:
            return "num_blocks", f"must be 1 to {MAX_BLOCKS}, got {self.num_blocks}"
        if not 1 <= self.num_channels <= MAX_CHANNELS:
            return "num_channels", f"must be 1 to {MAX_CHANNELS}, got {self.num_channels}"
        return None

    def describe(self) -> str:
        blur = ", 2x2 blur after each pixel shuffle" if self.upsample_blur else ""
        return f"x{self.scale}, {self.num_blocks} blocks, {self.num_channels} channels{blur}"


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity skip (paper Figure 4, top)."""

    def __init__(self, num_channels: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(num_channels),
            nn.PReLU(),
            nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(num_channels),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.body(features)


class BoxBlur(nn.Module):
    """The mean of each 2x2 neighbourhood (edges replicated), the same size out as in."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(features, (0, 1, 0, 1), mode="replicate")
        return nn.functional.avg_pool2d(padded, kernel_size=2, stride=1)


class UpsampleBlock(nn.Module):
    """Sub-pixel convolution (Shi et al. 2016): conv to 4x channels, PixelShuffle x2, PReLU;
    with `blur`, a 2x2 box blur before the PReLU (Sugawara et al. 2018)."""

    def __init__(self, num_channels: int = 64, blur: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channels, num_channels * 4, kernel_size=3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = BoxBlur() if blur else nn.Identity()
        self.activation = nn.PReLU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.blur(self.shuffle(self.conv(features))))


class Generator(nn.Module):
    """SRResNet: maps an LR image in [0, 1] to an SR image in [-1, 1] (paper Section 3.2).

    Scale 2, 4 or 8 use one x2 sub-pixel block per factor of two; the paper's x4 model with
    16 residual blocks of 64 channels has 1,549,462 parameters.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        num_blocks: int = 16,
        num_channels: int = 64,
        upsample_blur: bool = False,
    ) -> None:
        super().__init__()
        num_upsample_blocks = int(math.log2(scale))
        if scale < 2 or 2**num_upsample_blocks != scale:
            raise ValueError(f"scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, num_channels, kernel_size=9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(num_channels) for _ in range(num_blocks)])
        self.trunk_end = nn.Sequential(
            nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(num_channels),
        )
        self.upsample = nn.Sequential(
            *[UpsampleBlock(num_channels, upsample_blur) for _ in range(num_upsample_blocks)]
        )
        self.tail = nn.Conv2d(num_channels, 3, kernel_size=9, padding=4)
        self.spec = GeneratorSpec(scale, num_blocks, num_channels, upsample_blur)

    @classmethod
    def from_spec(cls, spec: GeneratorSpec) -> "Generator":
        return cls(**spec.to_dict())

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        # lr_image: (N, 3, H, W) in [0, 1] -> (N, 3, H * scale, W * scale) in [-1, 1]
        head = self.head(lr_image)
        # Long skip from the first PReLU over all residual blocks (Figure 4).
        features = head + self.trunk_end(self.blocks(head))
        return torch.tanh(self.tail(self.upsample(features)))


@torch.no_grad()
def icnr_init_(generator: Generator) -> Generator:
    """Start each sub-pixel convolution as a convolution followed by nearest-neighbour
    upsampling (ICNR: Aitken, Ledig et al., arXiv 1707.02937): the four channels PixelShuffle
    puts into one 2x2 block share one kernel, so the initial output has no checkerboard."""
    for block in generator.upsample:
        conv = block.conv
        kernel = torch.empty(conv.out_channels // 4, conv.in_channels, *conv.kernel_size)
        nn.init.kaiming_uniform_(kernel, a=math.sqrt(5))  # PyTorch's own Conv2d initialisation
        conv.weight.copy_(kernel.repeat_interleave(4, dim=0))
        conv.bias.copy_(conv.bias[::4].repeat_interleave(4))
    return generator


def spec_mismatch(spec: GeneratorSpec, weights: object) -> str | None:
    """How a state dict contradicts the spec a file declares for it, or None when it fits.

    Compares tensor names and shapes with a generator built on the meta device (no memory), so
    a file that declares a huge model but holds a small one is refused before anything is
    allocated: the real build is then no larger than the tensors already read.
    """
    if not isinstance(weights, Mapping):
        return "it holds no generator weights"
    with torch.device("meta"):
        expected = Generator.from_spec(spec).state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    if missing or unexpected:
        parts = [f"{len(missing)} tensors missing (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        return ", ".join(parts)
    for name, tensor in expected.items():
        found = weights[name]
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            return f"{name} is {shape}, expected {tuple(tensor.shape)}"
    return None
