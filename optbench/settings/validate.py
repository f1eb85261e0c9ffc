"""Limits and value checks, in one place: flags, sweep TOML files, matrices and baselines share them.

Each check takes the value as given (text from a flag, or a TOML/JSON value) and a label that
says where it came from (``--epochs``, ``sweep.toml: epochs``), and returns the typed value or
raises :class:`~optbench.errors.InvalidValueError` with one line. The same value gets the same
message whichever way it arrived.

Limits (raise them with the flag the message names):

- :data:`MAX_RUNS` runs in one sweep or tune grid (``--max-runs``), counted before anything is built;
- :data:`MAX_EPOCHS` epochs per run (``--max-epochs``);
- a run's memory (:func:`memory`): what its problem's options cost (the problem's ``cost``, from the
  options alone), at most :data:`MEMORY_SHARE` of this machine's memory (``--max-memory GIB``, which
  sets ``OPTBENCH_MAX_MEMORY`` for the command and the processes it starts), checked before anything
  is built, and for the built-in problems before torch is imported (:mod:`optbench.cli.preflight`);
- seeds from 0 to :data:`MAX_SEED`, and every other whole number up to :data:`MAX_INT` (the table
  stores them as 64-bit signed integers).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from optbench.errors import InvalidValueError

_INTEGER = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: int() also takes "\u0661\u0662" and "1_000"
# A number as a person types it: int() and float() also take "1_0" (10) and "\u0660.\u0661" (0.1 in
# Arabic-Indic digits), typos that would become runs. Infinities and NaN are spelt out (and
# refused where a setting needs a finite value).
_NUMBER = re.compile(r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.IGNORECASE)


def plain_number(text: str) -> bool:
    """Whether ``text`` is a number in plain ASCII (digits, a point, an exponent): no ``_``, no other digits."""
    return bool(_NUMBER.match(text.strip()))


MAX_RUNS = 100_000
MAX_EPOCHS = 100_000
MAX_SEED = 2**63 - 1
MAX_INT = 2**63 - 1  # any whole-number setting: the table stores 64-bit signed integers


def whole(
    value: Any,
    label: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    example: str = "10",
    limit: int | None = None,
) -> int:
    """A whole number ``>= minimum`` (and ``<= maximum``), from an int or its text; ``limit`` is what
    the code can hold (:data:`MAX_INT`), refused with its own message."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        number = int(value.strip())
    if number is None:
        raise InvalidValueError(f"{label} {shown(value)} is not a whole number; expected e.g. {example}")
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidValueError(f"{label} {shown(value)} is out of range; expected a whole number {bounds}")
    if limit is not None and number > limit:
        raise InvalidValueError(
            f"{label} {shown(value)} is too large; the largest whole number a results table holds is {limit}"
        )
    return number


def shown(value: Any) -> str:
    """A value as messages show it, the same whether it came as a flag's text or a file's number:
    ``3`` and ``"3"`` both as 3, other text quoted."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
        return value.strip()
    return repr(value)


def epochs(value: Any, label: str = "--epochs", limit: int | None = MAX_EPOCHS) -> int:
    number = whole(value, label)
    if limit is not None and number > limit:
        raise InvalidValueError(
            f"{label} {number} is above the limit of {limit} epochs per run; pass --max-epochs {number} to allow it"
        )
    return number


def seed(value: Any, label: str = "--seed") -> int:
    return whole(value, label, minimum=0, maximum=MAX_SEED, example="0")


def optional_whole(value: Any, label: str, minimum: int = 1) -> int | None:
    return None if value is None else whole(value, label, minimum=minimum)


def lr(value: Any, label: str = "--lr") -> float:
    """A learning rate: a finite number > 0."""
    if isinstance(value, bool):
        raise InvalidValueError(f"{label} {value!r} is not a number; expected a positive number such as 0.1")
    try:
        if isinstance(value, str) and not plain_number(value):
            raise ValueError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"{label} {shown(value)} is not a number; expected a positive number such as 0.1"
        ) from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidValueError(
            f"{label} {shown(value)} is out of range; expected a positive finite number such as 0.1"
        )
    return number


def number(value: Any, label: str, *, minimum: float = 0.0) -> float:
    """A finite number ``>= minimum`` (a tolerance, a target)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(f"{label} {value!r} is not a number; expected a number >= {minimum:g}")
    if not math.isfinite(value) or value < minimum:
        raise InvalidValueError(f"{label} {value!r} is out of range; expected a finite number >= {minimum:g}")
    return float(value)


