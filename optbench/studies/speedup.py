"""How much faster: the budget a baseline needs to reach a candidate's final objective, as a multiple
of the candidate's budget, with a 95% bootstrap interval over the paired seeds.

Each baseline's chosen setting is rerun on the evaluation seeds at a ladder of budgets
(:data:`LADDER` x the suite's epochs, each run with its own schedule over its own budget). Per seed,
the baseline's final objective against its budget is interpolated on a log-log scale to where it
equals the candidate's final on that seed; the budget there over the candidate's is the seed's
speedup: 2 means the baseline needs twice the candidate's budget. Budgets count gradient
evaluations (what an optimizer pays: one a step, plus every closure call that needed fresh
gradients) and steps; the headline uses evaluations. A seed whose baseline never gets there within
the ladder counts as more than its top (+inf), one whose baseline gets there at the ladder's
bottom as less than it (0), so the median and its interval say "more than 4x" rather than guess.

Language models (problems that count ``tokens``) are compared in tokens too, as language-model
studies count data (Wen et al. 2025), and their headline is in tokens. There the baseline's
loss-vs-data curve L(D) = a D^-b + c is fitted to its ladder (the medians over seeds; c is f* where
the problem knows it, else fitted, below every final of the ladder), and each seed's crossing is
read from its own ladder interpolated as that curve is: log(L - c) linear in log D between two
budgets. At a budget of the ladder it is the run's final itself (an exact copy of the baseline reads
1x); where too few budgets finished to fit c (fewer than 4), c is 0: plain log-log interpolation.
:func:`curve` fits; each comparison states which (``curve_tokens``).

>>> round(crossing([1.0, 2.0, 4.0], [8.0, 4.0, 1.0], 2.0), 3)  # halfway from 4 to 1 on a log scale: 2 x sqrt(2)
2.828
>>> crossing([1.0, 3.0], [8.0, 4.0], 4.0)  # an identical run reaches it at that budget exactly
3.0
>>> crossing([1.0, 2.0], [8.0, 4.0], 1.0), crossing([1.0, 2.0], [8.0, 4.0], 9.0)
(inf, 0.0)
>>> crossing([1.0, 2.0], [8.0, 4.0], math.inf), crossing([1.0, 2.0], [math.inf] * 2, math.inf)  # diverged
(0.0, nan)
>>> censored_median_interval([0.0] * 5 + [1.5] * 5)[0]  # a bound and a number are never averaged
0.0
>>> budgets = [1.0, 2.0, 4.0, 8.0, 16.0]
>>> [round(v, 3) for v in curve(budgets, [3 * d**-0.5 + 1 for d in budgets], known=False)]  # a, b, c
[3.0, 0.5, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from optbench.results.schema import BUDGET_PHASE

LADDER = (0.25, 0.5, 2.0, 4.0)  # budgets beside the suite's own (1x), as multiples of its epochs
PHASE = BUDGET_PHASE  # the ladder's runs in the results table


def budget_jobs(chosen: Sequence[dict[str, Any]], baselines: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """The ladder's jobs: each baseline's chosen setting at each budget of :data:`LADDER`, every seed.
    They record their ends only (``records = "ends"``): a speedup reads each run's final, and nothing
    draws a ladder run's curve (every epoch's full-data loss was most of a digits CNN ladder's time)."""
    jobs = []
    for choice in chosen:
        job = choice["job"]
        if job["optimizer"] not in baselines:
            continue
        budgets = sorted({max(1, round(job["epochs"] * f)) for f in LADDER} - {job["epochs"]})
        jobs += [dict(job, epochs=epochs, seed=seed, records="ends") for epochs in budgets for seed in seeds]
    return jobs


def crossing(budgets: Sequence[float], finals: Sequence[float], goal: float) -> float:
    """Where ``finals`` (at increasing ``budgets``) first get down to ``goal``, log-log interpolated;
    0 if already at the smallest budget, inf if never (a non-finite final counts as never there).
    A goal of inf (the candidate diverged) is reached at once by a baseline that finishes anywhere
    (0), and by one that never does not at all (NaN: both diverged, no speedup to measure)."""
    logs = [math.log(f) if 0 < f < math.inf else math.inf for f in finals]
    if not goal > 0:
        return math.nan  # no objective to reach (finals are floored above 0)
    if math.isinf(goal):
        return 0.0 if any(math.isfinite(v) for v in logs) else math.nan
    target = math.log(goal)
    for i, value in enumerate(logs):
        if value <= target:
            if i == 0:
                return 0.0
            before = logs[i - 1]
            t = 1.0 if math.isinf(before) else (before - target) / (before - value)
            if t >= 1.0:  # reached at this budget itself: exactly it (a twin's speedup is 1, not 1 +- 1 ulp)
                return float(budgets[i])
            return math.exp(math.log(budgets[i - 1]) + t * (math.log(budgets[i]) - math.log(budgets[i - 1])))
    return math.inf


