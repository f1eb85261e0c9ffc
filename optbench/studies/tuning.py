"""Fair tuning: the same grid and budget for every optimizer, the winners rerun on fresh seeds."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError
from optbench.results import schema
from optbench.results.outcomes import best, diverged, final, on_edge, reach, resolution
from optbench.settings import validate
from optbench.settings.config import SELECT
from optbench.settings.grid import Grid
from optbench.studies.spaces import LR_LIMITS
from optbench.studies.sweeps import keyed, run_jobs


def tune(
    grid: Grid,
    out: str | Path | None = None,
    *,
    tune_seeds: Sequence[int] = (0, 1, 2),
    eval_seeds: Sequence[int] = (100, 101, 102, 103, 104),
    select: str = "final",
    max_runs: int | None = validate.MAX_RUNS,
    max_epochs: int | None = validate.MAX_EPOCHS,
    extend: int = 0,
    **options: Any,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every problem x optimizer searches the same grid on ``tune_seeds`` with the same budget; the
    best settings (lowest median final objective, or fewest median steps to target with
    ``select="time"``) are rerun on fresh ``eval_seeds``. Rows carry ``phase`` = tune or eval.

    With ``extend`` = N, a best learning rate on the edge of those searched is searched past, one
    step of the grid (its outermost ratio) at a time, up to N steps, until the best is interior
    (:func:`past_edges`): a winner is never an artefact of where the grid stopped, unless it still
    sits on the edge after N steps (its ``edges`` say so). A bench searching each optimizer's space
    tunes with :func:`optbench.studies.search.search` instead. Returns the table (both phases) and the
    chosen settings (each with ``eval_keys``: seed -> run key of its evaluation run).
    ``options`` are :func:`run_jobs`'s."""
    if select not in SELECT:
        raise InvalidValueError(f"--select {select!r} is not valid; valid: {', '.join(SELECT)}")
    tune_seeds = [validate.seed(s, "--tune-seeds") for s in tune_seeds]
    eval_seeds = [validate.seed(s, "--eval-seeds") for s in eval_seeds]
    if not tune_seeds or not eval_seeds:
        raise InvalidValueError("--tune-seeds and --eval-seeds need at least one seed each")
    if set(tune_seeds) & set(eval_seeds):
        raise InvalidValueError("--tune-seeds and --eval-seeds overlap; evaluation needs fresh seeds")
    searched = grid.replace(seeds=list(tune_seeds))
    jobs = searched.jobs()
    configs = len(jobs) // len(tune_seeds)
    validate.runs(len(jobs) + configs * len(eval_seeds), max_runs, "the tuning (search and evaluation)")
    validate.epochs(grid.epochs, grid.label("epochs"), max_epochs)
    planned = keyed(jobs, "tune", grid.source)
    tuned = run_jobs(planned, out, **options)
    chosen = mark_edges(choose(planned, tuned, select), planned)
    for _ in range(extend):  # the same rule for every optimizer: a grid step past the edge its best sits on
        beyond = keyed(past_edges(chosen, planned), "tune", grid.source)
        if not beyond:
            break
        validate.runs(
            len(planned) + len(beyond) + configs * len(eval_seeds), max_runs, "the tuning (search and evaluation)"
        )
        planned += beyond
        tuned = schema.concat([tuned, run_jobs(beyond, out, **{**options, "note": None})])
        chosen = mark_edges(choose(planned, tuned, select), planned)
    quiet = {**options, "note": None}  # what OUT holds was said before the search
    evaluated = evaluate(chosen, eval_seeds, grid.source, out, quiet)
    return schema.concat([tuned, evaluated]), chosen


def evaluate(
    chosen: list[dict[str, Any]], eval_seeds: Sequence[int], source: str, out: Any, options: dict[str, Any]
) -> pd.DataFrame:
    """Rerun each choice on the evaluation seeds (a setting chosen twice: once); each choice gains
    ``eval_keys`` (seed -> run key)."""
    jobs = [dict(c["job"], seed=seed) for c in chosen for seed in eval_seeds]
    planned = keyed(jobs, "eval", source)
    for i, choice in enumerate(chosen):
        mine = planned[i * len(eval_seeds) : (i + 1) * len(eval_seeds)]
        choice["eval_keys"] = {job["seed"]: job["run_key"] for job in mine}
    return run_jobs(list({job["run_key"]: job for job in planned}.values()), out, **options)


