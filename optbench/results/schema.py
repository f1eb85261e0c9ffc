"""The results table's schema: what every column is, written down once.

Every column of a results table has one of three roles:

- **identity**: which run a row belongs to: ``run_key`` (a hash of the run's resolved settings,
  its seed and its phase), ``phase`` (``tune`` or ``eval``, from ``optbench tune``; ``budget``, a
  bench's baselines rerun over a ladder of budgets for its speedups) and ``seed``.
- **setting**: how the run was configured: ``problem``, ``optimizer``, ``lr`` and every other
  hyperparameter, ``problem_<option>``, ``batch_size``, ``epochs``, ``eval_every``, ``schedule``,
  ``warmup_steps``, ``device``. Constant along a run; runs that differ only in their seed share
  every setting (one *configuration*).
- **measurement**: what was recorded along the run: ``epoch``, ``step``, ``grad_evals`` (gradient
  evaluations so far: one a step, plus each time the optimizer's closure recomputed them), ``tokens``
  (where the problem counts them, a language model: the tokens trained on so far), ``loss``, ``optimum``,
  every metric the problem reports (``test_loss``, ``test_accuracy``, a plugin's own), ``time_s``,
  ``batch_runs``, ``threads`` (torch's intra-op threads ``time_s`` was measured under: 0 where
  nothing was timed; :mod:`optbench.core.threads`), ``status``, ``message``.

The code that makes a table knows its roles (the runner knows which columns it wrote as
settings; whatever else it recorded is measured) and keeps them in ``DataFrame.attrs``; a parquet
file keeps them in its metadata (key ``optbench``). A table with no stored roles (a CSV file, or
a concatenation that dropped ``attrs``) is read by one rule, :func:`rule_roles`, which optbench's
own CSV files satisfy by their column order.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError
from optbench.settings import declared

IDENTITY, SETTING, MEASUREMENT = "identity", "setting", "measurement"
ROLES = (IDENTITY, SETTING, MEASUREMENT)
IDENTITY_COLUMNS = ("run_key", "phase", "seed")
BUDGET_PHASE = "budget"  # a bench's budget ladder (optbench.studies.speedup): read by its leaderboard, not drawn
CORE_SETTINGS = ("problem", "optimizer", "lr", *declared.NAMES)
CORE_MEASUREMENTS = (
    *("epoch", "step", "grad_evals", "tokens", "loss", "optimum", "time_s", "batch_runs", "threads"),
    *("status", "message"),
)
BUILT_IN_METRICS = (
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
)  # what the built-in problems record (classification)
# What each column the core writes means: the documentation's columns page is generated from this and
# from the run settings' own help (optbench.settings.declared); a test fails where a column has neither.
MEANINGS = {
    "run_key": "a hash of the run's *resolved* settings (defaults included, values canonical: `0.1` = `1e-1`, "
    "`0` = `0.0`, any option order), its seed and its phase; the same run always gets the same key (sweeps and "
    "tune). One spelling is not resolved: `--batch-size` equal to the whole training set is keyed apart from the "
    "full-batch default (the size is known only once the problem is built)",
    "phase": "`tune` or `eval` (`optbench tune`); `budget`: a bench's baselines rerun over a ladder of budgets "
    "for its speedups",
    "seed": "seeds the data, the initialisation and the shuffling",
    "problem": "the problem's registered name (or import path)",
    "optimizer": "the optimizer's registered name, canonical (a hybrid's or a wrapper's without spaces)",
    "lr": "the learning rate, resolved (the optimizer's default where none was given); every other "
    'hyperparameter is a column of its own, resolved too: tuples as `"0.9,0.999"`, None as missing, a '
    "function or class as `module.qualname`, another object without a stable text as `<module.Type object>`, "
    "never a memory address; a composite's parts as `COMPONENT.KEY`. Every problem option is a column "
    "`problem_<option>` (`problem_n`, `problem_shape`)",
    "epoch": "passes over the data (fractional between epoch ends)",
    "step": "optimizer updates so far",
    "grad_evals": "gradient evaluations so far: one a step, plus each time the optimizer's closure recomputed them",
    "tokens": "training tokens seen so far, where the problem counts them (a language model: sequences x their "
    "length); a bench's speedups for such problems are in tokens",
    "loss": "the objective: mean loss over the whole training set after `step` updates",
    "optimum": "f* where the problem knows it, else missing",
    "time_s": "seconds of optimizer work so far of this run on its own (see *Stacking, seconds and threads*); "
    "evaluation excluded",
    "batch_runs": "how many runs were stacked with it (1: trained alone)",
    "threads": "torch intra-op threads `time_s` was measured under (0 for an error row)",
    "status": "`ok`, `diverged` (a NaN/inf loss stopped the run; the trajectory up to it is kept) or `error`",
    "message": "why a run diverged or errored (the exception's message), or that a stacked group was trained alone",
    "val_loss": "the loss on a validation split of the training rows (a problem's `val_fraction` option)",
    "val_accuracy": "the accuracy on that validation split",
    "test_loss": "the loss on the problem's held-out test rows",
    "test_accuracy": "the accuracy on the held-out test rows",
}
SCHEMA_VERSION = 1
ATTRS_KEY = "optbench"  # in DataFrame.attrs and in a parquet file's metadata (as bytes)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")  # `<function f at 0x7f..>`: a text that changes every process


# --- roles


def rule_roles(df: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, str]:
    """The roles of ``df``'s ``columns`` (default: all) when none are stored: by name, by data, by position.

    ``run_key``, ``phase`` and ``seed`` are identity; the core settings and any ``problem_<option>``
    are settings; the core measurements and the built-in metrics are measurements. Any other column is a measurement (a
    problem's metric) when its value changes within a run (a setting never does) or when it stands
    between ``epoch`` and ``message``; else a setting (a hyperparameter). A run is the rows of one
    ``run_key``, or, without that column, a block of rows from one ``step`` 0 to the next. optbench
    writes its CSV files in that order, so their roles come back by position alone.
    """
    names = list(df.columns)
    first = names.index("epoch") if "epoch" in names else len(names)
    last = names.index("message") if "message" in names else len(names)
    out = {}
    changing: set[str] | None = None
    for column in names if columns is None else columns:
        i = names.index(column)
        if column in IDENTITY_COLUMNS:
            out[column] = IDENTITY
        elif column in CORE_SETTINGS or column.startswith("problem_"):
            out[column] = SETTING
        elif column in CORE_MEASUREMENTS or column in BUILT_IN_METRICS or first < i < last:
            out[column] = MEASUREMENT
        else:
            changing = _changing_within_runs(df) if changing is None else changing
            out[column] = MEASUREMENT if column in changing else SETTING
    return out


def _changing_within_runs(df: pd.DataFrame) -> set[str]:
    """Columns whose value changes within some run."""
    if not len(df):
        return set()
    if "run_key" in df:
        runs = df["run_key"]
    elif "step" in df:
        runs = (df["step"] == 0).cumsum()
    else:
        return set()
    known = (*IDENTITY_COLUMNS, *CORE_SETTINGS, *CORE_MEASUREMENTS, *BUILT_IN_METRICS)
    others = [c for c in df.columns if c not in known]
    if not others:
        return set()
    counts = df[others].groupby(runs.to_numpy(), sort=False).nunique(dropna=False).max()
    return {c for c, n in counts.items() if n > 1}


class _Entry(dict):
    """optbench's entry in ``DataFrame.attrs``. pandas deep-copies ``attrs`` after every operation;
    the entry holds only strings and dicts of strings, so copying it one level down is a deep copy,
    and a report's tens of thousands of small pandas operations stop paying for ``copy.deepcopy``."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Entry:
        return _Entry({k: dict(v) if isinstance(v, dict) else v for k, v in self.items()})


def roles(df: pd.DataFrame) -> dict[str, str]:
    """Every column's role: the stored one (``df.attrs``), else :func:`rule_roles`'s."""
    stored = stored_roles(df)
    missing = [c for c in df.columns if c not in stored]
    rule = rule_roles(df, missing) if missing else {}
    return {c: stored[c] if c in stored else rule[c] for c in df.columns}


def stored_roles(df: pd.DataFrame) -> dict[str, str]:
    return dict(df.attrs.get(ATTRS_KEY, {}).get("roles", {}))


def columns_with(df: pd.DataFrame, role: str) -> list[str]:
    return [c for c, r in roles(df).items() if r == role]


def with_roles(df: pd.DataFrame, known: Mapping[str, str]) -> pd.DataFrame:
    """Store roles on ``df`` (in place; returned): ``known`` over what is stored, the rule for the rest."""
    given = {c: r for c, r in known.items() if c in df.columns}
    stored = stored_roles(df)
    missing = [c for c in df.columns if c not in given and c not in stored]  # the rule only where needed
    rule = rule_roles(df, missing) if missing else {}
    merged = {c: given[c] if c in given else stored[c] if c in stored else rule[c] for c in df.columns}
    df.attrs[ATTRS_KEY] = _Entry(schema=SCHEMA_VERSION, roles=merged)
    return df


def label_table(df: pd.DataFrame, settings: Iterable[str], identity: Iterable[str] = ("seed",)) -> pd.DataFrame:
    """Roles by construction: the columns a writer put as ``settings`` and ``identity``; all else measured."""
    settings, identity = set(settings), set(identity)
    known = {c: IDENTITY if c in identity else SETTING if c in settings else MEASUREMENT for c in df.columns}
    df.attrs[ATTRS_KEY] = _Entry(schema=SCHEMA_VERSION, roles=known)
    return df


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat`` that keeps every frame's roles (pandas drops ``attrs`` that differ)."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return pd.DataFrame()
    known: dict[str, str] = {}
    for frame in frames:
        known |= {c: r for c, r in roles(frame).items() if c not in known}
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    table.attrs = {}
    return with_roles(table, known)


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its columns in the order optbench writes: identity and settings as they come
    (``run_key`` and ``phase`` aside), then ``epoch``, ``step``, ``grad_evals``, ``loss``, ``optimum``, the problem's
    metrics, ``time_s``, ``batch_runs``, ``threads``, ``status``, ``message``, then ``run_key`` and ``phase``.
    :func:`rule_roles` reads the roles of such a table back from its column order alone."""
    known = roles(df)
    columns = list(df.columns)
    tail = [c for c in ("time_s", "batch_runs", "threads", "status", "message") if c in columns]
    head = [c for c in ("epoch", "step", "grad_evals", "loss", "optimum") if c in columns]
    front = [c for c in columns if known[c] != MEASUREMENT and c not in ("run_key", "phase")]
    metrics = [c for c in columns if known[c] == MEASUREMENT and c not in head + tail]
    back = [c for c in ("run_key", "phase") if c in columns]
    ordered = front + head + metrics + tail + back
    if ordered == columns:
        return df
    out = df[ordered]
    out.attrs = dict(df.attrs)
    return out


def in_rule_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` in an order from which :func:`rule_roles` gives back its roles (what a CSV file keeps)."""
    if rule_roles(df) == roles(df):
        return df
    out = tidy(df)
    if rule_roles(out) != roles(out):  # e.g. a constant metric but no `epoch` column
        raise InvalidValueError("this table's column roles cannot be kept in a CSV file; save it as .parquet")
    return out


def metadata(df: pd.DataFrame) -> bytes:
    """The roles as the JSON stored in a parquet file's metadata."""
    return json.dumps({"schema": SCHEMA_VERSION, "roles": roles(df)}).encode()


def from_metadata(raw: bytes | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        found = data.get("roles", {})
        return {str(c): r for c, r in found.items() if r in ROLES}
    except (ValueError, AttributeError):
        return {}


# --- values


def stable_text(value: Any) -> str:
    """Text for a setting that is not a number, bool, string or tuple: the same in every process.

    A function or class is named ``module.qualname``; another object by its text, or, when that
    text holds a memory address (``<... at 0x7f..>``), by its type as ``<module.Type object>``.
    """
    qualname = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(qualname, str):
        return f"{getattr(value, '__module__', None) or '?'}.{qualname}"
    text = str(value)
    if _ADDRESS.search(text):
        kind = type(value)
        return f"<{kind.__module__}.{kind.__qualname__} object>"
    return text


def table_value(value: Any) -> Any:
    """A setting as a table cell: numbers, bools and text stay; tuples become ``"0.9,0.999"``; None is NaN.

    None is "not set", the same as the missing cell of a setting another run does not have.
    """
    if value is None:
        return float("nan")
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return ",".join(str(table_value(v)) for v in value)
    return stable_text(value)


def canonical(value: Any) -> Any:
    """A value as the run key hashes it: the same for every spelling of the same setting.

    ``0.1`` and ``1e-1`` are one float; ``0`` and ``0.0`` one number; tuples and lists one list.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) < 2**53 else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, tuple | list):
        return [canonical(v) for v in value]
    return stable_text(value)


def canonical_tree(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): canonical_tree(v) for k, v in value.items()}
    return canonical(value)


def key_text(value: Mapping[str, Any]) -> str:
    """Canonical JSON of a mapping: equal for every spelling of the same settings."""
    return json.dumps(canonical_tree(value), sort_keys=True)


def config_identity(spec: Any, phase: str | None = None) -> dict[str, Any]:
    """What a run *is* but its seed, from a prepared :class:`~optbench.core.runner.RunSpec` (defaults resolved)."""
    identity = {
        "problem": spec.problem.name,
        "problem_options": dict(spec.problem_options),
        "optimizer": spec.optimizer.name,
        "hyperparameters": dict(spec.hyperparameters),
        **declared.identity(spec.settings, spec.optimizer),
    }
    if phase is not None:
        identity["phase"] = phase
    return identity


def seed_keys(spec: Any, seeds: Iterable[int], phase: str | None = None) -> list[str]:
    """The ``run_key`` of ``spec``'s configuration at each seed: a hash of its resolved settings, the
    seed and the phase. The same run gets the same key however it was spelled."""
    text = key_text(config_identity(spec, phase))
    return [hashlib.sha256(f"{text}|seed={seed}".encode()).hexdigest()[:16] for seed in seeds]


def run_key(spec: Any, phase: str | None = None) -> str:
    return seed_keys(spec, [spec.seed], phase)[0]
