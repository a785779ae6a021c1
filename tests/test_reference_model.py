"""The shipped models (checkpoints/<name>.safetensors, one per SHIPPED_MODELS row) keep their
numbers.

Evaluates each file on Set5 and Set14 exactly as `scripts/evaluate.py` does and compares with
its section's table in checkpoints/MODEL_CARD.md (to 0.005 dB and 0.0005 SSIM), so any change to the
generator, loading, inference, tiling or evaluation that silently breaks real weights fails
here. Reads the benchmark images from data/benchmarks (`scripts/download_data.py set5 set14`)
or ../shared/benchmarks; skipped where neither is there.
"""

import re

import pytest
import torch
from conftest import REPO

from srgan.data.images import list_images, read_image
from srgan.eval.protocol import evaluate_folder, make_eval_image, model_upscaler
from srgan.inference.shipped_models import SHIPPED_MODELS
from srgan.inference.tiles import upscale_tensor
from srgan.inference.weights import load_generator

CHECKPOINTS = REPO / "checkpoints"
CARD = CHECKPOINTS / "MODEL_CARD.md"
BENCHMARKS = next(
    (
        folder
        for folder in (REPO / "data" / "benchmarks", REPO.parent / "shared" / "benchmarks")
        if (folder / "Set5" / "HR").is_dir() and (folder / "Set14" / "HR").is_dir()
    ),
    REPO / "data" / "benchmarks",
)
# A model's section starts with "# Model card: `<name>.safetensors`"; a row of its table:
# | Set5 | SRResNet (this model) | 31.234 | 0.8812 | ...
CARD_HEADING = re.compile(r"^# Model card: `([\w.-]+)\.safetensors`")
CARD_ROW = re.compile(r"^\| (Set5|Set14) \| [^|]*\(this model\) \| ([\d.]+) \| ([\d.]+) \|")

pytestmark = pytest.mark.skipif(
    not all((BENCHMARKS / name / "HR").is_dir() for name in ("Set5", "Set14")),
    reason="needs the Set5/Set14 HR images: scripts/download_data.py set5 set14",
)


def card_numbers(model: str) -> dict[str, tuple[float, float]]:
    """{dataset: (PSNR-Y, SSIM-Y)} of `model`'s "(this model)" rows in its card section."""
    numbers, section = {}, None
    for line in CARD.read_text().splitlines():
        heading = CARD_HEADING.match(line)
        section = heading[1] if heading else section
        row = CARD_ROW.match(line)
        if row and section == model:
            numbers[row[1]] = (float(row[2]), float(row[3]))
    assert set(numbers) == {"Set5", "Set14"}, f"MODEL_CARD.md has no results table for {model}"
    return numbers


def load_shipped(model: str) -> torch.nn.Module:
    path = CHECKPOINTS / f"{model}.safetensors"
    assert path.is_file(), f"{path} is missing (it is tracked in git)"
    return load_generator(path)


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    return load_shipped("srresnet_x4_291")


@pytest.mark.parametrize("model", list(SHIPPED_MODELS))
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_shipped_model_scores_what_its_card_says(model: str, dataset: str) -> None:
    generator = load_shipped(model)
    expected_psnr, expected_ssim = card_numbers(model)[dataset]
    upscale = model_upscaler(generator, torch.device("cpu"), tile=256)  # evaluate.py's default
    paths = list_images(BENCHMARKS / dataset / "HR")
    means, _ = evaluate_folder(upscale, paths, scale=4, progress=False)
    assert means["psnr_y"] == pytest.approx(expected_psnr, abs=0.005)
    assert means["ssim_y"] == pytest.approx(expected_ssim, abs=0.0005)


def test_tiled_and_untiled_outputs_agree_up_to_float_rounding(generator) -> None:
    """Tiles overlap by the receptive field, so tiling changes no output pixel beyond rounding.

    Not bit for bit: oneDNN picks its convolution kernels per input shape, and on an AVX2-only
    CPU a tile's kernels sum in another order than the whole image's (float differences up to
    5.4e-7 seen, mean about 2e-9). The float outputs must agree within 1e-5, 20x the worst
    difference seen and far below a seam (one 8-bit level is 3.9e-3). An 8-bit value changes
    only where its float lies within that difference of a rounding boundary: at most one level,
    and in about one value of the 679,776 (seen: 0 with AVX-512, 1 with AVX2); 0.01% (68
    values) leaves room for other CPUs while any real tiling error (a seam, a shifted tile)
    moves thousands.
    """
    hr_image = read_image(BENCHMARKS / "Set14" / "HR" / "zebra.png")
    lr_image = make_eval_image("zebra", hr_image, 4).lr_image
    lr_tensor = torch.from_numpy(lr_image.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = upscale_tensor(generator, lr_tensor, tile=0)
        tiled = upscale_tensor(generator, lr_tensor, tile=48)
    assert lr_image.shape[0] > 48 and lr_image.shape[1] > 2 * 48  # really several tiles
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    as_uint8 = [(image * 255).round().clamp(0, 255).to(torch.int16) for image in (whole, tiled)]
    level_differences = (as_uint8[0] - as_uint8[1]).abs()
    assert level_differences.max() <= 1
    assert (level_differences > 0).sum() <= 0.0001 * level_differences.numel()
