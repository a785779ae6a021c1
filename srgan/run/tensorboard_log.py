"""Optional TensorBoard logging (`runtime.tensorboard`), beside metrics.jsonl.

metrics.jsonl stays the record that resuming relies on; TensorBoard gets the same scalars
and, at each validation, the sample pictures. Each stage writes its own event stream,
`logs/<name>/tensorboard/<stage>/`. A resumed stage reopens it with `purge_step` = its first
step to redo: TensorBoard then hides every earlier-written event of that stream from that step
on (the steps the killed run logged after its checkpoint), so each step appears once.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import ConfigError


def require_tensorboard() -> None:
    """Fail before any work when TensorBoard logging is on but the package is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            "runtime.tensorboard needs the tensorboard package: pip install tensorboard "
            "(or pip install -e '.[tensorboard]')"
        ) from None


class TensorBoardLog:
    def __init__(self, log_dir: Path, stage: str, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge_step = first_step + 1 if first_step > 0 else None
        self.writer = SummaryWriter(
            str(Path(log_dir) / "tensorboard" / stage), purge_step=purge_step
        )

    def scalars(self, step: int, metrics: dict) -> None:
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def images(self, step: int, pictures: dict[str, Image.Image]) -> None:
        for name, picture in pictures.items():
            array = np.asarray(picture.convert("RGB"))
            self.writer.add_image(f"samples/{name}", array, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
