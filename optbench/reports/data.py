"""From results tables to what reports draw: runs, their labels, their finals, the best settings."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from optbench.errors import ResultsFileError
from optbench.results import MEASURED, SUFFIXES, load_results, objective, reach


def read_results(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read result files and folders of them (their .parquet and .csv files) into one table."""
    if not paths:
        raise ResultsFileError("no results given: name one or more .parquet/.csv files or folders of them")
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
            if not found:
                raise ResultsFileError(f"folder {str(path)!r} holds no .parquet or .csv results")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ResultsFileError(f"results {str(path)!r} do not exist")
    tables = [load_results(f) for f in files]
    tables = [t for t in tables if len(t)]
    if not tables:
        raise ResultsFileError(f"the results in {', '.join(map(str, paths))} are empty: no rows to report")
    return pd.concat(tables, ignore_index=True)


def settings_of(df: pd.DataFrame) -> list[str]:
    """Columns that describe a run rather than measure it (the seed aside)."""
    return [c for c in df.columns if c not in MEASURED and c != "seed"]


def _varying(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if df[c].nunique(dropna=False) > 1]


def label_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``problem_label`` (name + the options that vary), ``config`` (optimizer + the settings that
    vary between its runs), ``run`` (config + seed) and ``objective`` (loss - f*, or loss)."""
    df = df.copy()
    settings = settings_of(df)
    problem_options = [c for c in settings if c.startswith("problem_")]
    hyper = [c for c in settings if c not in ("problem", "optimizer", *problem_options)]
    df["problem_label"] = df["problem"]
    for name, part in df.groupby("problem", sort=False):
        varying = _varying(part, problem_options)
        if varying:
            df.loc[part.index, "problem_label"] = name + " " + part[varying].apply(_describe, axis=1)
    df["config"] = df["optimizer"]
    for (_, name), part in df.groupby(["problem_label", "optimizer"], sort=False):
        varying = _varying(part, [c for c in hyper if part[c].notna().any()])
        if varying:
            df.loc[part.index, "config"] = name + " (" + part[varying].apply(_describe, axis=1) + ")"
    df["run"] = df["problem_label"] + " | " + df["config"] + " | seed " + df["seed"].astype(str)
    df["objective"] = objective(df)
    return df


def _describe(row: pd.Series) -> str:
    return ", ".join(f"{k.removeprefix('problem_')}={_short(v)}" for k, v in row.items())


def _short(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def finals(df: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """One row per run: settings, final objective (inf for a diverged run), status, steps/seconds to target."""
    rows = []
    for _, run in df.groupby("run", sort=False):
        finite = run[run["objective"].map(math.isfinite)]
        steps, seconds = reach(run, target)
        row = run.iloc[0].drop(["epoch", "step", "loss", "time_s", "objective"]).to_dict()
        blew_up = run["status"].iloc[0] == "diverged" or not len(finite)  # no meaningful final value
        row |= {
            "final": math.inf if blew_up else float(finite["objective"].iloc[-1]),
            "final_loss": float(finite["loss"].iloc[-1]) if len(finite) else math.inf,
            "steps_to_target": steps,
            "seconds_to_target": seconds,
            "steps": int(run["step"].iloc[-1]),
            "has_optimum": not math.isnan(run["optimum"].iloc[0]),
        }
        if "test_accuracy" in run:
            row["final_test_accuracy"] = float(run["test_accuracy"].iloc[-1])
        rows.append(row)
    return pd.DataFrame(rows)


def best_configs(final: pd.DataFrame) -> pd.DataFrame:
    """Per problem and optimizer, the config with the lowest median final objective (diverged = inf)."""
    medians = final.groupby(["problem_label", "optimizer", "config"], sort=False)["final"].median().reset_index()
    medians = medians.sort_values("final", kind="stable")
    return medians.drop_duplicates(["problem_label", "optimizer"]).reset_index(drop=True)


def summary(final: pd.DataFrame) -> pd.DataFrame:
    """Per problem x optimizer x settings: runs, final mean/std/best, time to target, diverged."""

    def finite_mean(x: pd.Series) -> float:
        x = x[x.map(math.isfinite)]
        return float(x.mean()) if len(x) else math.nan

    def finite_std(x: pd.Series) -> float:
        x = x[x.map(math.isfinite)]
        return float(x.std(ddof=1)) if len(x) > 1 else math.nan

    grouped = final.groupby(["problem_label", "optimizer", "config"], sort=True)
    table = grouped.agg(
        runs=("final", "size"),
        final_mean=("final", finite_mean),
        final_std=("final", finite_std),
        final_best=("final", "min"),
        steps_to_target=("steps_to_target", "median"),  # a run that never reaches it counts as inf
        seconds_to_target=("seconds_to_target", "median"),
        reached_target=("steps_to_target", lambda x: int(x.map(math.isfinite).sum())),
        diverged=("status", lambda x: int((x == "diverged").sum())),
        errors=("status", lambda x: int((x == "error").sum())),
    )
    if "final_test_accuracy" in final:
        table["test_accuracy_mean"] = grouped["final_test_accuracy"].mean()
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