def flag(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueError(f"{label} {value!r} is not true or false")
    return value


def runs(count: int, limit: int | None = MAX_RUNS, what: str = "the grid") -> int:
    """A planned number of runs within ``limit`` (counted before anything is built)."""
    if count == 0:
        raise InvalidValueError(f"{what} has no runs; give at least one value for each setting")
    if limit is not None and count > limit:
        raise InvalidValueError(
            f"{what} has {count:,} runs, above the limit of {limit:,}; pass --max-runs {count} to allow it"
        )
    return count


def jobs(requested: int, useful: int, cpus: int | None) -> int:
    """Worker processes worth starting: no more than the groups of runs, nor the CPUs."""
    return max(1, min(requested, useful, cpus or requested))


MEMORY_SHARE = 0.5  # of the machine's physical memory: the most one run may be estimated to need
MAX_MEMORY = "OPTBENCH_MAX_MEMORY"  # GiB; --max-memory sets it
GIB = 2**30


def memory_limit() -> tuple[float, str]:
    """The most bytes one run may need, and where that limit comes from (in words)."""
    text = os.environ.get(MAX_MEMORY, "").strip()
    if text:
        return memory_gib(text, MAX_MEMORY) * GIB, f"--max-memory {text}"
    total = machine_memory()
    if total is None:
        return math.inf, "this machine's memory is unknown"
    return MEMORY_SHARE * total, f"{MEMORY_SHARE:.0%} of this machine's {total / GIB:.3g} GiB"


def memory_gib(value: Any, label: str = "--max-memory") -> float:
    """A memory limit in GiB: a positive finite number."""
    return lr(value, label)


def machine_memory() -> int | None:
    """Physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_batch(*choices: int | None) -> int | None:
    """A run's batch size: the first of ``choices`` that is set, in the order a run reads them (its
    own, its optimizer's default, its problem's default: :func:`optbench.core.spec.resolve_batch_size`);
    None: full batch."""
    return next((choice for choice in choices if choice), None)


def memory(entry: Any, options: dict[str, Any], given: dict[str, Any], batch_size: int | None, label: str) -> None:
    """Refuse, before it is built, a problem whose options cost more memory than :func:`memory_limit`:
    one line naming the options given (``label``: where they came from) and the estimate at a step of
    ``batch_size`` rows (the run's, else its optimizer's), else of the problem's own default batch
    (:func:`default_batch`; None: full batch). A problem that declares no cost, or cannot read these
    options (its constructor will say why), passes. ``entry`` may be the class itself or, before torch
    loads, its source (:meth:`optbench.registry.Registry.declared`)."""
    cost_of = getattr(entry.target, "cost", None)
    if not callable(cost_of):
        return
    batch = default_batch(batch_size, getattr(entry, "batch_size", None))
    try:
        cost = cost_of(**options)
        needed = int(cost.bytes(batch))
    except Exception:  # a value of the wrong kind: the constructor's message is the one to show
        return
    limit, source = memory_limit()
    if needed <= limit:
        return
    shown_options = " ".join(f"{k}={given[k]}" for k in given) or "(its defaults)"
    step = cost.step_bytes(batch)
    at = "full batch" if batch is None else f"{batch} rows"
    building = getattr(cost, "building", 0)
    built = f", {8 * building / GIB:.3g} GiB more while it is built" if building and 8 * building > step else ""
    raise InvalidValueError(
        f"{label} {shown_options}: problem {entry.name!r} would need about {needed / GIB:.3g} GiB "
        f"({cost.parameters:.3g} parameters, {cost.data:.3g} data elements, {step / GIB:.3g} GiB a step of {at}"
        f"{built}), above the limit of {limit / GIB:.3g} GiB ({source}); "
        f"pass --max-memory {math.ceil(needed / GIB)} to allow it"
    )


def registered_name(kind: str, name: Any, where: str, allow_import_paths: bool) -> str:
    """A problem or optimizer named in a file (a sweep TOML, a matrix, a baseline): a registered name.

    A file must never run code the user did not ask for on the command line, so an import path
    (``package.module:Name``, which imports that module) is refused unless the command line allows
    it (``--allow-import-paths``). Registered names (built-ins, installed entry points, ``--plugin``
    files) are fine. Unknown names get the same one line as a flag's.
    """
    from optbench.registry import OPTIMIZERS, PROBLEMS
    from optbench.registry.composite import bounded

    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"{where}: {kind} {name!r} is not a name; expected e.g. {_EXAMPLE[kind]!r}")
    registry = PROBLEMS if kind == "problem" else OPTIMIZERS
    bounded(name, kind)  # a name's size first: a message never repeats 10,000 nested wrappers
    if ":" in name and not allow_import_paths:
        raise InvalidValueError(
            f"{where}: {kind} {name!r} is an import path; a file may name only registered {kind}s "
            "(pass --allow-import-paths to let it import modules)"
        )
    registry.require_known([name])  # torch-free: the class is imported when it is built
    return name


_EXAMPLE = {"problem": "linreg", "optimizer": "gd"}
