"""SRGAN's losses (Ledig et al., arXiv 1609.04802, Section 2.2), each a module that carries its
weight in the generator's loss l^SR (Eq. 3) and returns its unweighted term, as BasicSR's
`cri_*` losses do: content (VGG19 features, Eq. 5, or the pixel MSE of SRGAN-MSE, Eq. 4),
an optional pixel MSE (not in the paper), adversarial (Eq. 6); and the discriminator's (Eq. 2).

A fork adds a content loss with one entry in `CONTENT_LOSSES` (its name becomes a value of
`gan.content_loss`).
"""

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from srgan.models.generator import signed_to_unit
from srgan.models.vgg import load_vgg_features

# phi_{i,j}: the j-th convolution (after its ReLU) before the i-th max-pooling, as in the paper;
# values are the number of `vgg19().features` layers to keep.
CONTENT_LAYERS = {"vgg22": 9, "vgg54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The paper's weights in l^SR (Eq. 3) and its rescaling of VGG features (Section 3.4), each
# the default of its module and of its config key.
CONTENT_WEIGHT = 1.0
ADVERSARIAL_WEIGHT = 1e-3
FEATURE_SCALE = 1 / 12.75


class ContentLoss(nn.Module):
    """VGG19 feature-space MSE between SR and HR images, both in [-1, 1] (paper Eq. 5).

    Feature maps are multiplied by `feature_scale` (1/12.75 in the paper) before the MSE, which
    brings the loss to the scale of the pixel MSE. The network is frozen and stays in eval mode.
    """

    def __init__(
        self,
        *,
        layer: str = "vgg54",
        weights: str = "imagenet",
        feature_scale: float = FEATURE_SCALE,
        weight: float = CONTENT_WEIGHT,
    ) -> None:
        super().__init__()
        if layer not in CONTENT_LAYERS:
            raise ValueError(
                f"content layer must be one of {sorted(CONTENT_LAYERS)}, got {layer!r}"
            )
        self.features, self.weights_used = load_vgg_features(weights, CONTENT_LAYERS[layer])
        self.features.eval().requires_grad_(False)
        self.feature_scale, self.weight = feature_scale, weight
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "ContentLoss":
        # A frozen feature extractor: never switch it to training mode.
        return super().train(False)

    def extract(self, image: torch.Tensor) -> torch.Tensor:
        normalized = (signed_to_unit(image) - self.mean) / self.std
        return self.features(normalized) * self.feature_scale

    def forward(self, sr_image: torch.Tensor, hr_image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the HR branch needs no graph
            target = self.extract(hr_image)
        return F.mse_loss(self.extract(sr_image), target)


class PixelContentLoss(nn.Module):
    """SRGAN-MSE's content loss: the pixel-wise MSE (paper Eq. 4), which needs no VGG."""

    weights_used = "none"  # recorded in checkpoints like ContentLoss.weights_used

    def __init__(
        self,
        *,
        weight: float = CONTENT_WEIGHT,
        weights: str = "none",  # VGG19's options, unused: CONTENT_LOSSES' entries take the same
        feature_scale: float = FEATURE_SCALE,
    ) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, sr_image: torch.Tensor, hr_image: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(sr_image.float(), hr_image.float())


# gan.content_loss -> its module; each takes weights= (VGG19's) and feature_scale= (VGG only).
CONTENT_LOSSES = {
    "vgg54": partial(ContentLoss, layer="vgg54"),
    "vgg22": partial(ContentLoss, layer="vgg22"),
    "mse": PixelContentLoss,
}


class PixelLoss(nn.Module):
    """A pixel MSE beside the content loss: not in the paper (weight 0), it keeps short GAN
    runs from drifting in colour."""

    def __init__(self, *, weight: float = 0.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, sr_image: torch.Tensor, hr_image: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(sr_image.float(), hr_image)


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(x)) (paper Eq. 6): BCE-with-logits against 1, the non-saturating GAN loss."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(real), 1) + BCE(D(fake), 0) (paper Eq. 2)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


class AdversarialLoss(nn.Module):
    """The generator's adversarial term -log D(G(x)) (Eq. 6), weighted 10^-3 in l^SR.

    Not in the paper, both 0 by default: the discriminator may train alone for
    `warmup_steps` before the generator gets any update, and the weight may then rise
    linearly from 0 over `ramp_steps`.
    """

    def __init__(
        self, *, weight: float = ADVERSARIAL_WEIGHT, warmup_steps: int = 0, ramp_steps: int = 0
    ) -> None:
        super().__init__()
        self.weight, self.warmup_steps, self.ramp_steps = weight, warmup_steps, ramp_steps

    def generator_trains(self, step: int) -> bool:
        return step >= self.warmup_steps

    def weight_at(self, step: int) -> float:
        if self.ramp_steps == 0:
            return self.weight
        progress = (step - self.warmup_steps) / self.ramp_steps
        return self.weight * min(max(progress, 0.0), 1.0)

    def forward(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return generator_adversarial_loss(fake_logits)


@dataclass(frozen=True)
class GanLosses:
    """What a GAN step needs of its losses: l^SR's terms (paper Eq. 3), each with its weight."""

    content: ContentLoss | PixelContentLoss
    pixel: PixelLoss = field(default_factory=PixelLoss)
    adversarial: AdversarialLoss = field(default_factory=AdversarialLoss)
