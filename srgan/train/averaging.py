"""An exponential moving average of the generator's weights (not in the SRGAN paper; BasicSR's
SRGAN and ESRGAN configs keep one with decay 0.999). A GAN generator's weights swing from step
to step between states that paint a pixel grid; their average over the last ~1/(1 - decay)
steps keeps the texture and loses most of the grid.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn


def _averaged_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Parameters and floating-point buffers (BatchNorm's running statistics), in module order."""
    buffers = [buffer for buffer in module.buffers() if buffer.is_floating_point()]
    return [*module.parameters(), *buffers]


@dataclass(frozen=True)
class WeightAverage:
    """`model` holds decay * itself + (1 - decay) * the trained network after every update."""

    model: nn.Module
    decay: float

    @classmethod
    def of(cls, network: nn.Module, decay: float) -> "WeightAverage":
        """An average that starts at `network`'s weights: a copy in eval mode, no gradients."""
        return cls(copy.deepcopy(network).eval().requires_grad_(False), decay)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        torch._foreach_lerp_(
            _averaged_tensors(self.model), _averaged_tensors(network), 1 - self.decay
        )
        for average, trained in zip(self.model.buffers(), network.buffers(), strict=True):
            if not average.is_floating_point():  # counters such as num_batches_tracked
                average.copy_(trained)
