"""Export a trained generator for other runtimes: ONNX, a torch.export program, or
weights-only safetensors.

ONNX and the torch.export program (.pt2) hold `ExportedUpscaler`: LR (N, 3, H, W) in [0, 1] ->
SR (N, 3, sH, sW) in [0, 1] (the generator's [-1, 1] output mapped and clamped), with any N, H
and W, so a runtime needs no knowledge of this code. Both come from `torch.export`, the exporter
torch recommends since TorchScript's deprecation: the ONNX graph declares its output as
`scale*height` by `scale*width` of its input, and the program loads with
`torch.export.load(path).module()`. safetensors holds the bare generator state dict plus its
hyper-parameters as metadata, for `srgan.load_generator` (nothing pickled, nothing run). Every
format's metadata records, for an SRGAN, the SRResNet it was trained from (`pretrained`: see
`srgan.inference.pretrained_source`), which interpolating the two (`--strength`) needs.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from srgan.inference.weights import load_generator, safetensors_metadata
from srgan.models.generator import Generator, signed_to_unit

# The torch.export-based ONNX exporter writes opset 18 (onnxruntime >= 1.14, TensorRT >= 8.6);
# asking it for an older one runs a version converter that can fail.
ONNX_OPSET = 18
CHECK_HEIGHT, CHECK_WIDTH = 48, 64  # the random input on which exports are compared
INPUT_NAME, OUTPUT_NAME = "lr_image", "sr_image"
METADATA_FILE = "srgan.json"  # the metadata inside a .pt2 archive (torch.export extra_files)


class ExportedUpscaler(nn.Module):
    """The generator with image-range input and output, the interface other runtimes get."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator
        self.scale = generator.scale

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return signed_to_unit(self.generator(lr_image)).clamp(0, 1)


def export_safetensors(
    generator: Generator,
    path: Path,
    degradation: str | None = None,
    pretrained: dict[str, str] | None = None,
) -> None:
    """Weights only, with the GeneratorSpec (and the training degradation and an SRGAN's
    SRResNet, when known) in the metadata for `load_generator`."""
    state_dict = {name: tensor.detach().cpu() for name, tensor in generator.state_dict().items()}
    metadata = safetensors_metadata(generator.spec, degradation, pretrained)
    save_file(state_dict, str(path), metadata=metadata)


def _export_arguments(generator: Generator) -> tuple[nn.Module, tuple, dict]:
    """The module, an example input and the dynamic batch, height and width of torch.export.

    The example has a batch of 2: torch.export would fix a dimension of size 1 as a constant.
    Output sizes follow from the graph, scale times the input's.
    """
    model = ExportedUpscaler(generator).cpu().eval()
    example = (torch.rand(2, 3, 32, 32),)
    dims = {0: "batch", 2: "height", 3: "width"}
    dynamic_shapes = {INPUT_NAME: {axis: torch.export.Dim(name) for axis, name in dims.items()}}
    return model, example, dynamic_shapes


def export_program(
    generator: Generator,
    path: Path,
    degradation: str | None = None,
    pretrained: dict[str, str] | None = None,
) -> None:
    """A `torch.export` ExportedProgram (.pt2) of ExportedUpscaler, with dynamic batch, height
    and width; it loads with `torch.export.load(path).module()` (and AOTInductor compiles it
    for C++). The metadata of `safetensors_metadata` is in the archive as srgan.json."""
    model, example, dynamic_shapes = _export_arguments(generator)
    program = torch.export.export(model, example, dynamic_shapes=dynamic_shapes)
    metadata = json.dumps(safetensors_metadata(generator.spec, degradation, pretrained))
    torch.export.save(program, str(path), extra_files={METADATA_FILE: metadata})


def export_onnx(
    generator: Generator,
    path: Path,
    degradation: str | None = None,
    pretrained: dict[str, str] | None = None,
    opset: int = ONNX_OPSET,
) -> None:
    """ONNX of ExportedUpscaler with dynamic batch, height and width, from torch's
    torch.export-based exporter (`dynamo=True`); needs the onnx and onnxscript packages."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter's translator; checked here to say so)
    except ImportError:
        raise ModuleNotFoundError(
            "ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript"
        ) from None
    model, example, dynamic_shapes = _export_arguments(generator)
    program = torch.onnx.export(
        model,
        example,
        dynamo=True,
        dynamic_shapes=dynamic_shapes,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        verbose=False,
    )
    program.save(str(path))
    proto = onnx.load(str(path))
    metadata = {
        **safetensors_metadata(generator.spec, degradation, pretrained),
        "input": f"{INPUT_NAME}: RGB in [0, 1], NCHW float32",
        "output": f"{OUTPUT_NAME}: RGB in [0, 1], NCHW float32, scale times larger",
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def onnx_declared_shapes(path: Path) -> dict[str, list[int | str]]:
    """{input or output name: its declared shape}, symbolic sizes as their expressions
    (e.g. [batch, 3, 4*height, 4*width])."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in [*graph.input, *graph.output]
    }


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
    (sr_image,) = session.run(None, {INPUT_NAME: lr_image.numpy()})
    return float(np.abs(sr_image - _reference(generator, lr_image).numpy()).max())


@torch.no_grad()
def check_program(generator: Generator, path: Path) -> float:
    """Max abs difference between the loaded .pt2 program and PyTorch (64x48 input)."""
    lr_image = _check_input()
    loaded = torch.export.load(str(path)).module()
    return float((loaded(lr_image) - _reference(generator, lr_image)).abs().max())


@torch.no_grad()
def check_safetensors(generator: Generator, path: Path) -> float:
    """Max abs difference between `load_generator(path)` and `generator` (64x48 input)."""
    lr_image = _check_input()
    loaded = load_generator(path)
    return float((_reference(loaded, lr_image) - _reference(generator, lr_image)).abs().max())
