"""From results tables to what reports draw: runs, their labels, their finals, the best settings."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from optbench.errors import ResultsFileError
from optbench.results import outcomes
from optbench.results.io import SUFFIXES, load_results, schema
from optbench.results.outcomes import DEFAULT_TARGET, Target, objective

MANIFEST = ".optbench-report"  # in a report's folder: the files it wrote, which are never read as results


def read_results(paths: Sequence[str | Path], ignore: Sequence[Path] = ()) -> pd.DataFrame:
    """Read result files and folders of them (their .parquet and .csv files) into one table.

    A folder's files that a report wrote (listed in its :data:`MANIFEST`), and ``ignore``, are
    skipped: ``optbench report res/ --out res/`` never reads its own summary.csv. The table may
    have no rows (no results found, or files without rows); it keeps every column's role.
    """
    if not paths:
        raise ResultsFileError("no results given: name one or more .parquet/.csv files or folders of them")
    skip = {p.resolve() for p in ignore}
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            skip |= _written_by_reports(path)
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
            files += [p for p in found if p.is_file() and p.resolve() not in skip]
        elif path.exists():
            files.append(path)
        else:
            raise ResultsFileError(f"results {str(path)!r} do not exist")
    return schema.concat([load_results(f) for f in files])


def _written_by_reports(folder: Path) -> set[Path]:
    try:
        names = json.loads((folder / MANIFEST).read_text())["files"]
        return {(folder / str(n)).resolve() for n in names}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def settings_of(df: pd.DataFrame) -> list[str]:
    """Columns that describe a run's configuration (identity and measurements aside), by their stored roles."""
    return schema.columns_with(df, schema.SETTING)


def metrics_of(df: pd.DataFrame) -> list[str]:
    """The numeric metrics problems recorded (test_accuracy, a plugin's own): measurements beyond the core."""
    return [
        c
        for c in schema.columns_with(df, schema.MEASUREMENT)
        if c not in (*schema.CORE_MEASUREMENTS, "objective") and pd.api.types.is_numeric_dtype(df[c])
    ]


def _varying(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if df[c].nunique(dropna=False) > 1]


class Named(Protocol):
    """A problem with its options under a label a study gave it (a bench suite's entry)."""

    label: str
    problem: str
    options: Mapping[str, Any]


def label_runs(df: pd.DataFrame, named: Sequence[Named] = ()) -> pd.DataFrame:
    """Add ``problem_label`` (name + the options that vary, or the label ``named`` gives the problem
    with those options), ``config`` (optimizer + the settings that vary between its runs), ``run``
    (config + seed, + phase), ``run_id`` (the run_key where there is one) and ``objective``
    (loss - f*, or loss). Runs of one configuration differ only by identity."""
    settings = settings_of(df)
    df = df.copy()
    problem_options = [c for c in settings if c.startswith("problem_")]
    hyper = [c for c in settings if c not in ("problem", "optimizer", *problem_options)]
    df["problem_label"] = df["problem"]
    for name, part in df.groupby("problem", sort=False):
        varying = _varying(part, problem_options)
        if varying:
            df.loc[part.index, "problem_label"] = name + " " + _described(part[varying])
    # a bench's label is what its leaderboard says; the entries naming more options go last, so that
    # "linreg" (default options) does not take the rows of "linreg n=400"
    for entry in sorted(named, key=lambda e: len(e.options)):
        mask = df["problem"] == entry.problem
        for key, value in entry.options.items():
            mask &= df[f"problem_{key}"] == value if f"problem_{key}" in df else False
        df.loc[mask, "problem_label"] = entry.label
    df["config"] = df["optimizer"]
    for (_, name), part in df.groupby(["problem_label", "optimizer"], sort=False):
        varying = _varying(part, [c for c in hyper if part[c].notna().any()])
        if varying:
            df.loc[part.index, "config"] = name + " (" + _described(part[varying]) + ")"
    df["run"] = df["problem_label"] + " | " + df["config"] + " | seed " + df["seed"].astype(str)
    if "phase" in df:
        df["run"] = df["run"] + " | " + df["phase"].fillna("").astype(str)
    df["run_id"] = df["run_key"].astype(str) if "run_key" in df else df["run"]
    df["objective"] = objective(df)
    derived = dict.fromkeys(("problem_label", "config", "run", "run_id"), schema.IDENTITY)
    return schema.with_roles(df, derived | {"objective": schema.MEASUREMENT})


