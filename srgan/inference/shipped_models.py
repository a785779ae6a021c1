"""The models that ship with the repository and the package: one table, read by
`srgan-upscale --model`, `hubconf.py` (torch.hub) and the wheel build (`setup.py`).

Shipping another model takes its `<name>.safetensors` export in checkpoints/ and one line in
SHIPPED_MODELS. The file is kept once in git, in checkpoints/; the wheel build copies it into
the package as srgan/weights/<name>.safetensors. This module imports nothing but the standard
library, because setup.py reads it before any dependency is installed.
"""

from pathlib import Path

# name: what the model is, in one line (torch.hub shows it). The first one is the default.
SHIPPED_MODELS = {
    "srresnet_x4_291": (
        "SRResNet x4 (16 blocks, pixel MSE) trained on the 291 images for MATLAB-bicubic "
        "downscaling; Set5 30.98 dB, Set14 27.76 dB PSNR-Y (checkpoints/MODEL_CARD.md)"
    ),
    "srgan_mse_blur_x4_291": (
        "SRGAN-MSE x4 (pixel-MSE content + adversarial loss, a 2x2 blur after each pixel "
        "shuffle, weight average) trained on the 291 images from srresnet_blur_x4_291: more "
        "texture than the SRResNet, less PSNR (checkpoints/MODEL_CARD.md)"
    ),
    "srresnet_blur_x4_291": (
        "SRResNet x4 with a 2x2 blur after each pixel shuffle: srresnet_x4_291 fine-tuned for "
        "846 steps, the start of srgan_mse_blur_x4_291 and its --strength 0 "
        "(checkpoints/MODEL_CARD.md)"
    ),
}
DEFAULT_MODEL = next(iter(SHIPPED_MODELS))
# Where the weights are: inside an installed package, then in a checkout of the repository
# (an editable install, torch.hub, scripts run from a clone).
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CHECKOUT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
WEIGHTS_DIRS = (PACKAGE_WEIGHTS_DIR, CHECKOUT_WEIGHTS_DIR)


def weights_file_name(name: str) -> str:
    return f"{name}.safetensors"


def shipped_model_path(name: str) -> Path:
    """The weights file of the shipped model `name`, from the first of WEIGHTS_DIRS that has it.

    ValueError for a name not in SHIPPED_MODELS, FileNotFoundError when no folder has the file.
    """
    if name not in SHIPPED_MODELS:
        raise ValueError(f"unknown model {name!r}; shipped models: {', '.join(SHIPPED_MODELS)}")
    candidates = [Path(folder) / weights_file_name(name) for folder in WEIGHTS_DIRS]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the shipped model {name} is missing: no file {' or '.join(map(str, candidates))} "
        "(a clone of the repository and `pip install` of it have it); or pass --checkpoint "
        "with a checkpoint of your own training (.pt) or its export (.safetensors)"
    )


def weights_path(path_or_name: str | Path) -> Path:
    """The weights file a --checkpoint (or `load_generator`) value names: the path itself where
    it exists (a file wins over a name), else the shipped model of that name, else the path,
    which the loader then reports as missing."""
    path = Path(path_or_name)
    if not path.exists() and str(path_or_name) in SHIPPED_MODELS:
        return shipped_model_path(str(path_or_name))
    return path
