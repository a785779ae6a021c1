"""Training data: crop plans, transforms, DDP row slicing, degradation and the loop's conventions.

A step's batch is a pure function of (seed, stage, epoch, step) and its LR half is the
degradation of its own HR crop (paper Section 3.1); these tests recompute both by hand.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyDataset, smooth_image

from srgan.config import load_config
from srgan.data.crops import CropPlan, TrainCrops, load_images
from srgan.data.degradation import degrade_batch
from srgan.models.generator import Generator
from srgan.run.folder import RunPaths
from srgan.run.runtime import Runtime
from srgan.train.loop import Stage, run_stage
from srgan.train.networks import Network
from srgan.train.steps import Batch

CROP = 32
SCALE = 4
CPU_FP32 = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Five smooth images of different sizes (HxWx3 uint8)."""
    rng = np.random.default_rng(7)
    sizes = ((64, 80), (96, 64), (72, 72), (128, 100), (64, 64))
    return [smooth_image(rng, height, width) for height, width in sizes]


def cut_by_hand(image: np.ndarray, top: int, left: int, transform: int) -> np.ndarray:
    """The crop and its flips/transposition, written independently of TrainCrops (HxWx3)."""
    crop = image[top : top + CROP, left : left + CROP]
    if transform & 1:  # horizontal flip: mirror the columns
        crop = crop[:, ::-1]
    if transform & 2:  # vertical flip: mirror the rows
        crop = crop[::-1, :]
    if transform & 4:  # transposition (with the flips: the 90-degree rotations)
        crop = crop.transpose(1, 0, 2)
    return np.ascontiguousarray(crop)


