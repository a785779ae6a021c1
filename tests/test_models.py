"""Generator and discriminator: the paper's sizes (Ledig et al., Figure 4), shapes and ranges."""

import pytest
import torch

from srgan.models.discriminator import Discriminator
from srgan.models.generator import Generator

PAPER_GENERATOR_PARAMETERS = 1_549_462  # x4 SRResNet, 16 blocks of 64 channels
PAPER_DISCRIMINATOR_PARAMETERS = 23_565_505  # 96 px crops
# One x2 sub-pixel block: conv 64 -> 256 (3x3 + bias) and a single-slope PReLU.
UPSAMPLE_BLOCK_PARAMETERS = 64 * 256 * 9 + 256 + 1


def count_parameters(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_generator_parameter_count_matches_paper() -> None:
    # Meta tensors have shapes but no storage: counting needs no memory or initialisation.
    with torch.device("meta"):
        assert count_parameters(Generator()) == PAPER_GENERATOR_PARAMETERS
        # Scale 2 and 8 have one x2 block fewer / more than scale 4.
        assert (
            count_parameters(Generator(scale=2))
            == PAPER_GENERATOR_PARAMETERS - UPSAMPLE_BLOCK_PARAMETERS
        )
        assert (
            count_parameters(Generator(scale=8))
            == PAPER_GENERATOR_PARAMETERS + UPSAMPLE_BLOCK_PARAMETERS
        )


def test_discriminator_parameter_count_follows_crop_size() -> None:
    with torch.device("meta"):
        assert count_parameters(Discriminator(crop_size=96)) == PAPER_DISCRIMINATOR_PARAMETERS
        # Four stride-2 convs: the dense layer sees 512 x (crop/16)^2 features, i.e. 512 x 8 x 8
        # for 128 px instead of 512 x 6 x 6 for 96 px, each connected to 1024 units.
        expected_128 = PAPER_DISCRIMINATOR_PARAMETERS + 512 * (8 * 8 - 6 * 6) * 1024
        assert count_parameters(Discriminator(crop_size=128)) == expected_128


@pytest.mark.parametrize("crop_size", [40, 100])
def test_discriminator_rejects_crop_not_multiple_of_16(crop_size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        Discriminator(crop_size=crop_size)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_output_shape_and_range(scale: int) -> None:
    torch.manual_seed(0)
    generator = Generator(scale=scale, num_blocks=2, num_channels=16)
    assert generator.scale == scale
    assert len(generator.blocks) == 2
    lr_image = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        sr_image = generator(lr_image)
    assert sr_image.shape == (2, 3, 12 * scale, 10 * scale)
    assert sr_image.min() >= -1 and sr_image.max() <= 1
    # Not a degenerate output: the two images of the batch map to different SR images.
    assert not torch.allclose(sr_image[0], sr_image[1])


@pytest.mark.parametrize("scale", [1, 3, 6])
def test_generator_rejects_scale_not_power_of_two(scale: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        Generator(scale=scale, num_blocks=2)


def test_discriminator_returns_one_logit_per_image() -> None:
    torch.manual_seed(0)
    discriminator = Discriminator(crop_size=32, num_channels=8)
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        logits = discriminator(images)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()
