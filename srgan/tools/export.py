"""Export a trained generator for other runtimes: ONNX, TorchScript, or weights-only safetensors.

ONNX and TorchScript hold `ExportedUpscaler`: LR (N, 3, H, W) in [0, 1] -> SR (N, 3, sH, sW)
in [0, 1] (the generator's [-1, 1] output mapped and clamped), with any N, H and W, so a
runtime needs no knowledge of this code. safetensors holds the bare generator state dict plus
its hyper-parameters as metadata, for `srgan.load_generator` (nothing pickled, nothing run).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from srgan.generator import Generator
from srgan.inference import load_generator, safetensors_metadata

# 17 is read by every onnxruntime since 1.11 and by TensorRT 8.5+, and has all ops we use.
ONNX_OPSET = 17
CHECK_HEIGHT, CHECK_WIDTH = 48, 64  # the random input on which exports are compared


class ExportedUpscaler(nn.Module):
    """The generator with image-range input and output, the interface other runtimes get."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator
        self.scale = generator.scale

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return ((self.generator(lr_image) + 1) / 2).clamp(0, 1)


def export_safetensors(generator: Generator, path: Path, degradation: str | None = None) -> None:
    """Weights only, with the GeneratorSpec (and the training degradation, when known) in the
    metadata for `load_generator`."""
    state_dict = {name: tensor.detach().cpu() for name, tensor in generator.state_dict().items()}
    save_file(state_dict, str(path), metadata=safetensors_metadata(generator.spec, degradation))


def export_torchscript(generator: Generator, path: Path, degradation: str | None = None) -> None:
    """`torch.jit.script` of ExportedUpscaler (loads with torch.jit.load or C++ libtorch).

    TorchScript is deprecated in torch 2.14 (FutureWarning, silenced here) but still the
    format libtorch-based runtimes read; scripting rather than tracing keeps every input size.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(ExportedUpscaler(generator).cpu().eval())
        metadata = safetensors_metadata(generator.spec, degradation)
        extra_files = {"srgan.json": json.dumps(metadata)}
        torch.jit.save(scripted, str(path), _extra_files=extra_files)


def export_onnx(
    generator: Generator, path: Path, degradation: str | None = None, opset: int = ONNX_OPSET
) -> None:
    """ONNX of ExportedUpscaler with dynamic batch, height and width; needs the `onnx` package.

    Uses torch's TorchScript-based exporter (`dynamo=False`): it needs only `onnx`, whereas the
    torch.export-based default of torch >= 2.9 also needs `onnxscript`. Its deprecation warning
    is silenced; the result is checked against PyTorch by `check_onnx`.
    """
    try:
        import onnx
    except ImportError:
        raise ModuleNotFoundError("ONNX export needs the onnx package: pip install onnx") from None
    model = ExportedUpscaler(generator).cpu().eval()
    example = torch.rand(1, 3, 32, 32)  # any size: height and width are dynamic axes
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=["lr_image"],
            output_names=["sr_image"],
            dynamic_axes={"lr_image": axes, "sr_image": axes},
            opset_version=opset,
        )
    proto = onnx.load(str(path))
    metadata = {
        **safetensors_metadata(generator.spec, degradation),
        "input": "lr_image: RGB in [0, 1], NCHW float32",
    }
    metadata["output"] = "sr_image: RGB in [0, 1], NCHW float32, scale times larger"
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def _check_input(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, CHECK_HEIGHT, CHECK_WIDTH, generator=generator)


@torch.no_grad()
def _reference(generator: Generator, lr_image: torch.Tensor) -> torch.Tensor:
    return ExportedUpscaler(generator).cpu().eval()(lr_image)


def check_onnx(generator: Generator, path: Path) -> float:
    """Max abs difference between onnxruntime and PyTorch on a random 64x48 input."""
    try:
        import onnxruntime
    except ImportError:
        raise ModuleNotFoundError(
            "checking an ONNX export needs onnxruntime: pip install onnxruntime"
        ) from None
    lr_image = _check_input()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (sr_image,) = session.run(None, {"lr_image": lr_image.numpy()})
    return float(np.abs(sr_image - _reference(generator, lr_image).numpy()).max())


@torch.no_grad()
def check_torchscript(generator: Generator, path: Path) -> float:
    """Max abs difference between the loaded TorchScript file and PyTorch (64x48 input)."""
    lr_image = _check_input()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in torch 2.14, still works
        loaded = torch.jit.load(str(path), map_location="cpu")
    return float((loaded(lr_image) - _reference(generator, lr_image)).abs().max())


@torch.no_grad()
def check_safetensors(generator: Generator, path: Path) -> float:
    """Max abs difference between `load_generator(path)` and `generator` (64x48 input)."""
    lr_image = _check_input()
    loaded = load_generator(path)
    return float((_reference(loaded, lr_image) - _reference(generator, lr_image)).abs().max())
