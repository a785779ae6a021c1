"""Round axis ticks for the pictures drawn with PIL: the training curves and the
perception-distortion picture."""

import math


def linear_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Evenly spaced round ticks (steps of 1, 2 or 5 times a power of ten), about `target`
    intervals, the first at or below `low` and the last at or above `high`."""
    if high - low <= 1e-12 * max(abs(low), abs(high), 1.0):
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw_step = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step * 0.999)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [index * step for index in range(first, last + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis covering [low, high] (both > 0): 1, 2 and 5 times each power of ten
    over up to three decades, powers of ten alone beyond that."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    mantissas = (1, 2, 5) if last - first <= 3 else (1,)
    candidates = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
    below = [tick for tick in candidates if tick <= low * (1 + 1e-9)]
    above = [tick for tick in candidates if tick >= high * (1 - 1e-9)]
    return [tick for tick in candidates if below[-1] <= tick <= above[0]]
