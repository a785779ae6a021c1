"""SRGAN losses (Ledig et al., arXiv 1609.04802, Section 2.2): VGG content, adversarial, pixel."""

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


class ContentLoss(nn.Module):
    """VGG19 feature-space MSE between SR and HR images, both in [-1, 1] (paper Eq. 5).

    Feature maps are multiplied by `feature_scale` (1/12.75 in the paper) before the MSE, which
    brings the loss to the scale of the pixel MSE. The network is frozen and stays in eval mode.
    """

    def __init__(
        self, *, layer: str = "vgg54", weights: str = "imagenet", feature_scale: float = 1 / 12.75
    ) -> None:
        super().__init__()
        if layer not in CONTENT_LAYERS:
            raise ValueError(
                f"content layer must be one of {sorted(CONTENT_LAYERS)}, got {layer!r}"
            )
        self.features, self.weights_used = load_vgg_features(weights, CONTENT_LAYERS[layer])
        self.features.eval().requires_grad_(False)
        self.feature_scale = feature_scale
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

    def forward(self, sr_image: torch.Tensor, hr_image: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(sr_image.float(), hr_image.float())


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(x)) (paper Eq. 6): BCE-with-logits against 1, the non-saturating GAN loss."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(real), 1) + BCE(D(fake), 0) (paper Eq. 2)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
