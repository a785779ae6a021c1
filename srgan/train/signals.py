"""SIGINT/SIGTERM handling for the training loop: finish the step, save, stop.

The first signal only sets a flag: the loop finishes its step (or abandons a validation in
progress), saves a checkpoint and raises `Interrupted`. A second signal stops at once.
Under DDP all ranks must stop after the same step, so they agree on the flag first.
"""

import signal
from pathlib import Path
from types import FrameType

import torch
import torch.distributed as dist

from srgan.train.runtime import Runtime

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """SIGINT/SIGTERM: the loop finished its step and saved `checkpoint` (after a second signal
    it stops at once and `checkpoint` is the last periodic one; None: nothing to resume from)."""

    def __init__(self, signal_number: int, checkpoint: Path | None, step: int) -> None:
        name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {name} after step {step}")
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number
        self.checkpoint = checkpoint


class StopNow(BaseException):
    """A second signal, raised from the handler wherever the main thread is; the loop turns
    it into `Interrupted` with its last checkpoint. BaseException: no `except Exception`
    on the way may swallow it."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


class SignalGuard:
    """Context manager: installs the handlers, restores the previous ones on exit."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        self._previous = {number: signal.signal(number, self._handle) for number in HANDLED}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received:
            raise StopNow(number)
        self.received.append(number)

    @property
    def signal_number(self) -> int:
        return self.received[0] if self.received else signal.SIGTERM

    def stop_requested(self) -> bool:
        """Whether this process got a signal (cheap: no communication)."""
        return bool(self.received)

    def agreed(self, runtime: Runtime) -> bool:
        """Whether any rank got a signal; every rank must call this at the same step."""
        stop = bool(self.received)
        if runtime.distributed and dist.is_initialized():
            flag = torch.tensor([float(stop)], device=runtime.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop
