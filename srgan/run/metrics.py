"""The metrics of a stage: loss terms buffered on the device, checked and written as JSONL.

Loss terms stay on the device between log steps (one host sync per log interval, not per
step). At each log step the buffer is scanned for NaN/inf, which raises `NonFiniteLossError`
naming the first bad step, and the means are appended to `metrics.jsonl`, one JSON object a
line, with the stage and step.
"""

import json
import shutil
import sys
import warnings
from pathlib import Path

import torch

from srgan.files import WriteError, atomic_write_text
from srgan.run.plotting import plot_curves


class NonFiniteLossError(RuntimeError):
    """A loss or weight became NaN or inf; the message names the step, the terms and the last
    good checkpoint (none is ever written with non-finite weights)."""


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics file: JSON objects with their stage and step. Any other line (one
    cut short by a kill mid-write, valid JSON that is not a row after a hand edit, bytes that
    are not UTF-8) is skipped: one bad line must not stop every later resume. One warning
    sums up the skipped lines, however many there are."""
    if not path.is_file():
        return []
    rows, unreadable, not_rows = [], [], []
    for number, raw_line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw_line.decode()
        except UnicodeDecodeError:
            unreadable.append(number)
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("stage"), str) and _is_step(row):
            rows.append(row)
        elif line.strip():
            not_rows.append(number)
    _warn_skipped(path, unreadable, not_rows)
    return rows


def _warn_skipped(path: Path, unreadable: list[int], not_rows: list[int]) -> None:
    """One warning for all skipped lines: its text depends on the file only, so the default
    warning filter shows it once however often the file is read."""
    parts = []
    if unreadable:
        parts.append(
            f"{len(unreadable)} unreadable line(s) (not UTF-8 text; first: line {unreadable[0]})"
        )
    if not_rows:
        parts.append(
            f"{len(not_rows)} line(s) that are not metrics rows (JSON objects with their stage "
            f"and step; first: line {not_rows[0]})"
        )
    if parts:
        warnings.warn(f"{path}: skipped {' and '.join(parts)}", stacklevel=1)


def _is_step(row: dict) -> bool:
    step = row.get("step")
    return isinstance(step, int) and not isinstance(step, bool)


class MetricsLog:
    def __init__(self, path: Path, stage: str) -> None:
        self.path = path
        self.stage = stage
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
        metrics = {}
        for name, mean, total in zip(
            self._names, values.mean(0).tolist(), values.sum(0).tolist(), strict=True
        ):
            if name.startswith("skipped_"):  # 1.0 per step the fp16 loss scaler skipped
                metrics[f"fp16_skipped/{name[8:]}"] = int(total)
            else:
                metrics[f"loss/{name}"] = mean
        return metrics

    def write(self, step: int, epoch: float, metrics: dict) -> None:
        self.last_row = {"stage": self.stage, "step": step, "epoch": epoch, **metrics}
        self._append(self.last_row)

    def event(self, step: int, event: str, **details: object) -> None:
        """A row that is not a measurement, e.g. {"event": "config_changed", "changes": [...]};
        readers of the metrics skip rows with an "event" key."""
        self._append({"stage": self.stage, "step": step, "event": event, **details})

    def _append(self, row: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as file:
                file.write(json.dumps(row) + "\n")
        except OSError as error:
            raise WriteError(self.path, error) from error

    def stage_rows(self) -> list[dict]:
        return [row for row in read_metrics(self.path) if row.get("stage") == self.stage]

    def truncate_after(self, step: int) -> None:
        """On resume, drop this stage's rows logged after `step` (they will be redone); the
        last row left is the one a save at `step` records (e.g. `_final` of a stage whose run
        was killed between its last periodic checkpoint and `_final`)."""
        if not self.path.is_file():
            return
        rows = read_metrics(self.path)
        kept = [row for row in rows if row.get("stage") != self.stage or row["step"] <= step]
        measured = [row for row in kept if row["stage"] == self.stage and "event" not in row]
        self.last_row = measured[-1] if measured else {}
        text = "".join(json.dumps(row) + "\n" for row in kept)
        if text.encode() != self.path.read_bytes():
            # Replace, not rewrite in place: a kill now must not lose the rows of earlier steps.
            atomic_write_text(self.path, text)

    def archive(self, destination: Path) -> None:
        """Copy the metrics file into `destination`, then drop this stage's rows from it."""
        if self.path.is_file():
            try:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.path, destination / self.path.name)
            except OSError as error:
                raise WriteError(destination / self.path.name, error) from error
            self.truncate_after(-1)

    def warn_if_all_skipped(self, metrics: dict, steps: int) -> None:
        """fp16: the loss scaler skips steps whose gradients overflow. Say so when it skipped
        every step of an interval: such a run trains nothing."""
        for key, count in metrics.items():
            if key.startswith("fp16_skipped/") and count >= steps:
                print(
                    f"warning: the fp16 loss scaler skipped all {steps} {key[13:]} steps since "
                    "the last log line (gradients overflow): try runtime.precision bf16 or fp32",
                    file=sys.stderr,
                )

    def plot(self) -> None:
        path = self.path.parent / "curves.png"
        try:
            plot_curves(read_metrics(self.path), path)
        except OSError as error:
            raise WriteError(path, error) from error


# The loss terms the progress bar shows (all of them are in metrics.jsonl and curves.png).
PROGRESS_TERMS = {
    "loss/pixel": "mse",
    "loss/content": "content",
    "loss/adversarial": "adv",
    "loss/d_real": "D(real)",
    "loss/d_fake": "D(fake)",
}


def progress_text(metrics: dict, validation: dict) -> str:
    """A short progress line: the main loss terms, then the last validation's PSNR-Y beside
    bicubic's on the same images (a number alone says little)."""
    parts = [
        f"{label} {metrics[key]:.3g}"
        for key, label in PROGRESS_TERMS.items()
        if isinstance(metrics.get(key), float)
    ]
    if "valid/psnr_y" in validation:
        bicubic = validation.get("valid/bicubic_psnr_y")
        versus = f" (bicubic {bicubic:.2f})" if bicubic is not None else ""
        parts.append(f"valid {validation['valid/psnr_y']:.2f} dB{versus}")
    return ", ".join(parts)
