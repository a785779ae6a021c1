"""SRGAN discriminator (Ledig et al., arXiv 1609.04802, Section 2.2 and Figure 4, bottom)."""

import torch
from torch import nn

DISCRIMINATOR_CHANNELS = 64  # the paper's first width (64 to 512 over the eight convolutions)


def _conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2),
    )


class Discriminator(nn.Module):
    """VGG-style classifier of HR images in [-1, 1]; returns one logit per image.

    The paper ends with a sigmoid. Here the sigmoid is folded into the loss
    (`BCEWithLogitsLoss`), which computes the same function, -log(sigmoid(x)), through
    log-sum-exp: it stays finite where sigmoid saturates to exactly 0 or 1 in fp16/bf16.
    The dense layer's input size follows `crop_size` (96 px in the paper: 23,565,505
    parameters).
    """

    def __init__(self, *, crop_size: int = 96, num_channels: int = DISCRIMINATOR_CHANNELS) -> None:
        super().__init__()
        if crop_size % 16:
            raise ValueError(
                f"crop_size must be a multiple of 16 (four stride-2 convs), got {crop_size}"
            )
        widths = [num_channels, num_channels * 2, num_channels * 4, num_channels * 8]
        layers: list[nn.Module] = [
            nn.Conv2d(3, num_channels, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        # 64 s2, 128 s1, 128 s2, 256 s1, 256 s2, 512 s1, 512 s2
        in_channels = num_channels
        for index, width in enumerate(widths):
            if index > 0:
                layers.append(_conv_block(in_channels, width, stride=1))
            layers.append(_conv_block(width, width, stride=2))
            in_channels = width
        self.features = nn.Sequential(*layers)
        feature_size = crop_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * feature_size * feature_size, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (N, 3, crop, crop) -> logits (N,)
        return self.classifier(self.features(image)).squeeze(1)


# model.discriminator -> its constructor, called with crop_size= and num_channels=: a fork adds
# a discriminator with one entry here.
DISCRIMINATORS = {"srgan": Discriminator}