def _runs(results: pd.DataFrame, label: str) -> pd.DataFrame:
    """One row per evaluation or ladder run of a problem: optimizer, seed, epochs, final, its
    resolution, and its *planned* budget in steps and gradient evaluations (a diverged run stops
    early; its budget is what it was given: epochs x batches an epoch, x evaluations a step).
    A run is the rows of one (optimizer, seed, epochs), in step order; every run at once, with
    :func:`~optbench.results.outcomes.final` and ``resolution`` as
    :func:`~optbench.results.outcomes.finals_by_run` (a pandas call per run took 2.5 s a problem)."""
    from optbench.results.outcomes import finals_by_run

    if not {"epochs", "phase"} <= set(results.columns):  # no ladder could have run (a table made by hand)
        return pd.DataFrame()
    mine = results[(results["suite_problem"] == label) & results["phase"].isin(["eval", PHASE])]
    number = mine.groupby(["optimizer", "seed", "epochs"], sort=False).ngroup()  # in order of first appearance
    mine, number = mine[number.notna()], number[number.notna()].to_numpy(dtype=np.int64)  # groupby drops NaN keys
    if not len(mine):
        return pd.DataFrame()
    order = np.lexsort((mine["step"].to_numpy(), number))  # by run, then step (stable)
    runs = mine.iloc[order].assign(_run=number[order])
    first = runs.drop_duplicates("_run").set_index("_run")
    # each run's last recorded point past step 0: its batches an epoch and evaluations (tokens) a step
    last = runs[runs["step"] > 0].drop_duplicates("_run", keep="last").set_index("_run").reindex(first.index)
    step = last["step"].to_numpy(dtype=float)
    moved = ~np.isnan(step)
    evals = last["grad_evals" if "grad_evals" in runs else "step"].to_numpy(dtype=float)
    per_epoch = np.where(moved, step / last["epoch"].to_numpy(dtype=float), 1.0)
    per_step = np.where(moved, evals / step, 1.0)
    steps = first["epochs"].to_numpy() * np.round(per_epoch)  # round half to even, as round()
    if "tokens" in runs:
        counted = last["tokens"].to_numpy(dtype=float)
        tokens = np.where(moved & np.isfinite(counted), steps * (counted / step), math.nan)
    else:
        tokens = np.full(len(first), math.nan)
    finals = finals_by_run(runs, by="_run").reindex(first.index)
    known = runs["optimum"].notna().groupby(runs["_run"]).any().reindex(first.index) if "optimum" in runs else False
    return pd.DataFrame(
        {
            "optimizer": first["optimizer"].to_numpy(),
            "seed": first["seed"].to_numpy(),
            "epochs": first["epochs"].to_numpy(),
            "final": finals["final"].to_numpy(dtype=float),
            "resolution": finals["resolution"].to_numpy(dtype=float),
            "steps": steps.astype(float),
            "evals": steps * per_step,
            "tokens": tokens,
            "known": np.asarray(known, dtype=bool) if "optimum" in runs else np.zeros(len(first), dtype=bool),
            "eval_phase": (first["phase"] == "eval").to_numpy(),
        }
    )


