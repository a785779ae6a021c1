"""Built-in sample data: photographs shipped inside scikit-image's wheel, written as PNGs.

They make the quickstart run anywhere without a download. `chelsea` (the cat) is held out
for validation; `skimage.data.cat` is the same photograph, so it is never used for training.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.files import atomic_write

TRAIN_IMAGES = (
    "astronaut",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
)
VALID_IMAGES = ("chelsea",)


def _write(names: tuple[str, ...], folder: Path) -> list[Path]:
    import skimage.data  # imported here: only this helper needs scikit-image's data module

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.is_file():
            image = np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            # Atomic: a full disk must not leave a truncated PNG that later runs would keep.
            png = buffer.getvalue()
            atomic_write(path, lambda file, png=png: file.write(png), durable=False)
        paths.append(path)
    return paths


def write_sample_data(train_dir: Path, valid_dir: Path) -> tuple[list[Path], list[Path]]:
    """Write the training and validation PNGs (existing files are kept)."""
    return _write(TRAIN_IMAGES, Path(train_dir)), _write(VALID_IMAGES, Path(valid_dir))
