"""SIGINT/SIGTERM handling for the training loop: finish the step, save, stop.

The first signal only sets a flag: the loop finishes its step (or abandons a validation in
progress), saves a checkpoint and raises `Interrupted`. A second signal stops at once.
Under DDP all ranks must stop after the same step, so they agree on the flag first.
Outside the loop (start-up) there is nothing to save: a signal raises `StoppedBySignal`.
"""

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import torch
import torch.distributed as dist

from srgan.run.runtime import Runtime

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


class StoppedBySignal(KeyboardInterrupt):
    """SIGINT/SIGTERM outside the training loop, raised wherever the main thread is by the
    handler `stop_on_signals` installs. A KeyboardInterrupt: `except Exception` lets it pass."""

    def __init__(self, signal_number: int) -> None:
        name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {name} during start-up, before the first step")
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number


# What `_raise_stopped` raised for: code on the way may turn the exception into another and
# handle that (a pybind11 module's import turns it into ImportError), or Python may print and
# drop it (raised in a finalizer), so the guard checks here.
_stops_raised: list[int] = []


def _raise_stopped(number: int, frame: FrameType | None) -> None:
    _stops_raised.append(number)
    raise StoppedBySignal(number)


def _quiet_stops(hook: Callable) -> Callable:
    """`hook` (a sys.unraisablehook) less the stops, which the guard raises again."""

    def quiet_stops(unraisable: "sys.UnraisableHookArgs") -> None:
        if not isinstance(unraisable.exc_value, StoppedBySignal):
            hook(unraisable)

    return quiet_stops


def stop_on_signals() -> None:
    """From now on SIGINT/SIGTERM raise `StoppedBySignal` (the loop's guard overrides this)."""
    _stops_raised.clear()
    if getattr(sys.unraisablehook, "__name__", None) != "quiet_stops":
        sys.unraisablehook = _quiet_stops(sys.unraisablehook)
    for number in HANDLED:
        signal.signal(number, _raise_stopped)


def stop_behind(error: BaseException) -> StoppedBySignal | None:
    """The `StoppedBySignal` that `error` was raised from or during, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, StoppedBySignal):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def ignore_signals() -> None:
    """For a process on its way out: a further signal must not cut its exit short."""
    for number in HANDLED:
        signal.signal(number, signal.SIG_IGN)


class SignalGuard:
    """Context manager: installs the handlers, restores the previous ones on exit."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        if _stops_raised:  # a stop during start-up that did not reach the top
            raise StoppedBySignal(_stops_raised[0])
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