def speedups(results: pd.DataFrame, label: str, candidates: Sequence[str], baselines: Sequence[str]) -> pd.DataFrame:
    """Per candidate and baseline on problem ``label``: the median speedup over seeds in gradient
    evaluations and in steps (and in tokens, where the problem counts them), each with its 95%
    bootstrap interval, the seeds, and the ladder's range (what "more than" and "less than" refer
    to); in tokens also the baseline's fitted curve in words (``curve_tokens``)."""
    runs = _runs(results, label)
    rows = []
    if not len(runs):
        return pd.DataFrame(rows)
    units = ["evals", "steps"] + (["tokens"] if runs["tokens"].notna().all() else [])
    for baseline in baselines:
        ladder = runs[runs["optimizer"] == baseline].sort_values("epochs")
        if ladder["epochs"].nunique() < 2:
            continue
        floor, fitted = 0.0, ""
        if "tokens" in units:
            medians = ladder.groupby("tokens")["final"].median()
            known = bool(ladder["known"].any())
            found = curve(medians.index.tolist(), medians.tolist(), known, below=float(ladder["final"].min()))
            if found is not None:
                floor, fitted = found[2], curve_text(*found, known)
            else:
                fitted = "interpolated (log-log): its ladder is too short or too noisy to fit L(D) = a D^-b + c"
        for candidate in candidates:
            mine = runs[(runs["optimizer"] == candidate) & runs["eval_phase"]].set_index("seed")
            per: dict[str, list[float]] = {unit: [] for unit in units}
            ranges = {unit: [math.inf, 0.0] for unit in units}
            for seed, own in mine.iterrows():
                theirs = ladder[ladder["seed"] == seed]
                if theirs["epochs"].nunique() < 2:
                    continue
                if own["final"] <= own["resolution"]:
                    continue  # the candidate ended at the float floor: when the baseline gets there is no speedup
                for unit in per:
                    lowered = floor if unit == "tokens" else 0.0  # L - c along the fitted curve
                    finals = [f - lowered for f in theirs["final"].tolist()]
                    goal = own["final"] - lowered
                    budget = crossing(theirs[unit].tolist(), finals, goal) if goal > 0 else math.inf
                    if math.isnan(budget) or not own[unit] > 0:
                        continue
                    per[unit].append(budget / own[unit])
                    ranges[unit][0] = min(ranges[unit][0], theirs[unit].min() / own[unit])
                    ranges[unit][1] = max(ranges[unit][1], theirs[unit].max() / own[unit])
            if not per["evals"]:
                continue
            row = {"problem": label, "candidate": candidate, "baseline": baseline, "speedup_seeds": len(per["evals"])}
            for unit, values in per.items():
                bottom, top = ranges[unit]
                for end, value in zip(("", "_low", "_high"), censored_median_interval(values), strict=True):
                    row[f"speedup_{unit}{end}"], row[f"speedup_{unit}{end}_bound"] = censor(value, bottom, top)
                row |= {f"ladder_{unit}_min": bottom, f"ladder_{unit}_max": top}
            if "tokens" in per:
                row["curve_tokens"] = fitted
            rows.append(row)
    return pd.DataFrame(rows)


def curve(
    budgets: Sequence[float], finals: Sequence[float], known: bool, below: float = math.inf
) -> tuple[float, float, float] | None:
    """(a, b, c) of L(D) = a D^-b + c fitted to a ladder's ``finals`` (least squares in log(L - c)
    against log D), or None where it cannot be: a non-finite final, fewer than 2 budgets (4 where c
    is fitted), or a curve that does not fall (b <= 0). ``known``: the finals are suboptimalities
    (f* known), so c is 0; else c is searched below ``below`` and every final."""
    d = np.asarray(budgets, dtype=float)
    y = np.asarray(finals, dtype=float)
    if not (np.isfinite(y).all() and (y > 0).all() and (d > 0).all()) or len(d) < (2 if known else 4):
        return None
    top = min(float(y.min()), below)
    logd = np.log(d)

    def fit(c: float) -> tuple[float, float, float, float]:  # (squared error, a, b, c)
        slope, intercept = np.polyfit(logd, np.log(y - c), 1)
        return float(((intercept + slope * logd - np.log(y - c)) ** 2).sum()), float(np.exp(intercept)), -slope, c

    if known:
        best = fit(0.0)
    else:  # c strictly below every final: a grid, then a finer one around its best
        step = top / 400
        best = min(fit(float(c)) for c in np.linspace(0.0, top, 401)[:-1])
        fine = np.linspace(max(best[3] - step, 0.0), min(best[3] + step, top), 201)
        best = min(fit(float(c)) for c in fine if c < top)
    if not best[2] > 0:
        return None
    return best[1], float(best[2]), best[3]


def curve_text(a: float, b: float, c: float, known: bool) -> str:
    """The baseline's fitted curve as the page states it."""
    if known:
        return f"fitted L(D) = {a:.3g} D^-{b:.3g} + f* over its ladder (D in tokens)"
    return f"fitted L(D) = {a:.3g} D^-{b:.3g} + {c:.4g} over its ladder (D in tokens)"


