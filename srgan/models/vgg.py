"""VGG19's feature layers for the content loss, and where their weights come from: the
ImageNet weights (torch hub cache, downloaded if needed, with timeouts), a local state-dict
file, or random weights for smoke runs.
"""

import os
import socket
import warnings
from pathlib import Path

import torch
from torch import nn

from srgan.files import UnsafeFileError, load_state_file

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