def to_unit_chw(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float in [0, 1], as the loop feeds the degradation."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def test_crops_and_lr_match_hand_cut_crops(images: list[np.ndarray]) -> None:
    crops = TrainCrops(images, CROP)
    plan = crops.plan(seed=3, stage=0, epoch=1, step_in_epoch=0, batch_size=8)
    hr_batch = crops.crops(plan)
    assert hr_batch.shape == (8, 3, CROP, CROP) and hr_batch.dtype == torch.uint8
    lr_batch = degrade_batch(hr_batch.float() / 255, SCALE)
    assert lr_batch.shape == (8, 3, CROP // SCALE, CROP // SCALE)
    for row in range(8):
        image = images[plan.image_index[row]]
        by_hand = cut_by_hand(image, plan.top[row], plan.left[row], plan.transform[row])
        assert torch.equal(hr_batch[row], torch.from_numpy(by_hand).permute(2, 0, 1)), row
        # The LR sample is exactly the degradation of its own HR crop.
        assert torch.equal(lr_batch[row], degrade_batch(to_unit_chw(by_hand), SCALE)), row


def test_plan_is_a_pure_function_of_the_step(images: list[np.ndarray]) -> None:
    crops = TrainCrops(images, CROP, crops_per_image=2)
    first = crops.plan(seed=5, stage=1, epoch=2, step_in_epoch=3, batch_size=4)
    again = crops.plan(seed=5, stage=1, epoch=2, step_in_epoch=3, batch_size=4)
    for field in ("image_index", "top", "left", "transform"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    # Any other position in the schedule draws other crops.
    for other in (
        crops.plan(seed=5, stage=1, epoch=2, step_in_epoch=4, batch_size=4),
        crops.plan(seed=5, stage=1, epoch=3, step_in_epoch=3, batch_size=4),
        crops.plan(seed=5, stage=0, epoch=2, step_in_epoch=3, batch_size=4),
        crops.plan(seed=6, stage=1, epoch=2, step_in_epoch=3, batch_size=4),
    ):
        assert not np.array_equal(first.top, other.top) or not np.array_equal(
            first.left, other.left
        )


def test_plans_cover_epoch_and_stay_inside_images(images: list[np.ndarray]) -> None:
    crops = TrainCrops(images, CROP, crops_per_image=2)
    batch_size = 2
    steps = crops.steps_per_epoch(batch_size)
    assert steps == len(images) * 2 // batch_size
    drawn = []
    for step in range(steps):
        plan = crops.plan(seed=0, stage=0, epoch=0, step_in_epoch=step, batch_size=batch_size)
        heights = np.array([images[i].shape[0] for i in plan.image_index])
        widths = np.array([images[i].shape[1] for i in plan.image_index])
        assert (plan.top >= 0).all() and (plan.top + CROP <= heights).all()
        assert (plan.left >= 0).all() and (plan.left + CROP <= widths).all()
        drawn.extend(plan.image_index.tolist())
    # One epoch: every image exactly crops_per_image times.
    assert sorted(drawn) == sorted(list(range(len(images))) * 2)


def test_all_eight_transforms_occur_and_differ(images: list[np.ndarray]) -> None:
    crops = TrainCrops(images, CROP)
    seen = set()
    for step in range(40):
        plan = crops.plan(seed=0, stage=0, epoch=0, step_in_epoch=step, batch_size=4)
        seen.update(plan.transform.tolist())
    assert seen == set(range(8))
    # The 8 transforms of one crop are the 8 distinct symmetries of the square.
    same_place = CropPlan(
        image_index=np.zeros(8, dtype=np.int64),
        top=np.full(8, 5),
        left=np.full(8, 9),
        transform=np.arange(8),
    )
    variants = crops.crops(same_place)
    assert len({variant.numpy().tobytes() for variant in variants}) == 8


def test_rows_slice_is_that_part_of_the_full_batch(images: list[np.ndarray]) -> None:
    crops = TrainCrops(images, CROP)
    plan = crops.plan(seed=1, stage=0, epoch=0, step_in_epoch=1, batch_size=6)
    full = crops.crops(plan)
    world_size = 3
    shares = []
    for rank in range(world_size):
        rows = slice(rank * 6 // world_size, (rank + 1) * 6 // world_size)
        share = crops.crops(plan, rows)
        assert torch.equal(share, full[rows])
        shares.append(share)
    assert torch.equal(torch.cat(shares), full)


@pytest.mark.parametrize("kind", ["gaussian", "bicubic"])
def test_degradation_of_constant_image_is_constant(kind: str) -> None:
    hr_image = torch.full((2, 3, 32, 24), 0.4)
    lr_image = degrade_batch(hr_image, SCALE, kind, gaussian_sigma=1.5)
    assert lr_image.shape == (2, 3, 8, 6)
    assert torch.equal(lr_image, torch.full_like(lr_image, round(0.4 * 255) / 255))


@pytest.mark.parametrize("kind", ["gaussian", "bicubic"])
def test_degradation_output_is_8_bit_and_in_range(kind: str) -> None:
    hr_image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    lr_image = degrade_batch(hr_image, 2, kind)
    assert lr_image.shape == (1, 3, 12, 12)
    assert lr_image.min() >= 0 and lr_image.max() <= 1
    assert torch.equal(lr_image * 255, (lr_image * 255).round())
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade_batch(hr_image, 2, "nearest")


def record_loop_batches(
    tiny_dataset: TinyDataset, tiny_overrides: list[str], runtime: Runtime, log_dir: Path
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], TrainCrops, Stage]:
    """Run the real training loop for 3 steps with a step function that records its inputs."""
    config = load_config(None, tiny_overrides)
    crops = TrainCrops(load_images(tiny_dataset.train_dir, CROP), CROP)
    generator = Generator(scale=SCALE, num_blocks=2, num_channels=8)
    recorded = []

    def step_fn(batch: Batch) -> dict[str, torch.Tensor]:
        recorded.append((batch.lr_image.clone(), batch.hr_image.clone()))
        return {"pixel": torch.tensor(0.0)}

    optimizer = torch.optim.Adam(generator.parameters())
    stage = Stage(
        name="pretrain",
        kind="srresnet",
        stage_id=0,
        batch_size=4,
        epochs=10,
        validate_every=1000,  # no validation: only the batches matter here
        lr_at=lambda step: 1e-4,
        networks={"generator": Network.plain(generator, optimizer, runtime.grad_scaler())},
        step=step_fn,
    )
    paths = RunPaths(log_dir=log_dir, checkpoint_dir=log_dir / "checkpoints")
    run_stage(
        stage,
        config=config,
        runtime=runtime,
        crops=crops,
        validation=[],
        paths=paths,
        max_steps=3,
    )
    return recorded, crops, stage


def test_loop_feeds_hr_in_minus_one_one_and_lr_in_zero_one(
    tiny_dataset: TinyDataset, tiny_overrides: list[str], tmp_path: Path
) -> None:
    recorded, crops, stage = record_loop_batches(tiny_dataset, tiny_overrides, CPU_FP32, tmp_path)
    assert len(recorded) == 3
    steps_per_epoch = crops.steps_per_epoch(stage.batch_size)
    for step, (lr_image, hr_image) in enumerate(recorded):
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        plan = crops.plan(0, stage.stage_id, epoch, step_in_epoch, stage.batch_size)
        hr_unit = crops.crops(plan).float() / 255
        # HR in [-1, 1] (the generator's tanh range), LR in [0, 1] and its degradation.
        assert torch.equal(hr_image, hr_unit * 2 - 1)
        assert torch.equal(lr_image, degrade_batch(hr_unit, SCALE))
        assert -1 <= hr_image.min() < -0.5 and 0.5 < hr_image.max() <= 1
        assert 0 <= lr_image.min() < 0.25 and 0.75 < lr_image.max() <= 1


def test_loop_gives_each_rank_its_rows(
    tiny_dataset: TinyDataset, tiny_overrides: list[str], tmp_path: Path
) -> None:
    full, _, _ = record_loop_batches(tiny_dataset, tiny_overrides, CPU_FP32, tmp_path / "one")
    for rank in range(2):
        # Ranks other than 0 neither log nor save, so no process group is needed here.
        runtime = Runtime(torch.device("cpu"), None, False, rank=rank, world_size=2)
        shares, _, _ = record_loop_batches(
            tiny_dataset, tiny_overrides, runtime, tmp_path / f"rank{rank}"
        )
        for (lr_share, hr_share), (lr_full, hr_full) in zip(shares, full, strict=True):
            rows = slice(rank * 2, rank * 2 + 2)
            assert torch.equal(hr_share, hr_full[rows])
            assert torch.equal(lr_share, lr_full[rows])
