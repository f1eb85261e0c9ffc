"""Search spaces: what a fair bench tunes for each optimizer, by one rule for every optimizer.

A space maps hyperparameters to ranges, as text: ``"log:1e-4:1"`` (log scale), ``"log1m:0.8:0.99"``
(log scale of 1 - value: momentum, beta1) or ``"0.8:0.99"`` (linear). A name ``"betas.0"`` is element
0 of a tuple hyperparameter (Adam's beta1; the other elements keep their defaults).

Where a space comes from (:func:`resolve`), first match first:

1. declared with the optimizer: ``register_optimizer(..., space={...})``;
2. a class attribute ``optbench_space = {...}`` (an entry-point plugin needs no optbench import),
   inherited like any attribute;
3. inherited from a registered class it subclasses that declares one;
4. the :data:`CONVENTIONAL` table: each hyperparameter named there that the optimizer's defaults use
   (the learning rate always; momentum, beta1, weight decay where the default is not 0). So Adam,
   ``torch.optim:Adam`` and a renamed subclass of it get one space, and plain SGD (momentum 0) is
   not turned into SGD with momentum by its tuning.

A suite may replace or add any dimension (``[spaces.NAME]``). A hybrid's or wrapper's parts follow
the same rule each, keyed as the composite's settings.

Exploration draws the suite's ``trials`` points of each space: a scrambled Halton sequence (seeded by
the tuning study, :class:`scipy.stats.qmc.Halton`) or a grid (``search = "grid"``: exactly ``trials``
points, the values per dimension as even as its factors allow, :func:`sizes`). One dimension is a grid
either way; the studies of a suite interleave their grids.

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
SCALES = ("log", "log1m", "linear")

# The ranges careful comparisons tune, by hyperparameter name (AlgoPerf's and Wen et al.'s baselines tune
# these). The learning rate's range is the suite's ``lr``; every other name counts where the optimizer's
# default uses it (not 0).
CONVENTIONAL = {
    "lr": None,
    "momentum": "log1m:0.8:0.99",
    "betas.0": "log1m:0.8:0.95",
    "weight_decay": "log:1e-4:0.3",
}
LR_LIMITS = (1e-8, 1e4)  # refinement stops here: beyond, a learning rate means a wrong parametrisation
# The largest magnitude a range may reach: a setting multiplies float32 tensors (whose largest value is
# about 3.4e38), so a range past this would overflow them, or the range's own arithmetic, long before
# it meant anything.
MAGNITUDE = 1e30


@dataclass(frozen=True)
class Dim:
    """One hyperparameter's range: ``name`` (a keyword, or ``"betas.0"``), ``low`` to ``high`` on a
    ``scale``: ``log``, ``log1m`` (log of 1 - value) or ``linear``."""

    name: str
    low: float
    high: float
    scale: str = "linear"

    def _to(self, value: float) -> float:
        return math.log(value) if self.scale == "log" else math.log(1 - value) if self.scale == "log1m" else value

    def at(self, u: float) -> float:
        """The value at ``u`` of the range (0: low, 1: high); beyond [0, 1] the scale continues."""
        a, b = self._to(self.low), self._to(self.high)
        x = a + u * (b - a)
        return math.exp(x) if self.scale == "log" else 1 - math.exp(x) if self.scale == "log1m" else x

    @property
    def fixed(self) -> bool:
        """A range of one value (``"log:0.1:0.1"``, a suite's lr grid of one value): never refined."""
        return self.low == self.high

    def allows(self, value: float) -> bool:
        """Whether a value past the range is still a setting: a learning rate within :data:`LR_LIMITS`,
        a momentum in [0, 1), a linear range that starts at 0 or above stays so."""
        if not math.isfinite(value):
            return False
        if self.name == "lr" or self.name.endswith(".lr"):
            return LR_LIMITS[0] <= value <= LR_LIMITS[1]
        if self.scale == "log1m":
            return 0 <= value < 1
        return value > 0 if self.scale == "log" else value >= 0 or self.low < 0

    def __str__(self) -> str:
        scale = "" if self.scale == "linear" else f"{self.scale} "
        return f"{self.name} {scale}{self.low:g}-{self.high:g}"


def parse(space: Mapping[str, Any], label: str) -> list[Dim]:
    """``{"lr": "log:1e-4:1"}`` -> dims; a malformed range is one line naming ``label`` and the key."""
    dims = []
    for name, text in space.items():
        parts = str(text).split(":")
        scale = parts[0] if parts[0] in SCALES else "linear"
        numbers = parts[1:] if parts[0] in SCALES else parts
        try:
            low, high = (float(v) for v in numbers)
        except ValueError:
            raise InvalidValueError(
                f"{label}: {name} = {text!r} is not a range; expected 'log:LOW:HIGH', 'log1m:LOW:HIGH' (1 - value "
                "on a log scale, for momenta) or 'LOW:HIGH', e.g. 'log:1e-4:1'"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise InvalidValueError(f"{label}: {name} = {text!r} needs finite LOW < HIGH (LOW = HIGH: a fixed value)")
        if max(abs(low), abs(high)) > MAGNITUDE:
            raise InvalidValueError(
                f"{label}: {name} = {text!r} is out of range; its ends must lie within +-{MAGNITUDE:g} "
                "(a setting multiplies float32 tensors)"
            )
        if scale == "log" and low <= 0:
            raise InvalidValueError(f"{label}: {name} = {text!r} needs LOW > 0 on a log scale")
        if scale == "log1m" and not (low >= 0 and high < 1):
            raise InvalidValueError(f"{label}: {name} = {text!r} needs 0 <= LOW and HIGH < 1 on a log1m scale")
        if (name == "lr" or str(name).endswith(".lr")) and not (LR_LIMITS[0] <= low and high <= LR_LIMITS[1]):
            raise InvalidValueError(
                f"{label}: {name} = {text!r} is out of range; a learning rate's range lies within "
                f"{LR_LIMITS[0]:g} to {LR_LIMITS[1]:g}, e.g. 'log:1e-4:1'"
            )
        dims.append(Dim(str(name), low, high, scale))
    return dims


def points(
    dims: Sequence[Dim], trials: int, method: str = "halton", study: int = 0, studies: int = 1
) -> list[dict[str, float]]:
    """``trials`` points of the space for tuning study ``study`` of ``studies``: a scrambled Halton
    sequence (seeded by the study) or a grid. One dimension is an even grid either way: over the range,
    ends included, for a single study; interleaved for several (study ``s`` takes the offsets
    ``(i + (s + 1/2) / studies) / trials``, so the studies together make one even grid)."""
    return [
        {d.name: d.at(u) for d, u in zip(dims, row, strict=True)}
        for row in unit_points(dims, trials, method, study, studies)
    ]


def unit_points(dims: Sequence[Dim], trials: int, method: str, study: int = 0, studies: int = 1) -> list[list[float]]:
    """:func:`points` in unit coordinates (0 and 1: each range's ends)."""
    if len(dims) == 1 or method == "grid":
        grid: list[list[float]] = [[]]
        for per in sizes(trials, len(dims)):
            if studies > 1:
                ticks = [(i + (study + 0.5) / studies) / per for i in range(per)]
            else:
                ticks = [i / (per - 1) if per > 1 else 0.5 for i in range(per)]
            grid = [[*g, t] for g in grid for t in ticks]
        return grid
    from scipy.stats import qmc

    return qmc.Halton(d=len(dims), scramble=True, seed=study).random(trials).tolist()


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
        default = out.get(key, defaults.get(key, ()))
        if not isinstance(default, list | tuple):  # "lr.0": lr is one number, it has no elements
            raise InvalidValueError(
                f"space: {name!r} names an element of {key}, but {key} is {_what(default)}, not a sequence: write {key}"
            )
        base = list(default)
        if int(index) >= len(base):
            raise InvalidValueError(f"space: {name!r} names no element of {key} (its default is {defaults.get(key)!r})")
        base[int(index)] = value
        out[key] = tuple(base)
    return out


def _what(value: Any) -> str:
    """A setting's default in words, for a message: ``0.001`` -> "a number"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    from optbench.registry import REQUIRED

    return "a setting without a default" if value is REQUIRED else repr(value)


def space_of(name: str, override: Mapping[str, Any] | None, lr: Sequence[float]) -> list[Dim]:
    """An optimizer's space (:func:`resolve`), the suite's ``override`` replacing or adding dimensions."""
    return resolve(name, override, lr)[0]


def resolve(name: str, override: Mapping[str, Any] | None, lr: Sequence[float]) -> tuple[list[Dim], str]:
    """An optimizer's space and where it came from (in words): see the module's rule. ``lr`` is the
    suite's learning-rate range, the range of every ``lr`` that is not declared otherwise."""
    from optbench.registry import OPTIMIZERS

    entry = OPTIMIZERS.get(name)
    suite_range = f"log:{min(lr):g}:{max(lr):g}"
    parts = getattr(entry, "parts", None)
    if parts:  # a hybrid or a wrapper: each part by the same rule, keyed as the composite's settings
        space, sources = {}, []
        for component, part in parts.items():
            own, source = _own_space(part, suite_range)
            space |= {_part_key(entry, component, k): v for k, v in own.items()}
            sources.append(f"{component}: {source}")
        found = "; ".join(sources)
    else:
        space, found = _own_space(entry, suite_range)
    if override:
        found += f"; the suite sets {', '.join(override)}"
    return parse({**space, **(override or {})}, f"space of {name}"), found


def _part_key(entry: Any, component: str, key: str) -> str:
    name, _, index = key.partition(".")
    setting = entry.key(component, name)
    return f"{setting}.{index}" if index else setting


def _own_space(entry: Any, suite_range: str) -> tuple[dict[str, str], str]:
    """One (non-composite) entry's space and its source."""
    from optbench.registry import OPTIMIZERS

    if entry.space:
        return dict(entry.space), f"declared with {entry.name}"
    target = entry.target
    declared = getattr(target, "optbench_space", None)
    if isinstance(declared, Mapping) and declared:
        owner = next((c for c in getattr(target, "__mro__", ()) if "optbench_space" in vars(c)), target)
        return {str(k): str(v) for k, v in declared.items()}, f"{getattr(owner, '__name__', owner)}.optbench_space"
    for base in getattr(target, "__mro__", ())[1:]:
        parent = next((e for e in OPTIMIZERS.loaded() if e.target is base and e.space), None)
        if parent is not None:
            return dict(parent.space), f"inherited from {parent.name}"
    defaults = dict(entry.hyperparameters())
    if "lr" not in defaults and entry.accepts_any_keyword():  # a class written with **kwargs is given an lr too
        defaults["lr"] = None
    return conventional(defaults, suite_range), "the conventional ranges"


def conventional(defaults: Mapping[str, Any], suite_range: str) -> dict[str, str]:
    """The :data:`CONVENTIONAL` dimensions that ``defaults`` use: the lr (the suite's range) wherever it
    is a setting, any other name where its default is a number other than 0.

    >>> conventional({"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0}, "log:1e-4:1")
    {'lr': 'log:1e-4:1', 'betas.0': 'log1m:0.8:0.95'}
    >>> conventional({"lr": 0.1, "momentum": 0, "dampening": 0}, "log:1e-4:1")
    {'lr': 'log:1e-4:1'}
    """
    out = {}
    for name, text in CONVENTIONAL.items():
        key, _, index = name.partition(".")
        value = defaults.get(key)
        if index and isinstance(value, list | tuple):
            value = value[int(index)] if int(index) < len(value) else None
        if name == "lr":
            if "lr" in defaults:  # a required lr too
                out[name] = suite_range
        elif isinstance(value, int | float) and not isinstance(value, bool) and value != 0:
            out[name] = text
    return out


def text(dims: Sequence[Dim]) -> str:
    return ", ".join(map(str, dims))
