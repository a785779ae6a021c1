"""SRGAN losses (Ledig et al., arXiv 1609.04802, Section 2.2): VGG content, adversarial, pixel."""

import os
import socket
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srgan.files import UnsafeFileError, load_state_file

# phi_{i,j}: the j-th convolution (after its ReLU) before the i-th max-pooling, as in the paper;
# values are the number of `vgg19().features` layers to keep.
CONTENT_LAYERS = {"vgg22": 9, "vgg54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Seconds the weights download may go without receiving a byte (connecting included) before it
# fails. Each socket operation has its own limit, so a slow download that keeps receiving data
# runs as long as it needs, while a network that silently drops traffic fails instead of hanging.
DOWNLOAD_TIMEOUT_SECONDS = 30.0
# The same limit for vgg_weights "auto", which falls back to random weights: a few seconds only.
AUTO_TIMEOUT_SECONDS = 5.0


class VGGWeightsError(RuntimeError):
    """The requested VGG19 weights cannot be had (offline, missing file)."""


def _imagenet_url() -> str:
    # torchvision is imported here, not at the top: it costs seconds at start-up, and every
    # script imports the package but only GAN training needs VGG.
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def _imagenet_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_imagenet_url())


def _imagenet_state_dict(timeout: float) -> dict[str, torch.Tensor]:
    """torchvision's IMAGENET1K_V1 weights from the torch hub cache, downloading them if needed.

    The download fails once `timeout` seconds pass without a byte arriving.
    """
    url = _imagenet_url()
    # torch.hub opens its connection without a timeout argument, so it takes the default one.
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        return torch.hub.load_state_dict_from_url(url, progress=False, weights_only=True)
    except OSError as error:  # Also urllib's URLError and TimeoutError.
        # urllib wraps a timeout while connecting in a URLError, one while reading it does not.
        timed_out = isinstance(getattr(error, "reason", error), TimeoutError)
        cause = f"no data for {timeout:g} s" if timed_out else error
        raise VGGWeightsError(
            f"could not download the VGG19 ImageNet weights from {url} ({cause}). "
            f"Download that file on a machine with internet access and put it at "
            f"{_imagenet_cache_file()} (the torch hub cache; $TORCH_HOME moves it), or set "
            f'gan.vgg_weights to a local state-dict path, or to "random" for a smoke run.'
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def load_vgg_features(weights: str, num_layers: int) -> tuple[nn.Sequential, str]:
    """The first `num_layers` of VGG19's features and a description of the weights used.

    weights: "imagenet", "random", "auto" (imagenet if cached or downloadable, else random; the
    download gives up after `AUTO_TIMEOUT_SECONDS` without data) or a path to a state dict (full
    VGG19 or its `features`).
    """
    from torchvision.models import vgg19

    if weights == "auto":
        try:
            state = _imagenet_state_dict(AUTO_TIMEOUT_SECONDS)
            weights_used = "imagenet"
        except VGGWeightsError as error:
            warnings.warn(f"{error} Falling back to RANDOM VGG19 weights.", stacklevel=2)
            state, weights_used = None, "random"
    elif weights == "imagenet":
        state, weights_used = _imagenet_state_dict(DOWNLOAD_TIMEOUT_SECONDS), "imagenet"
    elif weights == "random":
        state, weights_used = None, "random"
    else:
        try:
            state, weights_used = load_state_file(weights), weights
        except UnsafeFileError as error:
            raise VGGWeightsError(f"gan.vgg_weights: {error}") from None
    # Built once the weights are at hand: it takes seconds, and a failed download needs none.
    features = vgg19(weights=None).features
    if state is not None:
        prefix = "features."
        if any(key.startswith(prefix) for key in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        features.load_state_dict(state)
    if weights_used == "random":
        warnings.warn(
            "VGG19 content loss uses RANDOM weights: fine for smoke tests, meaningless for "
            "training. Put the ImageNet weights in the torch hub cache for real runs.",
            stacklevel=2,
        )
    return features[:num_layers], weights_used


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
        normalized = ((image + 1) / 2 - self.mean) / self.std
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
