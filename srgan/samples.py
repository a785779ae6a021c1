"""Pictures of training progress: at each validation, bicubic | SR | HR of fixed crops.

`logs/<name>/samples/<stage>_step<N>.png` holds one row per sample image (the first few
validation images), each the same most-textured crop at every validation, with the step and
the image's PSNR-Y in the captions, so strips from different steps compare by eye. The newest
`keep` strips are kept, and the first one too (where training started from).
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.evaluation import EvalImage, bicubic_upscale
from srgan.files import atomic_write
from srgan.panels import comparison_image, stack_rows, texture_window

CROP_SIZE = 96  # HR pixels per crop side, shown at 2x
MAX_IMAGES = 4  # rows per strip: enough to judge, small enough to write at every validation


class SampleStrips:
    def __init__(self, folder: Path, images: list[EvalImage], scale: int, keep: int) -> None:
        self.folder, self.keep = Path(folder), keep
        self.images = images[:MAX_IMAGES]
        self.windows = [texture_window(image.hr_image, CROP_SIZE) for image in self.images]
        self.bicubic = [self._rgb(bicubic_upscale(i.lr_image, scale)) for i in self.images]

    @staticmethod
    def _rgb(image: np.ndarray) -> np.ndarray:
        return image if image.ndim == 3 else np.stack([image] * 3, axis=-1)

    def rows(self, step: int, outputs: dict[str, np.ndarray], scores: dict[str, float]) -> dict:
        """{image name: its bicubic | SR | HR comparison} for the images in `outputs`."""
        rows = {}
        for image, window, bicubic in zip(self.images, self.windows, self.bicubic, strict=True):
            if image.name not in outputs:
                continue
            panels = [
                (f"bicubic\n{image.name}", bicubic),
                (f"SR, step {step}\n{scores[image.name]:.2f} dB", self._rgb(outputs[image.name])),
                ("HR", self._rgb(image.hr_image)),
            ]
            rows[image.name] = comparison_image(self._rgb(image.hr_image), panels, window=window)
        return rows

    def write(self, stage: str, step: int, rows: dict[str, Image.Image], psnr: float) -> Path:
        """Save one strip of `rows` for this validation, then prune old strips."""
        strip = stack_rows(
            list(rows.values()), title=f"{stage} step {step}: validation PSNR-Y {psnr:.2f} dB"
        )
        path = self.folder / f"{stage}_step{step:08d}.png"
        buffer = io.BytesIO()
        strip.save(buffer, format="PNG")
        atomic_write(path, lambda file: file.write(buffer.getvalue()), durable=False)
        self.prune(stage)
        return path

    def prune(self, stage: str) -> None:
        strips = sorted(self.folder.glob(f"{stage}_step*.png"))  # zero-padded: step order
        for path in strips[1 : max(1, len(strips) - self.keep)]:
            path.unlink(missing_ok=True)
