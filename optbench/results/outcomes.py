"""What a run came to, defined once: its objective, final value, resolution, target and best setting.

Every verdict optbench gives (``tune``'s choice, ``bench``'s leaderboard, ``check``'s regression
cells, ``report``'s cards, figures and ``summary.csv``) reads runs through these functions, so that
two outputs of the same runs never disagree on what a run reached. A *run* is the rows of one
trajectory, in step order; a *table* holds many runs.

- **objective**: suboptimality ``loss - f*`` where the problem knows f*, else the loss.
- **resolution**: the smallest objective a run can tell from zero, its dtype's machine epsilon
  times its starting loss. Below it a float32 suboptimality is rounding noise (it even comes out
  negative), so a final value under it counts as the resolution and is shown as
  ``"< resolution (about 1e-06)"``, never as a number.
- **diverged**: a run whose loss became non-finite, or whose objective passed :data:`BLOWN_UP`
  times its start at a recorded point (:func:`blown_up`), even if it came back down or stayed
  finite: its status says ``diverged`` in the table itself, so every count, median, figure and
  verdict sees the same runs.
- **final**: the last finite objective of a run whose status is ``ok``; ``inf`` for a diverged
  (or failed) run, so that it ranks last, never missing.
- **target**: a value of the objective, relative to the run's start (``Target(0.01)``: 1% of it)
  or absolute; a run *reaches* it at the first recorded point at or below it.
- **best setting**: per group, the setting with the lowest median final over seeds.
- **edge**: a chosen value at the smallest or largest of the values searched.
- **coincide**: two sets of runs with the same seeds, steps and losses.
- **failures**: a table's errored runs grouped by their message, most frequent first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

# Machine epsilon per dtype a problem computes in; float32 (torch's default) where a table names none.
EPSILON = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}


@dataclass(frozen=True)
class Target:
    """The objective a run must get down to: ``value`` x its starting objective, or ``value`` itself.

    >>> Target(0.01).threshold(50.0), Target(0.5, relative=False).threshold(50.0)
    (0.5, 0.5)
    >>> str(Target(0.01)), str(Target(0.5, relative=False))
    ("1% of each run's starting objective", 'objective <= 0.5')
    """

    value: float
    relative: bool = True
    source: str = ""  # where the value came from, where it was derived (a bench's best baseline)

    def threshold(self, start: float) -> float:
        return self.value * start if self.relative else self.value

    def __str__(self) -> str:
        text = (
            f"{self.value * 100:.4g}% of each run's starting objective"
            if self.relative
            else f"objective <= {self.value:.3g}"
        )
        return f"{text} ({self.source})" if self.source else text


DEFAULT_TARGET = Target(0.1)  # the objective down to 10% of its starting value
BLOWN_UP = 1e3  # a run whose objective passes this multiple of its start has diverged, finite or not


def blown_up(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Which recorded objectives (points x runs) pass :data:`BLOWN_UP` x their run's ``start`` (its
    objective at step 0); a run that starts at 0 (or at a non-finite value) has no scale to pass.

    >>> blown_up(np.array([[2.0, 2.0], [1500.0, 1999.0], [1.0, 2001.0]]), np.array([2.0, 2.0])).tolist()
    [[False, False], [False, False], [False, True]]
    """
    scale = np.where(np.isfinite(start) & (start != 0), np.abs(start), np.inf)
    with np.errstate(invalid="ignore"):
        return values > BLOWN_UP * scale


class Reach(NamedTuple):
    """When a run first reached its target: ``inf`` everywhere for a run that never did."""

    steps: float
    seconds: float
    epochs: float


def objective(df: pd.DataFrame) -> pd.Series:
    """What optbench compares: suboptimality ``loss - f*`` where f* is known, else the loss.

    >>> objective(pd.DataFrame({"loss": [3.0, 2.0], "optimum": [1.0, float("nan")]})).tolist()
    [2.0, 2.0]
    """
    return df["loss"] - df["optimum"].fillna(0.0)


def resolution(run: pd.DataFrame) -> float:
    """The smallest objective ``run`` can tell from zero: its dtype's epsilon x its starting loss.

    >>> resolution(pd.DataFrame({"loss": [4.0, 1.0], "problem_dtype": ["float64"] * 2})) == 4 * 2.0**-52
    True
    """
    dtype = run["problem_dtype"].iloc[0] if "problem_dtype" in run else None
    eps = EPSILON.get(str(dtype), EPSILON["float32"])
    return float(eps * abs(run["loss"].iloc[0]))


def diverged(run: pd.DataFrame) -> bool:
    """Whether ``run`` has no final value to compare: it diverged, failed, or never recorded a finite objective."""
    values = objective(run)
    return run["status"].iloc[0] != "ok" or not values.map(math.isfinite).any()


def final(run: pd.DataFrame, *, floor: bool = True) -> float:
    """The run's final objective: the last finite one of an ``ok`` run, ``inf`` for a diverged one.

    With ``floor`` (every comparison) a value under the run's :func:`resolution` counts as the
    resolution, so rounding noise never decides a verdict; ``floor=False`` gives the measured value.

    >>> run = pd.DataFrame({"loss": [1.0, 0.5, 1e-9], "optimum": [0.0] * 3, "status": ["ok"] * 3})
    >>> final(run, floor=False), final(run) == resolution(run)
    (1e-09, True)
    >>> final(run.assign(status="diverged"))
    inf
    """
    if diverged(run):
        return math.inf
    values = objective(run)
    last = float(values[values.map(math.isfinite)].iloc[-1])
    return max(last, resolution(run)) if floor else last


def finals_by_run(table: pd.DataFrame, by: str = "run_key", column: str | None = None) -> pd.DataFrame:
    """:func:`final` and :func:`resolution` of every run of ``table`` at once, indexed by ``by``: the
    same numbers as run by run, without a pandas call per run (a tuning study scores thousands).
    With ``column`` (``"val_loss"``), ``final`` is that column's last finite value instead, unfloored
    (what :func:`optbench.studies.tuning.validation` reads), inf for a diverged run.

    >>> t = pd.DataFrame({"run_key": ["a", "a", "b", "b"], "loss": [1.0, 1e-9, 2.0, float("nan")],
    ...                   "optimum": [0.0] * 4, "status": ["ok", "ok", "diverged", "diverged"]})
    >>> finals_by_run(t)["final"].tolist() == [2.0**-23, math.inf]
    True
    """
    values = objective(table).to_numpy() if column is None else table[column].to_numpy(dtype=float)
    dtype = table["problem_dtype"].astype(str) if "problem_dtype" in table else pd.Series("float32", index=table.index)
    frame = pd.DataFrame(
        {
            by: table[by].to_numpy(),
            "value": values,
            "loss": table["loss"].to_numpy(dtype=float),
            "ok": (table["status"] == "ok").to_numpy(),
            "eps": dtype.map(lambda d: EPSILON.get(d, EPSILON["float32"])).to_numpy(dtype=float),
        }
    )
    first = frame.drop_duplicates(by, keep="first").set_index(by)
    last = frame[np.isfinite(frame["value"])].drop_duplicates(by, keep="last").set_index(by)["value"]
    out = pd.DataFrame(index=first.index)
    out["resolution"] = first["eps"] * first["loss"].abs()
    finished = first["ok"] & last.reindex(first.index).notna()
    # a diverged run: inf; "any finite objective" is what diverged() asks of the objective, not of val_loss
    if column is not None:
        finite_objective = (
            pd.Series(np.isfinite(objective(table).to_numpy()), index=table.index)
            .groupby(table[by].to_numpy(), sort=False)
            .any()
        )
        finished &= finite_objective.reindex(first.index).fillna(False).astype(bool)
    value = last.reindex(first.index)
    # fmax, as final()'s max(): a run whose start is not finite has no resolution, and keeps its value
    out["final"] = np.where(finished, value if column else np.fmax(value, out["resolution"]), math.inf)
    return out


def reach(run: pd.DataFrame, target: Target | None = None) -> Reach:
    """Steps, seconds and epochs at which ``run``'s objective first gets down to ``target``
    (:data:`DEFAULT_TARGET` if None). A run that never does, a diverged one included, gives inf.

    >>> run = pd.DataFrame({"loss": [10.0, 4.0, 0.5], "optimum": [0.0] * 3, "step": [0, 5, 10],
    ...                     "time_s": [0.0, 0.1, 0.2], "epoch": [0.0, 1.0, 2.0]})
    >>> reach(run, Target(0.1))
    Reach(steps=10.0, seconds=0.2, epochs=2.0)
    >>> reach(run, Target(0.01)).steps
    inf
    """
    values = objective(run)
    hit = (values <= (target or DEFAULT_TARGET).threshold(float(values.iloc[0]))).to_numpy()
    if not hit.any():
        return Reach(math.inf, math.inf, math.inf)
    first = int(hit.argmax())
    epochs = float(run["epoch"].iloc[first]) if "epoch" in run else math.nan
    return Reach(float(run["step"].iloc[first]), float(run["time_s"].iloc[first]), epochs)


def outcome(run: pd.DataFrame, target: Target | None = None) -> dict[str, float | str]:
    """Everything a verdict needs of one run: ``final`` (floored), ``resolution``, ``status`` and
    ``steps_to_target`` / ``seconds_to_target`` / ``epochs_to_target``."""
    steps, seconds, epochs = reach(run, target)
    return {
        "final": final(run),
        "resolution": resolution(run),
        "status": str(run["status"].iloc[0]),
        "steps_to_target": steps,
        "seconds_to_target": seconds,
        "epochs_to_target": epochs,
    }


def outcomes_by_run(table: pd.DataFrame, target: Target | None = None, by: str = "run_key") -> pd.DataFrame:
    """:func:`outcome` of every run of ``table`` at once (each run's rows in step order), indexed by
    ``by`` in order of first appearance, with ``test_accuracy``: the last recorded one of an ``ok``
    run where the table has it, else NaN. The same numbers as run by run, without pandas calls per run.

    >>> t = pd.DataFrame({"run_key": ["a", "a", "b", "b"], "loss": [1.0, 0.05, 2.0, 1.0], "optimum": [0.0] * 4,
    ...                   "status": ["ok"] * 4, "step": [0, 5] * 2, "time_s": [0.0, 0.1] * 2})
    >>> outcomes_by_run(t)["steps_to_target"].tolist()
    [5.0, inf]
    """
    goal = target or DEFAULT_TARGET
    codes, keys = pd.factorize(table[by], sort=False)
    values = objective(table).to_numpy(dtype=float)
    first = np.unique(codes, return_index=True)[1]  # each run's first row
    start = values[first][codes]
    with np.errstate(invalid="ignore"):
        hit = values <= (goal.value * start if goal.relative else goal.value)
    rows = np.flatnonzero(hit)
    reached, where = np.unique(codes[rows], return_index=True)
    at = np.full(len(keys), -1)
    at[reached] = rows[where]  # each run's first row at or below the target, -1 for none

    def when(column: str) -> np.ndarray:
        if column not in table:
            return np.where(at >= 0, math.nan, math.inf)
        return np.where(at >= 0, table[column].to_numpy(dtype=float)[at], math.inf)

    finals = finals_by_run(table, by).reindex(keys)
    status = table["status"].astype(str).to_numpy()[first]
    if "test_accuracy" in table:
        last = len(codes) - 1 - np.unique(codes[::-1], return_index=True)[1]  # each run's last row
        accuracy = np.where(status == "ok", table["test_accuracy"].to_numpy(dtype=float)[last], math.nan)
    else:
        accuracy = np.full(len(keys), math.nan)
    return pd.DataFrame(
        {
            "final": finals["final"].to_numpy(dtype=float),
            "resolution": finals["resolution"].to_numpy(dtype=float),
            "status": status,
            "steps_to_target": when("step"),
            "seconds_to_target": when("time_s"),
            "epochs_to_target": when("epoch"),
            "test_accuracy": accuracy,
        },
        index=pd.Index(keys, name=by),
    )


def floors(df: pd.DataFrame, by: str = "problem_label", run: str = "run_id") -> dict[str, float]:
    """Per group (problem) whose optimum is known: the median :func:`resolution` of its runs, which
    is where a log axis of suboptimality stops."""
    known = df[df["optimum"].notna()]
    return {
        group: float(np.median([resolution(r) for _, r in part.groupby(run, sort=False)]))
        for group, part in known.groupby(by)
    }


