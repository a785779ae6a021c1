"""torch.hub entry points: one per model that ships with the repository, named as in the
shipped-models table (srgan/inference/shipped_models.py).

    model = torch.hub.load("/path/to/clone", "srresnet_x4_291", source="local")
    model = torch.hub.load("<owner>/<repo>", "srresnet_x4_291")  # from GitHub, once published

Each returns the generator in eval mode: RGB in [0, 1] of shape (N, 3, H, W) in, RGB in
[-1, 1] at the model's scale out ((N, 3, 4H, 4W) for srresnet_x4_291).
`srgan.inference.upscaling.upscale(model, pil_image)` upscales a PIL image with it, in tiles where
the image does not fit in memory.
"""

from srgan.inference.shipped_models import SHIPPED_MODELS as _SHIPPED_MODELS
from srgan.inference.shipped_models import shipped_model_path as _shipped_model_path
from srgan.inference.weights import load_generator as _load_generator

# Packages torch.hub checks for before loading (imported names are private: torch.hub lists
# every public callable of this file as a model).
dependencies = ["torch", "numpy", "scipy", "safetensors", "tqdm"]


def _entry_point(name: str, description: str):
    def load(device: str = "cpu"):
        return _load_generator(_shipped_model_path(name), device).eval()

    load.__name__ = load.__qualname__ = name
    load.__doc__ = (
        f"{description}.\n\n"
        "Returns the generator in eval mode on `device`: RGB in [0, 1] (N, 3, H, W) in, RGB in "
        "[-1, 1] at the model's scale out."
    )
    return load


# One entry point per row of the table: shipping a model adds its entry here by itself.
globals().update({name: _entry_point(name, text) for name, text in _SHIPPED_MODELS.items()})
