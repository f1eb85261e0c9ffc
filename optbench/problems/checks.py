"""Option checks shared by the built-in problems: each bad value becomes one line naming it.

Every message has the shape ``<problem> <option>=<value> ...; expected/valid ...`` so that the CLI
can print it as is (``optbench: error: quadratic condition=0.5 is out of range; expected ...``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean


def choice(problem: str, option: str, value: Any, valid: Sequence[str]) -> str:
    """``value`` if it is one of ``valid``, else an error listing them (with a near miss)."""
    if value not in valid:
        hint = did_you_mean(str(value), valid)
        raise InvalidValueError(f"{problem} {option}={value!r} is not valid{hint}; valid: {', '.join(valid)}")
    return value


def whole(problem: str, option: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` if it is an int in ``[low, high]`` (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        raise InvalidValueError(f"{problem} {option}={value!r} is out of range; expected a whole number {span}")
    return value


def real(
    problem: str, option: str, value: Any, low: float = -math.inf, *, above: bool = False, below: float | None = None
) -> float:
    """``value`` as a finite float, ``>= low`` (``> low`` when ``above``) and ``< below`` when given."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if above else value >= low) and (below is None or value < below)
    if not ok:
        limits = [f"{'>' if above else '>='} {low:g}"] if low > -math.inf else []
        limits += [] if below is None else [f"< {below:g}"]
        raise InvalidValueError(
            f"{problem} {option}={value!r} is out of range; expected a finite number {' and '.join(limits)}".rstrip()
        )
    return float(value)


def point(problem: str, option: str, value: Any, size: int) -> tuple[float, ...]:
    """``value`` as ``size`` finite floats (a start point, say)."""
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != size or not all(math.isfinite(v) for v in numbers):
        raise InvalidValueError(f"{problem} {option}={value!r} is not valid; expected {size} finite numbers")
    return numbers