def shown(value: float, floor: float, digits: int = 3) -> str:
    """A final value as a reader should see it: under the resolution it is no measurement, so it says so.

    >>> shown(0.25, 1e-6), shown(1e-6, 1.2e-6), shown(float("inf"), 1e-6)
    ('0.25', '< resolution (about 1e-06)', 'diverged')
    """
    if value == math.inf:
        return "diverged"
    if value <= floor:
        return f"< resolution (about {floor:.0e})"
    return f"{value:.{digits}g}"


def best(table: pd.DataFrame, groups: Sequence[str], setting: str, value: str = "final") -> pd.DataFrame:
    """Per group, the ``setting`` with the lowest median ``value`` over its rows (a diverged run is inf);
    ties go to the setting seen first. One row per group (in the order groups first appear): the
    groups, the setting and its median.

    >>> runs = pd.DataFrame({"opt": ["a"] * 4, "lr": [1, 1, 2, 2], "final": [3.0, 1.0, 2.0, float("inf")]})
    >>> best(runs, ["opt"], "lr").to_dict("records")
    [{'opt': 'a', 'lr': 1, 'final': 2.0}]
    """
    groups = list(groups)
    medians = table.groupby([*groups, setting], sort=False)[value].median().reset_index()
    winners = medians.sort_values(value, kind="stable").drop_duplicates(groups)
    return medians[groups].drop_duplicates().merge(winners, on=groups, how="left")  # groups in their order


def on_edge(value: float, searched: Collection[float]) -> bool:
    """Whether ``value`` is the smallest or largest of two or more ``searched`` values: the best may lie beyond.

    >>> on_edge(0.1, [0.1, 1.0]), on_edge(0.1, [0.01, 0.1, 1.0]), on_edge(0.1, [0.1])
    (True, False, False)
    """
    values = {float(v) for v in searched}
    return len(values) >= 2 and float(value) in (min(values), max(values))


def coincide(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-5) -> bool:
    """Whether two sets of runs are the same runs: the same seeds and recorded steps, losses equal to
    ``rtol`` (``rtol=0``: bit-identical). gd and full-batch torch-sgd, for one, coincide.

    >>> a = pd.DataFrame({"seed": [0, 0], "step": [0, 1], "loss": [1.0, 0.5]})
    >>> coincide(a, a.copy()), coincide(a, a.assign(loss=[1.0, 0.6]))
    (True, False)
    """
    a, b = a.sort_values(["seed", "step"]), b.sort_values(["seed", "step"])
    return (
        len(a) == len(b)
        and bool((a[["seed", "step"]].to_numpy() == b[["seed", "step"]].to_numpy()).all())
        and bool(np.allclose(a["loss"], b["loss"], rtol=rtol, atol=0, equal_nan=True))
    )


def targets_text(targets: Mapping[str, Target]) -> str:
    """One line for a page that has several problems: their common target, or each one's."""
    texts = {str(t) for t in targets.values()}
    if len(texts) == 1:
        return texts.pop()
    return "; ".join(f"{label}: {t}" for label, t in sorted(targets.items()))


def failures(table: pd.DataFrame, first: int = 3) -> list[str]:
    """The distinct messages of a table's errored runs, most frequent first (at most ``first``, then
    how many more), each with its count and where it happened.

    >>> rows = [("a", "gd", "linreg", "ValueError: boom"), ("b", "gd", "quadratic", "ValueError: boom")]
    >>> t = pd.DataFrame(rows, columns=["run_key", "optimizer", "problem", "message"]).assign(status="error")
    >>> failures(t)
    ['2 runs: ValueError: boom (gd on linreg, quadratic)']
    """
    if not len(table) or "status" not in table:
        return []
    runs = table[table["status"] == "error"]
    if "run_key" in runs:
        runs = runs.drop_duplicates("run_key")
    if not len(runs):
        return []
    lines = []
    counted = runs.groupby("message", sort=False).size().sort_values(ascending=False, kind="stable")
    for message, count in counted.head(first).items():
        mine = runs[runs["message"] == message]
        where = "; ".join(
            f"{opt} on {', '.join(dict.fromkeys(part['problem'].astype(str)))}"
            for opt, part in mine.groupby("optimizer", sort=False)
        )
        lines.append(f"{count} run{'s' if count != 1 else ''}: {message} ({where})")
    if len(counted) > first:
        rest = int(counted.iloc[first:].sum())
        lines.append(f"... and {len(counted) - first} more distinct messages ({rest} runs)")
    return lines