def _described(part: pd.DataFrame) -> pd.Series:
    """:func:`_describe` of every row of ``part``, computed once per distinct row: a table's thousands
    of recorded points share a few settings (row by row it was 3 s of a quick bench's page)."""
    number = part.groupby(list(part.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(number, return_index=True)[1]  # each distinct row where it first appears
    texts = part.iloc[first].apply(_describe, axis=1).to_numpy(dtype=object)
    return pd.Series(texts[number], index=part.index, dtype=object)


def _describe(row: pd.Series) -> str:
    return ", ".join(f"{k.removeprefix('problem_')}={_short(v)}" for k, v in row.items())


def _short(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def finals(df: pd.DataFrame, target: Target | None = None, targets: Mapping[str, Target] | None = None) -> pd.DataFrame:
    """One row per run: its settings and :func:`~optbench.results.outcomes.outcome` (the final
    objective floored at the run's resolution, inf for a diverged run; steps, epochs and seconds to
    the target of its problem: ``targets[problem_label]``, else ``target``, else the default), the
    target in words, the last finite loss and the last value of each metric."""
    metrics = metrics_of(df)
    targets = targets or {}
    if not len(df):
        return pd.DataFrame()
    first = df.drop_duplicates("run_id", keep="first").set_index("run_id")
    last = df.drop_duplicates("run_id", keep="last").set_index("run_id")
    kept = [c for c in df.columns if c not in ("epoch", "step", "loss", "time_s", "objective")]
    out = first.reset_index()[kept].set_index("run_id", drop=False)
    ends = outcomes.finals_by_run(df, "run_id")  # final (floored) and resolution, as outcome() gives them
    goals = [targets.get(label, target or DEFAULT_TARGET) for label in first["problem_label"]]
    below = dict(
        zip(first.index, (g.threshold(float(v)) for g, v in zip(goals, first["objective"], strict=True)), strict=True)
    )
    hit = df[df["objective"].to_numpy() <= df["run_id"].map(below).to_numpy(dtype=float)]
    reached = hit.drop_duplicates("run_id", keep="first").set_index("run_id").reindex(first.index)
    out["final"] = ends["final"]
    out["resolution"] = ends["resolution"]
    out["steps_to_target"] = reached["step"].astype(float).fillna(math.inf)
    out["seconds_to_target"] = reached["time_s"].astype(float).fillna(math.inf)
    out["epochs_to_target"] = reached["epoch"].astype(float).fillna(math.inf) if "epoch" in reached else math.nan
    out["target"] = [str(g) for g in goals]
    finite = df[df["objective"].map(math.isfinite)].drop_duplicates("run_id", keep="last").set_index("run_id")
    out["final_loss"] = finite["loss"].reindex(first.index).astype(float).fillna(math.inf)
    out["steps"] = last["step"].astype(int)
    out["has_optimum"] = ~first["optimum"].isna()
    for metric in metrics:
        out[f"final_{metric}"] = last[metric].astype(float)
    return out.reset_index(drop=True)


def target_values(
    df: pd.DataFrame, target: Target | None = None, targets: Mapping[str, Target] | None = None
) -> dict[str, float]:
    """Per problem, the objective its target stands for: the absolute value, or the median over runs
    of the share of each run's starting objective (what :func:`finals` measures time to)."""
    values = {}
    for problem, part in df.groupby("problem_label", sort=True):
        goal = (targets or {}).get(problem, target or DEFAULT_TARGET)
        starts = part.groupby("run_id", sort=False)["objective"].first()
        values[problem] = float(np.median([goal.threshold(float(s)) for s in starts]))
    return values


def batch_sizes_differ(runs: pd.DataFrame) -> bool:
    """Whether the runs take steps of different sizes, so that steps are no common clock (epochs are)."""
    return runs["batch_size"].nunique() > 1


def cost_unit(final: pd.DataFrame) -> str:
    """``"epochs"`` where the best configs of some problem differ in batch size, else ``"steps"``:
    a minibatch step sees less data than a full-batch one, so counting steps would favour full batches."""
    chosen = final.merge(best_configs(final)[["problem_label", "optimizer", "config"]])
    differ = chosen.groupby("problem_label")["batch_size"].nunique().gt(1).any()
    return "epochs" if differ else "steps"


def float_floor(df: pd.DataFrame) -> dict[str, float]:
    """Per problem whose optimum is known: the smallest suboptimality its arithmetic can resolve
    (:func:`optbench.results.outcomes.floors`), where log axes stop."""
    return outcomes.floors(df, "problem_label", "run_id")


def identical(df: pd.DataFrame, best: pd.DataFrame, rtol: float = 1e-5) -> dict[str, list[tuple[str, str]]]:
    """Per problem, pairs (optimizer, earlier optimizer) whose best-config runs coincide
    (:func:`optbench.results.outcomes.coincide`: gd and full-batch torch-sgd, for one)."""
    chosen = df.merge(best[["problem_label", "optimizer", "config"]])
    pairs: dict[str, list[tuple[str, str]]] = {}
    for problem, part in chosen.groupby("problem_label", sort=True):
        runs = dict(tuple(part.groupby("optimizer", sort=True)))
        names = list(runs)
        for i, name in enumerate(names):
            for earlier in names[:i]:
                if outcomes.coincide(runs[name], runs[earlier], rtol):
                    pairs.setdefault(problem, []).append((name, earlier))
                    break
    return pairs


def best_configs(final: pd.DataFrame) -> pd.DataFrame:
    """Per problem and optimizer, the config with the lowest median final objective (diverged = inf)."""
    return outcomes.best(final, ["problem_label", "optimizer"], "config")


def best_settings(final: pd.DataFrame, search: pd.DataFrame | None = None) -> pd.DataFrame:
    """What a reader came for, per problem: each optimizer at its best setting, its final value (median
    over seeds, and the spread) and how many of its runs reached the target; best first.

    ``edge`` names the chosen values that sit on the edge of those searched (in ``search``, the
    tuning phase, or ``final`` itself), where the best may lie beyond. The order is no ranking: a
    report tests nothing (``optbench bench`` does)."""
    best = best_configs(final)
    chosen = final.merge(best[["problem_label", "optimizer", "config"]])
    searched = final if search is None or not len(search) else search
    rows = []
    for (problem, optimizer), part in chosen.groupby(["problem_label", "optimizer"], sort=False):
        config = part["config"].iloc[0]
        setting = config[len(optimizer) + 2 : -1] if config != optimizer else f"lr={_short(part['lr'].iloc[0])}"
        tried = searched[(searched["problem_label"] == problem) & (searched["optimizer"] == optimizer)]
        finite = part["final"][part["final"].map(math.isfinite)]
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
                "setting": setting,
                "edge": ", ".join(_on_edge(part.iloc[0], tried)),
                "configs": int(tried["config"].nunique()),
                "target": part["target"].iloc[0],
                "resolution": float(part["resolution"].median()),
                "has_optimum": bool(part["has_optimum"].iloc[0]),
                "seeds": len(part),
                "final": float(part["final"].median()),
                "low": float(finite.min()) if len(finite) else math.inf,
                "high": float(finite.max()) if len(finite) else math.inf,
                "reached": int(part["steps_to_target"].map(math.isfinite).sum()),
                "diverged": int((part["status"] == "diverged").sum()),
            }
        )
    table = pd.DataFrame(rows)
    table = table.sort_values(["problem", "final", "optimizer"], kind="stable").reset_index(drop=True)
    return table  # no ranking: a ranking needs a test, bench's verdict, never the page's own


def _on_edge(row: pd.Series, tried: pd.DataFrame) -> list[str]:
    """The numeric settings that vary among ``tried`` (named in its configs) where ``row`` sits at the
    smallest or largest value tried."""
    names = set()
    for config in tried["config"].unique():
        inside = config[config.find("(") + 1 : -1] if config.endswith(")") else ""
        names |= {part.split("=", 1)[0] for part in inside.split(", ") if "=" in part}
    numeric = [n for n in sorted(names) if n in tried and n in row.index and pd.api.types.is_numeric_dtype(tried[n])]
    return [n for n in numeric if outcomes.on_edge(float(row[n]), tried[n].dropna().unique())]


def summary(final: pd.DataFrame) -> pd.DataFrame:
    """Per problem x optimizer x settings: runs, final mean/std/best, time to target, diverged."""

    def finite_mean(x: pd.Series) -> float:
        x = x[x.map(math.isfinite)]
        return float(x.mean()) if len(x) else math.nan

    def finite_std(x: pd.Series) -> float:
        x = x[x.map(math.isfinite)]
        return float(x.std(ddof=1)) if len(x) > 1 else math.nan

    keys = ["problem_label", "optimizer", "config"] + (["phase"] if "phase" in final else [])
    grouped = final.groupby(keys, sort=True, dropna=False)
    table = grouped.agg(
        target=("target", "first"),
        runs=("final", "size"),
        final_median=("final", "median"),
        resolution=("resolution", "median"),  # finals below it are floored to it: rounding noise, not progress
        final_mean=("final", finite_mean),
        final_std=("final", finite_std),
        final_best=("final", "min"),
        steps_to_target=("steps_to_target", "median"),  # a run that never reaches it counts as inf
        epochs_to_target=("epochs_to_target", "median"),
        seconds_to_target=("seconds_to_target", "median"),
        reached_target=("steps_to_target", lambda x: int(x.map(math.isfinite).sum())),
        diverged=("status", lambda x: int((x == "diverged").sum())),
        errors=("status", lambda x: int((x == "error").sum())),
    )
    for column in [c for c in final.columns if c.startswith("final_") and c != "final_loss"]:
        table[column.removeprefix("final_") + "_mean"] = grouped[column].mean()  # e.g. test_accuracy_mean
    return table.reset_index().rename(columns={"problem_label": "problem"})


def performance_profile(final: pd.DataFrame, cost: str = "steps_to_target") -> pd.DataFrame:
    """Dolan-More: for each optimizer (at its best config) the fraction of problems it solves within
    tau times the cost of the best optimizer on that problem. Unsolved problems never count."""
    best = best_configs(final)
    chosen = final.merge(best[["problem_label", "optimizer", "config"]], on=["problem_label", "optimizer", "config"])
    costs = chosen.groupby(["problem_label", "optimizer"])[cost].median().unstack("optimizer")
    ratios = costs.div(costs.min(axis=1), axis=0)
    taus = sorted({1.0, *[r for r in ratios.to_numpy().ravel() if math.isfinite(r)]})
    rows = []
    for optimizer in ratios.columns:
        for tau in taus:
            solved = (ratios[optimizer] <= tau).sum()
            rows.append({"optimizer": optimizer, "tau": tau, "fraction": solved / len(ratios)})
    return pd.DataFrame(rows)
