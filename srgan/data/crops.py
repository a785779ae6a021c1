"""Training and validation data: HR images decoded once into RAM, crops drawn per step.

A per-sample `Dataset.__getitem__` decodes a multi-megabyte PNG for every 96 px crop; here every
HR image is decoded once (uint8, about 8 MB per DIV2K image, 6.6 GB for the 800 training
images), and a batch is cut, flipped and rotated straight from memory. The degradation runs
batched on the training device (`srgan.data.degradation.degrade_batch`), so the LR of a sample is
exactly the degradation of its own HR crop.

Every random choice of a step (which images, where to crop, which flip) comes from a generator
seeded with (seed, stage, epoch, step). A step's batch is therefore a pure function of its
position in the schedule: resuming at step N reproduces the uninterrupted run's batches, and
N GPUs with the global batch split between them see exactly the samples one GPU would.

Bad files never stop a run: at start-up every file of the folder is checked once (header and
size only), then decoded; non-images, unreadable, truncated and too-small images are skipped
with one warning that lists them, and any other mode (gray, palette, CMYK, RGBA, 16-bit) is
converted to 8-bit RGB. Only a missing folder, or one with no usable image, is an error.
"""

import functools
import queue
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.data.images import describe_other_file, find_images, other_files, read_image
from srgan.eval.protocol import EvalImage, make_eval_image, smallest_measurable


def check_images(paths: list[Path], min_size: int) -> tuple[list[Path], list[str]]:
    """Cheap start-up check (header only): returns usable paths and 'name: reason' for the rest."""
    usable, skipped = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception as error:  # PIL raises many types for a bad file (also DecompressionBomb)
            skipped.append(f"{path.name}: not a readable image ({type(error).__name__})")
            continue
        if min(width, height) < min_size:
            skipped.append(f"{path.name}: {width}x{height} is smaller than {min_size} px")
            continue
        usable.append(path)
    return usable, skipped


def _warn_skipped(folder: str | Path, skipped: list[str]) -> None:
    if skipped:
        warnings.warn(
            f"{folder}: skipped {len(skipped)} file(s): " + "; ".join(sorted(skipped)),
            stacklevel=3,
        )


def load_images(folder: str | Path, min_size: int, num_threads: int = 4) -> list[np.ndarray]:
    """Decode every usable image of `folder` once; warns once about the files it skips."""
    paths, skipped = check_images(find_images(folder), min_size)
    skipped += [describe_other_file(path) for path in other_files(folder)]

    def decode(path: Path) -> np.ndarray | None:
        try:
            return read_image(path)
        except Exception as error:  # a truncated or corrupt file: PIL raises many types
            reason = getattr(error, "reason", error)  # UnreadableImageError names the path
            skipped.append(f"{path.name}: failed to decode ({reason})")
            return None

    # PIL releases the GIL while decoding, so threads overlap the decodes.
    with ThreadPoolExecutor(num_threads) as pool:
        images = [image for image in pool.map(decode, paths) if image is not None]
    _warn_skipped(folder, skipped)
    if not images:
        raise ValueError(f"no usable training images (at least {min_size} px) in {folder}")
    return images


@dataclass(frozen=True)
class CropPlan:
    """Where a step's samples come from: one row per sample of the global batch."""

    image_index: np.ndarray  # (batch,)
    top: np.ndarray  # (batch,)
    left: np.ndarray  # (batch,)
    transform: np.ndarray  # (batch,) 3 bits: horizontal flip, vertical flip, transpose


