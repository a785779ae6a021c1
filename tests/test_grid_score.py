"""The grid score: smooth errors and white noise score low, period-2/4 checkerboards high."""

import numpy as np
import pytest
from skimage.transform import resize

from srgan.eval.grid_score import grid_score, grid_score_of_residual, harmonic_mask
from srgan.eval.metrics import rgb_to_y

SIZE = (384, 448)


def smooth_field(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A random field varying over about 50 pixels, unit standard deviation."""
    coarse = np.random.default_rng(seed).normal(size=(size[0] // 48, size[1] // 48))
    field = resize(coarse, size, order=3, mode="reflect")
    return (field - field.mean()) / field.std()


def checkerboard(size: tuple[int, int] = SIZE) -> np.ndarray:
    """A fixed random 4x4 tile repeated (periods 4 and 2), plus a pure period-2 checkerboard,
    unit standard deviation."""
    tile = np.random.default_rng(7).normal(size=(4, 4))
    pattern = np.tile(tile, (size[0] // 4, size[1] // 4))
    rows, columns = np.indices(size)
    pattern += (-1.0) ** (rows + columns)
    return (pattern - pattern.mean()) / pattern.std()


def test_the_neighbourhoods_cover_15_1024ths_of_the_plane() -> None:
    # 512 bins per axis: 1/64 cycle/pixel is 8 bins, so each neighbourhood is 17 x 17 bins.
    mask = harmonic_mask(512, 512)
    assert mask.sum() == 15 * 17 * 17
    assert not mask[0, 0] and not mask[3, 5]  # DC and its neighbourhood are not harmonics
    assert mask[128, 0] and mask[256, 256] and mask[384, 130] and mask[0, 392]  # k/4 +- 8 bins
    assert not mask[128, 137]  # 9 bins away


def test_white_noise_scores_the_neighbourhoods_share() -> None:
    """White noise has no preferred frequency: its score is the neighbourhoods' share."""
    rng = np.random.default_rng(0)
    scores = [grid_score_of_residual(rng.normal(size=SIZE)) for _ in range(4)]
    share = harmonic_mask(*SIZE).mean()
    assert 0.012 < share < 0.02  # about 15/1024 (discrete bins)
    # One image's score spreads by about 6% (chi-square over ~1,500 correlated bins); the
    # mean of four by about 3%.
    assert np.mean(scores) == pytest.approx(share, rel=0.15)


def test_a_smooth_error_scores_far_below_the_neighbourhoods_share() -> None:
    score = grid_score_of_residual(smooth_field(1))
    assert score < 0.1 * harmonic_mask(*SIZE).mean()


def test_checkerboards_score_high_and_rise_with_their_amplitude() -> None:
    """A smooth error plus a period-4/period-2 pattern whose amplitude follows the content
    (an envelope varying over ~50 px) as a pixel shuffle's grid does."""
    smooth = smooth_field(1)
    envelope = np.exp(0.3 * smooth_field(2))
    scores = [
        grid_score_of_residual(smooth + amplitude * envelope * checkerboard())
        for amplitude in (0.05, 0.1, 0.2, 0.4, 0.8)
    ]
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False)), scores
    # Measured: 0.2%, 0.8%, 3.0%, 11%, 33%. A pattern with 4% of the smooth error's energy
    # (amplitude 0.2) already scores twice the neighbourhoods' share; one with 64% scores over 30%.
    assert scores[2] > 1.5 * harmonic_mask(*SIZE).mean()
    assert scores[-1] > 0.3


def test_sr_and_hr_are_compared_on_y_with_the_border_cropped() -> None:
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:4] = 0  # differences only in the border
    assert grid_score(sr, hr, crop_border=4) is None  # no error at all: no score
    assert grid_score(sr, hr, crop_border=3) is not None
    sr = np.clip(hr.astype(int) + rng.integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    residual = (rgb_to_y(sr) - rgb_to_y(hr))[4:-4, 4:-4]
    assert grid_score(sr, hr, crop_border=4) == grid_score_of_residual(residual)
    gray_hr, gray_sr = hr[..., 0], sr[..., 0]
    gray_residual = (gray_sr.astype(float) - gray_hr)[4:-4, 4:-4]
    assert grid_score(gray_sr, gray_hr, 4) == grid_score_of_residual(gray_residual)
    with pytest.raises(ValueError, match="shape mismatch"):
        grid_score(sr, hr[:-1], 4)


def test_score_is_a_fraction() -> None:
    residual = smooth_field(4) + 5 * checkerboard()
    assert 0 <= grid_score_of_residual(residual) <= 1
    assert grid_score_of_residual(np.zeros((3, 100))) is None