EDGE_KEYS = ("lr",)  # log-scaled settings searched past an edge (others: their grid is the suite's word)
LR_RANGE = LR_LIMITS  # extension stops here: beyond, a learning rate means a wrong parametrisation


def past_edges(chosen: list[dict[str, Any]], planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each choice whose learning rate sits on the edge of those searched for it: its jobs (every
    tuning seed) one step further out, the step being the ratio of the two outermost values on that
    side (a log grid's own step). Jobs already planned are not planned again."""
    config = ("seed", "run_key", "phase", "config")
    known = {
        schema.key_text({k: v for k, v in job.items() if k not in ("run_key", "phase", "config")}) for job in planned
    }
    beyond = []
    for choice in chosen:
        job = choice["job"]
        slot = [p for p in planned if _same_slot(p, job)]
        for key in EDGE_KEYS:
            if key not in choice.get("edges", {}):
                continue
            tried = sorted({float(p["hyperparameters"][key]) for p in slot if key in p["hyperparameters"]})
            value = float(job["hyperparameters"][key])
            if len(tried) < 2:
                continue
            step = tried[1] / tried[0] if value == tried[0] else tried[-1] / tried[-2]
            new = value / step if value == tried[0] else value * step
            if not LR_RANGE[0] <= new <= LR_RANGE[1]:
                continue
            for seed in sorted({p["seed"] for p in slot if {k: v for k, v in p.items() if k not in config} == job}):
                moved = dict(job, hyperparameters={**job["hyperparameters"], key: new}, seed=seed)
                if schema.key_text(moved) not in known:
                    beyond.append(moved)
    return beyond


def _same_slot(job: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two jobs search for the same problem (with its options) and optimizer."""
    return (job["problem"], job["optimizer"], schema.key_text(job["problem_options"])) == (
        other["problem"],
        other["optimizer"],
        schema.key_text(other["problem_options"]),
    )


def mark_edges(chosen: list[dict[str, Any]], planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``edges`` to each choice: its numeric hyperparameters that came out at the smallest or
    largest of the values searched (:func:`optbench.results.outcomes.on_edge`: the best may lie beyond)."""
    searched: dict[tuple[str, str, str], set[float]] = {}
    for job in planned:
        for key, value in job["hyperparameters"].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                slot = (job["problem"], schema.key_text(job["problem_options"]), job["optimizer"])
                searched.setdefault((*slot, key), set()).add(float(value))
    for choice in chosen:
        job = choice["job"]
        slot = (job["problem"], schema.key_text(job["problem_options"]), job["optimizer"])
        choice["edges"] = {
            key: value
            for key, value in job["hyperparameters"].items()
            if (*slot, key) in searched and on_edge(value, searched[(*slot, key)])
        }
    return chosen


def validation(run: pd.DataFrame) -> float:
    """A run's final validation loss (``val_loss``, on rows held out from training): what
    ``select="validation"`` chooses on; inf for a diverged run."""
    if diverged(run):  # an error row (a setting the optimizer refused) has no val_loss either
        return math.inf
    if "val_loss" not in run or run["val_loss"].isna().all():
        raise InvalidValueError(
            f"select validation: problem {run['problem'].iloc[0]!r} records no val_loss; give it a validation "
            "split (options val_fraction = 0.2: classification, logreg) or select on the training objective"
        )
    values = run["val_loss"][run["val_loss"].map(math.isfinite)]
    return float(values.iloc[-1]) if len(values) else math.inf


def choose(planned: list[dict[str, Any]], table: pd.DataFrame, select: str) -> list[dict[str, Any]]:
    """Per problem (with its options) and optimizer, the configuration with the best median score:
    the final objective (:func:`optbench.results.outcomes.final`, floored at the run's resolution,
    inf for a diverged run), or with ``select="time"`` the steps to the default target. Each choice
    carries its median ``score`` and its runs' median ``resolution`` (how to show a final under it)."""
    runs = dict(tuple(table.groupby("run_key", sort=False)))
    scores, configs, floors = [], {}, {}
    for job in planned:
        rows = runs.get(job["run_key"])
        if rows is None:
            continue
        config = {k: v for k, v in job.items() if k not in ("seed", "run_key", "phase", "config")}
        key = schema.key_text(config)
        configs[key] = config
        slot = schema.key_text({"problem": config["problem"], "options": config["problem_options"]})
        score = reach(rows).steps if select == "time" else validation(rows) if select == "validation" else final(rows)
        scores.append({"slot": slot + "|" + config["optimizer"], "config": key, "score": score})
        floors.setdefault(key, []).append(resolution(rows))
    if not scores:
        return []
    chosen = best(pd.DataFrame(scores), ["slot"], "config", "score")
    floor = {key: statistics.median(values) for key, values in floors.items()}
    return [
        {"job": configs[r.config], "score": r.score, "select": select, "resolution": floor[r.config], "study": 0}
        for r in chosen.itertuples()
    ]


def tuned_rates(
    path: str | Path, problem: str, names: Sequence[str], given: dict[str, str]
) -> tuple[list[float], dict[str, str]]:
    """The learning rate each of ``names`` was chosen at on ``problem`` by a tune result or a bench
    folder (its results.parquet): the rate of its evaluation runs (a bench's first tuning study's).
    Also the problem's options there, as text (``given`` options pick one entry where the results
    hold several), so that what is replayed is what was tuned. A name without evaluation runs, or an
    ambiguous entry, is one line."""
    from optbench.results.io import load_results

    source = Path(path)
    file = source / "results.parquet" if source.is_dir() else source
    if not file.is_file():
        what = (
            "does not exist"
            if not os.path.lexists(source)
            else "is a folder without results.parquet"
            if source.is_dir()
            else "is not a file or a folder"
        )
        raise InvalidValueError(f"--lr-from {str(source)!r} {what}; expected a tune results file or a bench folder")
    table = load_results(file)
    runs = table[(table["problem"] == problem) & (table.get("phase", pd.Series("", index=table.index)) == "eval")]
    if not len(runs):
        raise InvalidValueError(f"--lr-from {str(source)!r} holds no evaluation runs of {problem!r}")
    options = [c for c in runs.columns if c.startswith("problem_") and runs[c].notna().any()]
    for key, text in given.items():
        column = f"problem_{key}"
        if column in runs:
            runs = runs[runs[column].map(lambda v, t=text: _same(v, t))]
    entries = runs[options].drop_duplicates() if options else runs.iloc[:1]
    if len(entries) != 1:
        found = "; ".join(_options_text(row) for row in entries.to_dict("records")) or "none"
        raise InvalidValueError(
            f"--lr-from {str(source)!r}: {len(entries)} entries of {problem!r} match ({found}); "
            "pick one with --problem-opt KEY=VALUE"
        )
    rates = []
    for name in names:
        # a bench's studies may choose several settings: the first study's was evaluated first
        mine = runs.loc[runs["optimizer"] == name, "lr"].dropna().unique()[:1]
        if len(mine) != 1:
            tuned = ", ".join(sorted(runs["optimizer"].unique()))
            raise InvalidValueError(
                f"--lr-from {str(source)!r} has no tuned lr for {name!r} on {problem!r}; it has: {tuned}"
            )
        rates.append(validate.lr(float(mine[0]), f"--lr-from {str(file)!r}: column lr of {name!r} on {problem!r}"))
    from optbench.registry import PROBLEMS

    defaults = PROBLEMS.get(problem).hyperparameters()
    chosen = {k.removeprefix("problem_"): v for k, v in (entries.iloc[0].to_dict() if options else {}).items()}
    return rates, {
        k: _text(v) for k, v in chosen.items() if pd.notna(v) and (k in given or not _same(defaults.get(k), _text(v)))
    }


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _same(stored: Any, text: str) -> bool:
    """Whether a value (a number, text, or a default's tuple) is the one ``text`` gives."""
    if isinstance(stored, list | tuple):
        parts = text.split(",")
        return len(parts) == len(stored) and all(_same(v, p.strip()) for v, p in zip(stored, parts, strict=True))
    try:
        return float(stored) == float(text)
    except (TypeError, ValueError):
        return str(stored) == text


def _options_text(row: dict[str, Any]) -> str:
    return " ".join(f"{k.removeprefix('problem_')}={_text(v)}" for k, v in row.items() if pd.notna(v))
