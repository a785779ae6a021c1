"""Training validation: the evaluation protocol on the validation set, and what is shown of it.

`validate_generator` runs `srgan.eval.protocol` itself, so its PSNR/SSIM, NIQE and grid score
equal scripts/evaluate.py's for the same weights and images; `bicubic_reference` scores
bicubic on the same images, logged beside the model's. The run (`srgan.run.run`) turns the
result into metrics, sample strips (`srgan.run.samples`) and TensorBoard images.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from srgan.eval.protocol import (
    EvalImage,
    bicubic_upscale,
    evaluate_image,
    mean_metrics,
    model_upscaler,
)


class ValidationAborted(Exception):
    """Raised inside the generator's forward when a signal asks the loop to stop."""


@dataclass(frozen=True)
class Validation:
    # Means: "valid/psnr_y", "valid/ssim_y", "valid/niqe", "valid/grid_percent".
    scores: dict[str, float]
    psnr: dict[str, float]  # PSNR-Y of each image, by name
    outputs: dict[str, np.ndarray]  # SR images of the names asked for (for sample pictures)


def validate_generator(
    generator: nn.Module,
    images: list[EvalImage],
    scale: int,
    device: torch.device,
    should_stop: Callable[[], bool] = lambda: False,
    keep_outputs: tuple[str, ...] = (),
) -> Validation | None:
    """Mean PSNR/SSIM-Y, NIQE and grid score of the evaluation protocol (`srgan.eval.protocol`),
    in fp32. `valid/niqe` is the mean over the images that have one (96 px or more after the
    border crop), and is left out when none has.

    Returns None, leaving the rest undone, as soon as `should_stop()` says so: it is checked
    before every layer of the generator, so a signal stops even a long validation of large
    images within one convolution, not at its end.
    """

    def check(module: nn.Module, inputs: tuple) -> None:
        if should_stop():
            raise ValidationAborted

    # Each layer's own mode comes back after (frozen BatchNorm stays frozen in a training net).
    modes = [(module, module.training) for module in generator.modules()]
    generator.eval()
    hooks = [module.register_forward_pre_hook(check) for module in generator.modules()]
    upscale = model_upscaler(generator, device, tile=256)
    rows, outputs = {}, {}
    try:
        for image in images:
            rows[image.name], sr_image = evaluate_image(upscale, image, scale)
            if image.name in keep_outputs:
                outputs[image.name] = sr_image
    except ValidationAborted:
        return None
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes:
            module.train(training)
    means = mean_metrics(list(rows.values()))
    scores = {
        f"valid/{key}": means[key]
        for key in ("psnr_y", "ssim_y", "niqe", "grid_percent")
        if means[key] is not None
    }
    return Validation(scores, {name: row["psnr_y"] for name, row in rows.items()}, outputs)


def bicubic_reference(images: list[EvalImage], scale: int) -> dict[str, float]:
    """Bicubic's mean PSNR-Y and SSIM-Y on the validation images, as evaluate.py scores its
    bicubic row: the bar a model's validation scores are read against. Computed once a stage
    (the images do not change)."""
    if not images:
        return {}
    rows = [
        evaluate_image(lambda lr_image: bicubic_upscale(lr_image, scale), image, scale)[0]
        for image in images
    ]
    means = mean_metrics(rows)
    return {"valid/bicubic_psnr_y": means["psnr_y"], "valid/bicubic_ssim_y": means["ssim_y"]}