def censored_median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The median and its percentile-bootstrap interval where some values stand for "less than" (0)
    or "more than" (inf): each median is a value taken, never the average of two (which would turn
    a 0 and a 1.5 into 0.75, or a 1.1 and an inf into inf)."""
    from optbench.results.stats import BOOTSTRAP_DRAWS, BOOTSTRAP_SEED

    x = np.asarray(values, dtype=float)
    if not len(x):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = np.quantile(x[rng.integers(0, len(x), size=(BOOTSTRAP_DRAWS, len(x)))], 0.5, axis=1, method="inverted_cdf")
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], method="lower")
    return float(np.quantile(x, 0.5, method="inverted_cdf")), float(low), float(high)


def censor(value: float, bottom: float, top: float) -> tuple[float, str]:
    """A speedup as data: ``(value, bound)``, where beyond the ladder the value is the ladder's end and
    the bound says which way (``">"``: more than ``top``; ``"<"``: less than ``bottom``; ``""``: the
    value itself), so that no file stores 0.0 or inf standing in for a bound.

    >>> censor(math.inf, 0.25, 4.0), censor(0.0, 0.25, 4.0), censor(1.3, 0.25, 4.0)
    ((4.0, '>'), (0.25, '<'), (1.3, ''))
    """
    if not np.isfinite(value) and value > 0:
        return top, ">"
    if value <= 0 or (np.isfinite(value) and value < bottom * (1 - 1e-9)):
        return bottom, "<"
    return value, ""


def uncensor(value: float, bound: str) -> float:
    """The ordering value of a censored speedup: 0 below the ladder, inf above it (medians only take values)."""
    return {"<": 0.0, ">": math.inf}.get(bound if isinstance(bound, str) else "", value)


def times(value: float, bound: str = "") -> str:
    """A speedup as a reader should see it: ``1.3x``, or beyond the ladder ``> 4x`` / ``< 0.25x``."""
    prefix = f"{bound} " if isinstance(bound, str) and bound else ""
    return f"{prefix}{value:.3g}x"


NOUNS = {"evals": "gradient evaluations", "steps": "steps", "tokens": "tokens"}


def unit_of(row: dict[str, Any]) -> str:
    """The unit a comparison is stated in: tokens where the problem counts them, else evaluations."""
    value = row.get("speedup_tokens")
    return "tokens" if isinstance(value, float) and not math.isnan(value) else "evals"


def text(row: dict[str, Any], unit: str | None = None) -> str:
    """``speedup 1.3x [1.1x, 1.6x] in gradient evaluations`` for one comparison (below 1x: the baseline
    needs less than the candidate's budget); in tokens with the baseline's curve. ``unit``: by default
    :func:`unit_of`."""
    unit = unit or unit_of(row)
    parts = [
        times(row[f"speedup_{unit}{end}"], row.get(f"speedup_{unit}{end}_bound", "")) for end in ("", "_low", "_high")
    ]
    shown = f"speedup {parts[0]} [{parts[1]}, {parts[2]}] in {NOUNS[unit]}"
    if unit == "tokens" and isinstance(row.get("curve_tokens"), str):
        shown += f" ({row['baseline']}: {row['curve_tokens']})"
    return shown


def headline(table: pd.DataFrame, pairs: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """Per ``"candidate vs name"`` (name: the baseline in words, "gd = torch-sgd"): its speedup across
    the problems, the median of the per-problem medians, and on how many problems the interval lies
    above 1 (faster) or below it (slower); in tokens where every problem counts them, else in
    gradient evaluations."""
    if "speedup_evals" not in table:
        return {}
    out = {}
    for candidate, baseline, name in pairs:
        mine = table[(table["candidate"] == candidate) & (table["baseline"] == baseline)].dropna(
            subset=["speedup_evals"]
        )
        if not len(mine):
            continue
        unit = "tokens" if "speedup_tokens" in mine and mine["speedup_tokens"].notna().all() else "evals"
        column = f"speedup_{unit}"
        values = [uncensor(v, b) for v, b in zip(mine[column], _bounds(mine, column), strict=True)]
        middle = float(np.quantile(values, 0.5, method="inverted_cdf"))  # censored: a value taken
        low = [uncensor(v, b) for v, b in zip(mine[f"{column}_low"], _bounds(mine, f"{column}_low"), strict=True)]
        high = [uncensor(v, b) for v, b in zip(mine[f"{column}_high"], _bounds(mine, f"{column}_high"), strict=True)]
        faster, slower = sum(v > 1 for v in low), sum(v < 1 for v in high)
        ladder = float(mine[f"ladder_{unit}_min"].min()), float(mine[f"ladder_{unit}_max"].max())
        shown = times(*censor(middle, *ladder))
        out[f"{candidate} vs {name}"] = (
            f"speedup {shown} in {NOUNS[unit]} (median of {len(mine)} problems; faster on {faster}, slower on {slower})"
        )
    return out


def _bounds(table: pd.DataFrame, column: str) -> list[str]:
    bound = f"{column}_bound"
    return [b if isinstance(b, str) else "" for b in table[bound]] if bound in table else [""] * len(table)


METHOD = (
    "Speedup: each baseline's chosen setting rerun on the evaluation seeds at {ladder} times the budget "
    "(each with its own schedule); per seed, the budget it needs to reach the candidate's final objective "
    "(log-log interpolated), over the candidate's budget: 2x means the baseline needs twice the candidate's "
    "gradient evaluations. Median over seeds [95% bootstrap interval]; beyond the ladder it says '> 4x' or "
    "'< 0.25x' (in the CSV: the ladder's end and a bound column, '>' or '<'). Faster or slower on a problem: "
    "the interval lies above or below 1. Language models: in tokens, read along the baseline's loss-vs-data "
    "curve L(D) = a D^-b + c fitted to its ladder (c = f* where known), log-log interpolation where the ladder "
    "is too short to fit."
)


def method_text() -> str:
    return METHOD.format(ladder=", ".join(f"{f:g}" for f in sorted((*LADDER, 1.0))))