class TrainCrops:
    """Random HR crops with flips and 90-degree rotations, drawn as a function of the step."""

    def __init__(self, images: list[np.ndarray], crop_size: int, crops_per_image: int = 1) -> None:
        # CHW uint8 tensors sharing the numpy buffers: crops are views until stacked.
        self.images = [torch.from_numpy(np.ascontiguousarray(i.transpose(2, 0, 1))) for i in images]
        self.sizes = np.array([image.shape[:2] for image in images])
        self.crop_size = crop_size
        self.crops_per_image = crops_per_image

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self.images) * self.crops_per_image // batch_size)

    @functools.lru_cache(maxsize=2)  # noqa: B019 (one TrainCrops per run; frees with it)
    def _epoch_order(self, seed: int, stage: int, epoch: int) -> np.ndarray:
        """Each image crops_per_image times, shuffled per epoch (computed once per epoch)."""
        order = np.tile(np.arange(len(self.images)), self.crops_per_image)
        return np.random.default_rng([seed, stage, epoch]).permutation(order)

    def plan(
        self, seed: int, stage: int, epoch: int, step_in_epoch: int, batch_size: int
    ) -> CropPlan:
        order = self._epoch_order(seed, stage, epoch)
        start = step_in_epoch * batch_size
        image_index = np.resize(order[start : start + batch_size], batch_size)
        step_rng = np.random.default_rng([seed, stage, epoch, step_in_epoch])
        heights, widths = self.sizes[image_index, 0], self.sizes[image_index, 1]
        top = (step_rng.random(batch_size) * (heights - self.crop_size + 1)).astype(np.int64)
        left = (step_rng.random(batch_size) * (widths - self.crop_size + 1)).astype(np.int64)
        transform = step_rng.integers(0, 8, batch_size)
        return CropPlan(image_index, top, left, transform)

    def crops(self, plan: CropPlan, rows: slice = slice(None)) -> torch.Tensor:
        """The planned crops as (B, 3, c, c) uint8; `rows` picks some (e.g. one rank's share)."""
        size = self.crop_size
        crops = []
        for index, top, left, transform in zip(
            plan.image_index[rows],
            plan.top[rows],
            plan.left[rows],
            plan.transform[rows],
            strict=True,
        ):
            crop = self.images[index][:, top : top + size, left : left + size]
            if transform & 1:
                crop = crop.flip(-1)
            if transform & 2:
                crop = crop.flip(-2)
            if transform & 4:
                crop = crop.transpose(-1, -2)
            crops.append(crop)
        return torch.stack(crops)


def batch_stream(
    crops: TrainCrops,
    steps: range,
    *,
    seed: int,
    stage: int,
    batch_size: int,
    rows: slice,
    pin_memory: bool,
    prefetch: int = 4,
) -> Iterator[torch.Tensor]:
    """Yield the uint8 HR batches of the stage's `steps`, made in a background thread.

    The thread keeps `prefetch` batches ready so the accelerator never waits on cropping.
    """
    output: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    steps_per_epoch = crops.steps_per_epoch(batch_size)

    def produce() -> None:
        try:
            for step in steps:
                epoch, step_in_epoch = divmod(step, steps_per_epoch)
                plan = crops.plan(seed, stage, epoch, step_in_epoch, batch_size)
                batch = crops.crops(plan, rows)
                if pin_memory:
                    batch = batch.pin_memory()
                while not stop.is_set():
                    try:
                        output.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # surface errors in the consumer, not silently here
            output.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        for _ in steps:
            item = output.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def center_crop(image: np.ndarray, max_size: int) -> np.ndarray:
    if max_size <= 0:
        return image
    height, width = image.shape[:2]
    top, left = max(0, (height - max_size) // 2), max(0, (width - max_size) // 2)
    return image[top : top + max_size, left : left + max_size]


def load_validation_images(
    folder: str | Path,
    scale: int,
    max_size: int = 0,
    degradation: str = "bicubic",
    gaussian_sigma: float = 1.5,
) -> list[EvalImage]:
    """The validation set as the evaluation protocol sees it (`srgan.eval.protocol`).

    Each image is read as evaluate.py reads it (gray stays gray), centre-cropped to `max_size`
    (0: whole image), modcropped, and paired with its LR image, made once here. Images too
    small to measure (SSIM's 11 px window after shaving `scale` px per border) are skipped
    with the unreadable ones, in one warning.
    """
    min_size = smallest_measurable(scale)
    images, skipped = [], [describe_other_file(path) for path in other_files(folder)]
    for path in find_images(folder):
        try:
            hr_image = center_crop(read_image(path, keep_gray=True), max_size)
        except Exception as error:  # PIL raises many types for a bad file
            reason = getattr(error, "reason", error)  # UnreadableImageError names the path
            skipped.append(f"{path.name}: failed to decode ({reason})")
            continue
        height, width = hr_image.shape[0] // scale * scale, hr_image.shape[1] // scale * scale
        if min(height, width) < min_size:
            skipped.append(f"{path.name}: {width}x{height} is smaller than {min_size} px")
            continue
        images.append(make_eval_image(path.stem, hr_image, scale, degradation, gaussian_sigma))
    _warn_skipped(folder, skipped)
    if not images:
        raise ValueError(f"no usable validation images (at least {min_size} px) in {folder}")
    return images
