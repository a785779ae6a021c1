"""The content losses and the adversarial losses (Ledig et al., Section 2.2, Eqs. 2, 5, 6).

ImageNet weights cannot be downloaded here: the content-loss tests use random VGG weights,
which exercise the same layers, normalisation and gradient path. Where the weights come from:
tests/test_vgg.py.
"""

import pytest
import torch
from torch import nn

from srgan.models.generator import Generator
from srgan.models.losses import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
)


def test_layer_cut(content_losses: dict[str, ContentLoss]) -> None:
    # phi_{2,2}: after the 2nd conv's ReLU before the 2nd pooling (1 pooling so far);
    # phi_{5,4}: after the 4th conv's ReLU before the 5th pooling (4 poolings so far).
    image = torch.rand(1, 3, 64, 48) * 2 - 1
    expected = {"vgg22": ((1, 128, 32, 24), 4, 1), "vgg54": ((1, 512, 4, 3), 16, 4)}
    for layer, (shape, num_convs, num_pools) in expected.items():
        features = content_losses[layer].features
        with torch.no_grad():
            assert content_losses[layer].extract(image).shape == shape
        assert isinstance(features[-1], nn.ReLU)
        assert sum(isinstance(m, nn.Conv2d) for m in features) == num_convs
        assert sum(isinstance(m, nn.MaxPool2d) for m in features) == num_pools


def test_vgg_sees_the_signed_image_in_0_1_normalised_by_imagenet_statistics(
    content_losses: dict[str, ContentLoss],
) -> None:
    loss = content_losses["vgg22"]
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = loss.features(((image + 1) / 2 - mean) / std) * loss.feature_scale
        assert torch.equal(loss.extract(image), expected)


@pytest.mark.parametrize("layer", ["vgg22", "vgg54"])
def test_content_loss_zero_for_identical_positive_otherwise(
    content_losses: dict[str, ContentLoss], layer: str
) -> None:
    loss = content_losses[layer]
    hr_image = torch.rand(2, 3, 32, 32) * 2 - 1
    other = (hr_image + 0.2 * torch.randn_like(hr_image)).clamp(-1, 1)
    with torch.no_grad():
        assert loss(hr_image, hr_image).item() == 0
        assert loss(other, hr_image).item() > 0


@pytest.mark.parametrize("layer", ["vgg22", "vgg54"])
def test_content_loss_gradient_reaches_every_generator_parameter(
    content_losses: dict[str, ContentLoss], layer: str
) -> None:
    torch.manual_seed(1)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    lr_image = torch.rand(2, 3, 8, 8)
    hr_image = torch.rand(2, 3, 32, 32) * 2 - 1
    content_losses[layer](generator(lr_image), hr_image).backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
    # The VGG itself is frozen: no gradient is stored on it.
    assert all(p.grad is None for p in content_losses[layer].parameters())


def test_vgg_frozen_and_stays_in_eval_mode(content_losses: dict[str, ContentLoss]) -> None:
    for loss in content_losses.values():
        assert all(not p.requires_grad for p in loss.parameters())
        loss.train()
        assert not loss.training
        assert not any(module.training for module in loss.modules())
        loss.train(True)
        assert not loss.features.training


def test_generator_adversarial_loss_is_minus_log_sigmoid() -> None:
    logits = torch.tensor([-8.0, -1.5, 0.0, 0.3, 2.0, 12.0], dtype=torch.float64)
    expected = -torch.log(torch.sigmoid(logits))
    for logit, value in zip(logits, expected, strict=True):
        assert generator_adversarial_loss(logit.reshape(1)).item() == pytest.approx(
            value.item(), rel=1e-12, abs=1e-15
        )
    # Over a batch: the mean.
    assert generator_adversarial_loss(logits).item() == pytest.approx(expected.mean().item())


def test_discriminator_loss_is_bce_real_plus_bce_fake() -> None:
    real = torch.tensor([-3.0, -0.5, 0.0, 1.0, 6.0], dtype=torch.float64)
    fake = torch.tensor([-6.0, -1.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    expected = -torch.log(torch.sigmoid(real)) - torch.log(1 - torch.sigmoid(fake))
    for r, f, value in zip(real, fake, expected, strict=True):
        loss = discriminator_loss(r.reshape(1), f.reshape(1))
        assert loss.item() == pytest.approx(value.item(), rel=1e-12)
    assert discriminator_loss(real, fake).item() == pytest.approx(expected.mean().item())
