"""The metrics of a stage: loss terms buffered on the device, checked and written as JSONL.

Loss terms stay on the device between log steps (one host sync per log interval, not per
step). At each log step the buffer is scanned for NaN/inf, which raises `NonFiniteLossError`
naming the first bad step, and the means are appended to `metrics.jsonl`, one JSON object a
line, with the stage and step. Only the main process writes.
"""

import json
from pathlib import Path

import torch

from srgan.files import atomic_write_text
from srgan.plotting import plot_curves


class NonFiniteLossError(RuntimeError):
    """A loss or weight became NaN or inf; the message names the step, the terms and the last
    good checkpoint (none is ever written with non-finite weights)."""


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics file; a line cut short by a kill mid-write is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsLog:
    def __init__(self, path: Path, stage: str, enabled: bool) -> None:
        self.path = path
        self.stage = stage
        self.enabled = enabled
        self.last_row: dict = {}
        self._history: list[torch.Tensor] = []
        self._names: list[str] = []

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        self._names = list(losses)
        self._history.append(torch.stack(list(losses.values())))

    def summarize(self, step: int, last_good: str) -> dict[str, float]:
        """Mean of each loss term since the last call; raises on the first non-finite step."""
        values = torch.stack(self._history).float().cpu()
        first_step = step - len(self._history) + 1
        self._history.clear()
        bad = (~torch.isfinite(values)).any(dim=1).nonzero()
        if len(bad):
            row = values[bad[0, 0]]
            terms = ", ".join(
                f"{name}={value:.4g}" for name, value in zip(self._names, row.tolist(), strict=True)
            )
            raise NonFiniteLossError(
                f"{self.stage} step {first_step + int(bad[0, 0])}: non-finite loss ({terms}); "
                f"{last_good}"
            )
        means = values.mean(0).tolist()
        return {f"loss/{name}": mean for name, mean in zip(self._names, means, strict=True)}

    def write(self, step: int, epoch: float, metrics: dict) -> None:
        self.last_row = {"stage": self.stage, "step": step, "epoch": epoch, **metrics}
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as file:
            file.write(json.dumps(self.last_row) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop this stage's rows logged after `step` (they will be redone)."""
        if not self.enabled or not self.path.is_file():
            return
        rows = read_metrics(self.path)
        kept = [row for row in rows if row.get("stage") != self.stage or row["step"] <= step]
        text = "".join(json.dumps(row) + "\n" for row in kept)
        if text != self.path.read_text():
            # Replace, not rewrite in place: a kill now must not lose the rows of earlier steps.
            atomic_write_text(self.path, text)

    def plot(self) -> None:
        if self.enabled:
            plot_curves(read_metrics(self.path), self.path.parent / "curves.png")
