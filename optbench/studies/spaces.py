"""Search spaces: what a fair bench tunes for each optimizer, declared once with the optimizer.

A space maps hyperparameters to ranges, as text: ``"log:1e-4:1"`` (log scale) or ``"0.8:0.99"``
(linear). A name ``"betas.0"`` is element 0 of a tuple hyperparameter (Adam's beta1; the other
elements keep their defaults). The built-in optimizers ship theirs (``optbench/registry/builtins.py``);
a plugin declares its own (``register_optimizer(..., space={...})``); a suite may replace or add
any of an optimizer's dimensions (``[spaces.NAME]``). An optimizer without one searches the
learning rate over the suite's range.

Every optimizer gets the same number of trials (the suite's ``trials``), drawn quasi-randomly from
its space: a scrambled Halton sequence (:class:`scipy.stats.qmc.Halton`, seeded, so the same suite
draws the same points), or on a grid (``search = "grid"``: exactly ``trials`` points, the values
per dimension as even as its factors allow, :func:`sizes`). One dimension is a grid either way.

>>> [round(p["lr"], 4) for p in points(parse({"lr": "log:0.01:1"}, "s"), 3, "halton")]
[0.01, 0.1, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optbench.errors import InvalidValueError

METHODS = ("halton", "grid")


@dataclass(frozen=True)
class Dim:
    """One hyperparameter's range: ``name`` (a keyword, or ``"betas.0"``), ``low`` to ``high``, ``log`` scale."""

    name: str
    low: float
    high: float
    log: bool

    def at(self, u: float) -> float:
        """The value at ``u`` in [0, 1] of the range."""
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def __str__(self) -> str:
        return f"{self.name} {'log ' if self.log else ''}{self.low:g}-{self.high:g}"


def parse(space: Mapping[str, Any], label: str) -> list[Dim]:
    """``{"lr": "log:1e-4:1"}`` -> dims; a malformed range is one line naming ``label`` and the key."""
    dims = []
    for name, text in space.items():
        parts = str(text).split(":")
        log = parts[0] == "log"
        numbers = parts[1:] if log else parts
        try:
            low, high = (float(v) for v in numbers)
        except ValueError:
            raise InvalidValueError(
                f"{label}: {name} = {text!r} is not a range; expected 'log:LOW:HIGH' or 'LOW:HIGH', e.g. 'log:1e-4:1'"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high and (low > 0 or not log)):
            raise InvalidValueError(f"{label}: {name} = {text!r} needs LOW < HIGH (and LOW > 0 on a log scale)")
        dims.append(Dim(str(name), low, high, log))
    return dims


def points(dims: Sequence[Dim], trials: int, method: str = "halton", seed: int = 0) -> list[dict[str, float]]:
    """``trials`` points of the space: a scrambled Halton sequence (seeded) or a grid; one dimension
    is an even grid over its range (ends included) either way."""
    if len(dims) == 1 or method == "grid":
        grid: list[list[float]] = [[]]
        for per in sizes(trials, len(dims)):
            ticks = [i / (per - 1) if per > 1 else 0.5 for i in range(per)]
            grid = [[*g, t] for g in grid for t in ticks]
        unit = grid
    else:
        from scipy.stats import qmc

        unit = qmc.Halton(d=len(dims), scramble=True, seed=seed).random(trials).tolist()
    return [{d.name: d.at(u) for d, u in zip(dims, row, strict=True)} for row in unit]


def sizes(trials: int, dims: int) -> list[int]:
    """Values per dimension of a grid of exactly ``trials`` points, as even as the factors allow, the
    largest first (the learning rate's): 16 over 3 -> [4, 2, 2], 12 over 2 -> [4, 3], 7 over 2 -> [7, 1].

    >>> sizes(16, 3), sizes(12, 2), sizes(8, 1)
    ([4, 2, 2], [4, 3], [8])
    """
    out, left = [], trials
    for k in range(dims, 0, -1):
        target = left ** (1 / k)
        divisors = [d for d in range(1, left + 1) if left % d == 0]
        pick = min(divisors, key=lambda d: (abs(math.log(d) - math.log(target)), -d))
        out.append(pick)
        left //= pick
    return sorted(out, reverse=True)


def hyperparameters(point: Mapping[str, float], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A point as an optimizer's keywords: ``betas.0`` sets element 0 of ``betas`` (others: defaults)."""
    out: dict[str, Any] = {}
    for name, value in point.items():
        key, _, index = name.rpartition(".")  # a composite's "torch-adamw.betas.0": element 0 of torch-adamw.betas
        if not index.isdigit():
            out[name] = value
            continue
        base = list(out.get(key, defaults.get(key, ())))
        if int(index) >= len(base):
            raise InvalidValueError(f"space: {name!r} names no element of {key} (its default is {defaults.get(key)!r})")
        base[int(index)] = value
        out[key] = tuple(base)
    return out


def space_of(name: str, override: Mapping[str, Any] | None, lr: Sequence[float]) -> list[Dim]:
    """An optimizer's space: its registry entry's (a built-in's, a plugin's), else the learning rate
    over the suite's range (log), as for each part of a composite; the suite's ``override`` replaces
    or adds dimensions of it."""
    from optbench.registry import OPTIMIZERS

    entry = OPTIMIZERS.get(name)
    suite_range = f"log:{min(lr):g}:{max(lr):g}"
    declared = dict(entry.space or {})
    for component in getattr(entry, "parts", {}):  # a hybrid's or wrapper's part without a space: its lr
        key = entry.key(component, "lr")
        if key not in declared and "lr" in entry.parts[component].hyperparameters():
            declared[key] = suite_range
    return parse({**(declared or {"lr": suite_range}), **(override or {})}, f"space of {name}")


def text(dims: Sequence[Dim]) -> str:
    return ", ".join(map(str, dims))
