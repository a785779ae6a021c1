"""Training data: HR images decoded once into RAM, crops drawn per step.

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
size only), then decoded; non-images, unreadable, truncated, too-small and too-large images
(`data.max_image_pixels`, told from the header) are skipped with one warning that lists them,
and any other mode (gray, palette, CMYK, RGBA, 16-bit) is converted to 8-bit RGB. Only a
missing folder, or one with no usable image, is an error.
"""

import functools
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.data.images import (
    MAX_IMAGE_PIXELS,
    describe_other_file,
    find_images,
    other_files,
    pixel_limit_problem,
    read_image,
    warn_skipped,
)


def check_images(
    paths: list[Path], min_size: int, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[list[Path], list[str]]:
    """Cheap start-up check (header only): returns usable paths and 'name: reason' for the rest,
    among them images of more than `max_pixels`, which are never decoded."""
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
        too_large = pixel_limit_problem(width, height, max_pixels)
        if too_large is not None:
            skipped.append(f"{path.name}: {too_large} (data.max_image_pixels)")
            continue
        usable.append(path)
    return usable, skipped


def load_images(
    folder: str | Path, min_size: int, num_threads: int = 4, max_pixels: int = MAX_IMAGE_PIXELS
) -> list[np.ndarray]:
    """Decode every usable image of `folder` once; warns once about the files it skips."""
    paths, skipped = check_images(find_images(folder), min_size, max_pixels)
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
    warn_skipped(folder, skipped)
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


class BatchStream:
    """The uint8 HR batches of a stage's `steps`, made in a background thread that keeps
    `prefetch` batches ready so the accelerator never waits on cropping.

    Iterate it once, and close it (`close()` or a `with` block) on every way out: the thread
    must have ended before the interpreter shuts down, since torch aborts the process when a
    finalizing interpreter ends a thread that is freeing tensors.
    """

    def __init__(
        self,
        crops: TrainCrops,
        steps: range,
        *,
        seed: int,
        stage: int,
        batch_size: int,
        rows: slice,
        pin_memory: bool,
        prefetch: int = 4,
    ) -> None:
        self._crops, self._steps, self._rows, self._pin_memory = crops, steps, rows, pin_memory
        self._seed, self._stage, self._batch_size = seed, stage, batch_size
        self._output: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        # Not a daemon: should a close be cut short, interpreter shutdown still waits for it.
        self._thread = threading.Thread(target=self._produce, name="batch_stream")
        self._thread.start()

    def __iter__(self) -> Iterator[torch.Tensor]:
        for _ in self._steps:
            item = self._output.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (it stops between batches, within `timeout`)."""
        self._stop.set()
        self._thread.join(timeout)
        while not self._output.empty():  # its batches are freed here, not by the thread
            self._output.get_nowait()

    def _produce(self) -> None:
        steps_per_epoch = self._crops.steps_per_epoch(self._batch_size)
        try:
            for step in self._steps:
                epoch, step_in_epoch = divmod(step, steps_per_epoch)
                plan = self._crops.plan(
                    self._seed, self._stage, epoch, step_in_epoch, self._batch_size
                )
                batch = self._crops.crops(plan, self._rows)
                if self._pin_memory:
                    batch = batch.pin_memory()
                if not self._put(batch):
                    return
        except BaseException as error:  # surface errors in the consumer, not silently here
            self._put(error)

    def _put(self, item: torch.Tensor | BaseException) -> bool:
        """Queue `item`, waiting for room until the stream stops; whether it was queued."""
        # The main thread ends without closing the stream only when a close was cut short.
        while not self._stop.is_set() and threading.main_thread().is_alive():
            try:
                self._output.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
