"""The shipped reference SRResNet (checkpoints/srresnet_x4_291.safetensors) keeps its numbers.

Evaluates the file on Set5 and Set14 exactly as `scripts/evaluate.py` does and compares with
the table in checkpoints/MODEL_CARD.md (to 0.005 dB and 0.0005 SSIM), so any change to the
generator, loading, inference, tiling or evaluation that silently breaks real weights fails
here. Skipped where the benchmark images (../shared/benchmarks) are absent.
"""

import re

import numpy as np
import pytest
import torch
from conftest import REPO

from srgan.evaluation import evaluate_folder, list_images, make_eval_image, model_upscaler
from srgan.images import read_image
from srgan.inference import load_generator, upscale_tensor

SHIPPED = REPO / "checkpoints" / "srresnet_x4_291.safetensors"
CARD = REPO / "checkpoints" / "MODEL_CARD.md"
BENCHMARKS = REPO.parent / "shared" / "benchmarks"
# A row of the card's table: | Set5 | SRResNet (this model) | 31.234 | 0.8812 | ...
CARD_ROW = re.compile(r"^\| (Set5|Set14) \| SRResNet \(this model\) \| ([\d.]+) \| ([\d.]+) \|")

pytestmark = pytest.mark.skipif(
    not BENCHMARKS.is_dir(), reason="needs the Set5/Set14 HR images in ../shared/benchmarks"
)


def card_numbers() -> dict[str, tuple[float, float]]:
    numbers = {}
    for line in CARD.read_text().splitlines():
        row = CARD_ROW.match(line)
        if row:
            numbers[row[1]] = (float(row[2]), float(row[3]))
    assert set(numbers) == {"Set5", "Set14"}, "MODEL_CARD.md lost its results table"
    return numbers


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    assert SHIPPED.is_file(), f"{SHIPPED} is missing (it is tracked in git)"
    return load_generator(SHIPPED)


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_shipped_model_scores_what_its_card_says(generator, dataset: str) -> None:
    expected_psnr, expected_ssim = card_numbers()[dataset]
    upscale = model_upscaler(generator, torch.device("cpu"), tile=256)  # evaluate.py's default
    paths = list_images(BENCHMARKS / dataset / "HR")
    means, _ = evaluate_folder(upscale, paths, scale=4, progress=False)
    assert means["psnr_y"] == pytest.approx(expected_psnr, abs=0.005)
    assert means["ssim_y"] == pytest.approx(expected_ssim, abs=0.0005)


def test_tiled_and_untiled_outputs_are_identical(generator) -> None:
    """Tiles overlap by the receptive field, so tiling changes no output pixel."""
    hr_image = read_image(BENCHMARKS / "Set14" / "HR" / "zebra.png")
    lr_image = make_eval_image("zebra", hr_image, 4).lr_image
    lr_tensor = torch.from_numpy(lr_image.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = upscale_tensor(generator, lr_tensor, tile=0)
        tiled = upscale_tensor(generator, lr_tensor, tile=48)
    as_uint8 = [(image * 255).round().clamp(0, 255).byte().numpy() for image in (whole, tiled)]
    assert lr_image.shape[0] > 48 and lr_image.shape[1] > 2 * 48  # really several tiles
    assert np.array_equal(*as_uint8)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
