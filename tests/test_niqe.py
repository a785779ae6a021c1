"""NIQE (Mittal et al. 2013): the MATLAB release's figure, missing scores, and properties a
wrong implementation would break."""

import hashlib

import numpy as np
import pytest
from conftest import REPO
from scipy.ndimage import gaussian_filter
from skimage import data

from srgan.data.images import read_image
from srgan.eval.metrics import rgb_to_y
from srgan.eval.niqe import image_niqe, niqe, niqe_luma, pristine_model

BABOON = REPO.parent / "shared" / "benchmarks" / "Set14" / "HR" / "baboon.png"
MODEL_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"


def quantise(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def test_baboon_scores_the_matlab_release_figure() -> None:
    if not BABOON.is_file():
        pytest.skip(f"needs Set14's baboon.png at {BABOON}")
    # MATLAB R2021a, official release, Y channel, whole image: 5.72957338. Measured here:
    # 5.7295739. Both differ only in float summation order, far below 1e-5 (a flat pixel's
    # rounding sign, which moved the score by 4e-4, is settled by the implementation).
    assert image_niqe(read_image(BABOON, keep_gray=True)) == pytest.approx(5.72957338, abs=1e-5)


def test_images_under_96_pixels_have_no_score() -> None:
    image = data.astronaut()
    assert image_niqe(image[:95, :300]) is None
    assert image_niqe(image[:300, :95]) is None
    # 100 px is enough, but not after a 4 px border crop on each side.
    assert image_niqe(image[:100, :100]) is not None
    assert image_niqe(image[:100, :100], crop_border=4) is None
    # One patch is enough for a score (its covariance is zero).
    assert np.isfinite(image_niqe(image[:96, :96]))


def test_a_flat_image_has_no_score() -> None:
    """No patch of a flat image has defined features: no score, rather than NaN."""
    assert image_niqe(np.full((200, 200, 3), 90, dtype=np.uint8)) is None


def test_noise_and_blur_make_a_photograph_less_natural() -> None:
    photo = data.astronaut()
    clean = image_niqe(photo)
    noise = np.random.default_rng(0).normal(0, 10, photo.shape)
    blurred = gaussian_filter(photo.astype(np.float64), (2, 2, 0))
    # Measured: clean 3.06, noisy 6.71, blurred 7.26: margins of over 3 points.
    assert image_niqe(quantise(photo + noise)) > clean + 2
    assert image_niqe(quantise(blurred)) > clean + 2


def test_uint8_and_float_of_the_same_values_score_the_same() -> None:
    for image in (data.astronaut(), data.camera()):
        assert image_niqe(image.astype(np.float32)) == image_niqe(image)
        assert image_niqe(image.astype(np.float64)) == image_niqe(image)


def test_rgb_is_scored_on_rounded_y_and_gray_on_its_values() -> None:
    photo = data.astronaut()[:200, :300]
    assert image_niqe(photo) == niqe(np.floor(rgb_to_y(photo) + 0.5))
    gray = data.camera()[:200, :300]
    assert image_niqe(gray) == niqe(gray.astype(np.float64))
    # Not the unrounded Y: rounding is part of the release's convention and moves the score.
    assert niqe(rgb_to_y(photo)) != pytest.approx(image_niqe(photo), abs=1e-3)
    assert niqe_luma(photo).dtype == np.float64


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="2-D"):
        niqe(np.zeros((100, 100, 3)))
    with pytest.raises(ValueError, match="HxW or HxWx3"):
        image_niqe(np.zeros((100, 100, 4)))


def test_the_pristine_model_ships_with_its_notice() -> None:
    model_dir = REPO / "srgan" / "eval" / "niqe_model"
    model_file = model_dir / "niqe_pris_params.npz"
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == MODEL_SHA256
    assert "The University of Texas at Austin" in (model_dir / "NOTICE.txt").read_text()
    mean, covariance, window = pristine_model()
    assert mean.shape == (36,) and covariance.shape == (36, 36) and window.shape == (7, 7)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["srgan.eval"]
    assert {"niqe_model/*.npz", "niqe_model/*.txt"} <= set(package_data)
