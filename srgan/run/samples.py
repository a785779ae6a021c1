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

from srgan.eval.panels import comparison_image, stack_rows, texture_window
from srgan.eval.protocol import EvalImage, bicubic_upscale
from srgan.files import atomic_write

CROP_SIZE = 96  # HR pixels per crop side, shown at 2x
MAX_IMAGES = 4  # rows per strip: enough to judge, small enough to write at every validation
# An SR crop whose values spread less than this fraction of bicubic's is captioned "not
# trained yet": an untrained generator outputs one flat colour.
FLAT_SPREAD = 0.2


def looks_untrained(sr_image: np.ndarray, bicubic: np.ndarray, window: tuple) -> bool:
    """Whether the HxWx3 SR crop in `window` (top, left, height, width) is nearly flat where
    the bicubic crop is not (spread over positions, in the channel that varies most)."""
    top, left, height, width = window
    spreads = [
        image[top : top + height, left : left + width].astype(np.float64).std(axis=(0, 1)).max()
        for image in (sr_image, bicubic)
    ]
    return spreads[0] < FLAT_SPREAD * max(spreads[1], 1.0)


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
            sr_image = self._rgb(outputs[image.name])
            score = f"{scores[image.name]:.2f} dB"
            if looks_untrained(sr_image, bicubic, window):
                sr_caption = f"SR, step {step}: flat,\nnot trained yet, {score}"
            else:
                sr_caption = f"SR, step {step}\n{score}"
            panels = [
                (f"bicubic\n{image.name}", bicubic),
                (sr_caption, sr_image),
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
