"""Using a trained generator: load it from a checkpoint and upscale images in bounded memory."""

import torch

from srgan.checkpoint import CheckpointError, load_checkpoint
from srgan.generator import Generator


def generator_from_checkpoint(checkpoint: dict, source: str = "checkpoint") -> Generator:
    """Build the generator a checkpoint describes and load its weights (eval mode)."""
    try:
        model = checkpoint["model"]
        generator = Generator(
            scale=model["scale"], num_blocks=model["num_blocks"], num_channels=model["num_channels"]
        )
        generator.load_state_dict(checkpoint["generator"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{source} does not hold a matching generator ({error})") from None
    return generator.eval()


def load_generator(path: str, device: str | torch.device = "cpu") -> Generator:
    """The generator of any checkpoint of ours (SRResNet pretraining or SRGAN), in eval mode."""
    return generator_from_checkpoint(load_checkpoint(path), str(path)).to(device)


@torch.no_grad()
def upscale_tensor(
    generator: Generator, lr_image: torch.Tensor, tile: int = 0, tile_overlap: int = 16
) -> torch.Tensor:
    """(N, 3, H, W) LR in [0, 1] -> (N, 3, sH, sW) SR in [0, 1], in tiles when `tile` > 0.

    Each tile of `tile` LR pixels is run with `tile_overlap` extra pixels of context on every
    side, and only its centre is kept, so seams match the untiled result closely while peak
    memory depends on the tile size alone.
    """
    scale = generator.scale
    height, width = lr_image.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        return (generator(lr_image).float() + 1) / 2
    output = torch.empty(
        (*lr_image.shape[:-2], height * scale, width * scale), device=lr_image.device
    )
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            context_top, context_left = max(top - tile_overlap, 0), max(left - tile_overlap, 0)
            context_bottom = min(bottom + tile_overlap, height)
            context_right = min(right + tile_overlap, width)
            patch = lr_image[..., context_top:context_bottom, context_left:context_right]
            sr_patch = (generator(patch).float() + 1) / 2
            inner_top, inner_left = (top - context_top) * scale, (left - context_left) * scale
            output[..., top * scale : bottom * scale, left * scale : right * scale] = sr_patch[
                ...,
                inner_top : inner_top + (bottom - top) * scale,
                inner_left : inner_left + (right - left) * scale,
            ]
    return output
