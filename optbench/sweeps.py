"""Sweeps: many runs, grouped for the vectorized engine, run locally, in processes or on Dask.

Results stream to disk as groups finish (``OUT.parts/``, one file a group), are merged into
``OUT`` at the end or on Ctrl-C, and a rerun of the same sweep skips every run already in them
(matched on a hash of its full configuration, the ``run_key`` column).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optbench.errors import InvalidValueError, OptbenchError
from optbench.grid import Grid, run_key
from optbench.results import load_results, save_results

BATCH_LIMIT = 1000  # runs per vectorized batch (memory grows with it)
SINGLE_CHUNK = 20  # runs per group of one-by-one runs
EXECUTORS = ("local", "dask")


def plan(jobs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups of jobs: one tensor program of the core each (runs that differ in seed and
    hyperparameters only) cut at BATCH_LIMIT runs; runs that will go one by one (an optimizer that
    cannot be stacked, invalid settings) in chunks of SINGLE_CHUNK, so that results stream."""
    from optbench.engine import group_key
    from optbench.optimizers.protocol import is_elementwise

    groups: dict[Any, list[dict[str, Any]]] = {}
    for job, spec in zip(jobs, _specs(jobs), strict=True):
        if isinstance(spec, OptbenchError):
            groups.setdefault("invalid", []).append(job)
        elif not is_elementwise(spec.optimizer, dict(spec.hyperparameters)):
            groups.setdefault(("alone", *group_key(spec)), []).append(job)
        else:
            groups.setdefault(group_key(spec), []).append(job)
    return [
        g[i : i + size]
        for key, g in groups.items()
        for size in [SINGLE_CHUNK if key == "invalid" or key[0] == "alone" else BATCH_LIMIT]
        for i in range(0, len(g), size)
    ]


def _specs(jobs: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """A RunSpec per job (the error where its settings are invalid); prepared once per configuration."""
    import dataclasses

    from optbench.runner import prepare

    cache: dict[str, Any] = {}
    for job in jobs:
        config = run_key({k: v for k, v in job.items() if k != "seed"})
        if config not in cache:
            try:
                cache[config] = prepare(
                    job["problem"],
                    job["optimizer"],
                    seed=0,
                    epochs=job["epochs"],
                    batch_size=job["batch_size"],
                    eval_every=job["eval_every"],
                    problem_options=job["problem_options"],
                    hyperparameters=job["hyperparameters"],
                    device=job.get("device", "cpu"),
                    schedule=job.get("schedule", "constant"),
                    warmup_steps=job.get("warmup_steps", 0),
                )
            except OptbenchError as exc:
                cache[config] = exc
        spec = cache[config]
        yield spec if isinstance(spec, OptbenchError) else dataclasses.replace(spec, seed=job["seed"])


def run_group(jobs: list[dict[str, Any]], plugin_files: Sequence[str] = (), vectorize: bool = True) -> pd.DataFrame:
    """Run one group (in this process or a worker) through the core: stacked where possible."""
    from optbench.plugins import load_file
    from optbench.runner import execute

    for path in plugin_files:
        load_file(path)
    specs = list(_specs(jobs))
    bad = [isinstance(s, OptbenchError) for s in specs]
    ordered = [j for j, b in zip(jobs, bad, strict=True) if not b] + [j for j, b in zip(jobs, bad, strict=True) if b]
    frames = [execute([s for s, b in zip(specs, bad, strict=True) if not b], stack=vectorize)] if not all(bad) else []
    frames += [_error_row(j, str(s)) for j, s, b in zip(jobs, specs, bad, strict=True) if b]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    counts = frame.groupby((frame["step"] == 0).cumsum(), sort=False).size().to_numpy()  # rows per run, in order
    frame["run_key"] = np.repeat([run_key(job) for job in ordered], counts)
    return frame


def _error_row(job: dict[str, Any], message: str) -> pd.DataFrame:
    row = {
        "problem": job["problem"],
        "optimizer": job["optimizer"],
        "seed": job["seed"],
        "lr": job["hyperparameters"].get("lr", math.nan),
        "batch_size": job["batch_size"] or 0,
        "epoch": 0.0,
        "step": 0,
        "loss": math.nan,
        "optimum": math.nan,
        "time_s": 0.0,
        "status": "error",
        "message": message,
    }
    return pd.DataFrame([row])


class Progress:
    """`runs done / total, ETA` on stderr when it is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.start = total, 0, enabled, time.perf_counter()

    def advance(self, runs: int) -> None:
        self.done += runs
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0
        width = 30
        filled = round(width * self.done / max(self.total, 1))
        sys.stderr.write(
            f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} runs, ETA {eta:.0f} s "
        )
        sys.stderr.flush()
        if self.done >= self.total:
            sys.stderr.write("\n")


def _executor(kind: str, jobs_n: int, scheduler: str | None) -> Callable[..., Iterator[pd.DataFrame]]:
    if kind not in EXECUTORS:
        raise InvalidValueError(f"--executor {kind!r} is not valid; valid executors: {', '.join(EXECUTORS)}")
    if kind == "dask":
        if not scheduler:
            raise InvalidValueError("--executor dask needs --scheduler tcp://HOST:PORT (a running Dask scheduler)")
        return lambda groups, files, vectorize: _dask(groups, files, vectorize, scheduler)
    if jobs_n > 1:
        return lambda groups, files, vectorize: _processes(groups, files, vectorize, jobs_n)
    return lambda groups, files, vectorize: (run_group(g, files, vectorize) for g in groups)


def _processes(groups, files, vectorize, n) -> Iterator[pd.DataFrame]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(run_group)(g, files, vectorize) for g in groups)


def _dask(groups, files, vectorize, scheduler) -> Iterator[pd.DataFrame]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise OptbenchError("--executor dask needs the distributed package: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise OptbenchError(f"--scheduler {scheduler!r} cannot be reached: {str(exc).splitlines()[0]}") from None
    try:
        futures = [client.submit(run_group, g, files, vectorize, pure=False) for g in groups]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()


def sweep(
    grid: Grid | None = None,
    out: str | Path | None = None,
    *,
    problems: str | Sequence[str] | None = None,
    optimizers: str | Sequence[str] | None = None,
    lr: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    epochs: int = 100,
    batch_size: int | None = None,
    opt: dict[str, Sequence[Any]] | None = None,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    vectorize: bool = True,
    plugin_files: Sequence[str] = (),
    progress: bool = False,
    extra: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run every run of a grid not already in ``out``; return the whole table (old and new rows).

    The grid is a :class:`~optbench.grid.Grid`, or made from ``problems``, ``optimizers``, ``lr``,
    ``seeds``, ``epochs``, ``batch_size`` and ``opt`` (hyperparameter -> values, for the optimizers
    that take it)::

        df = optbench.sweep(problems="linreg", optimizers=["gd", "torch-sgd"], lr=[0.01, 0.1], seeds=range(10))

    ``extra`` columns (e.g. ``{"phase": "tune"}``) are added to the new rows.
    """
    if grid is None:
        if problems is None or optimizers is None:
            raise InvalidValueError("sweep needs a grid, or problems and optimizers")
        grid = Grid(
            problems=[problems] if isinstance(problems, str) else list(problems),
            optimizers=[optimizers] if isinstance(optimizers, str) else list(optimizers),
            lr=None if lr is None else list(lr),
            seeds=list(seeds),
            epochs=epochs,
            batch_size=batch_size,
            shared_opt={k: list(v) for k, v in (opt or {}).items()},
        )
    all_jobs = grid.jobs()
    run = _executor(executor, jobs, scheduler)
    out_path = Path(out) if out is not None else None
    parts = out_path.with_name(out_path.name + ".parts") if out_path else None
    done: list[pd.DataFrame] = []
    if out_path is not None:
        if force:
            out_path.unlink(missing_ok=True)
            shutil.rmtree(parts, ignore_errors=True)
        done = _finished(out_path, parts)
    finished = set().union(*(set(d["run_key"]) for d in done)) if done else set()
    todo = [j for j in all_jobs if run_key(j) not in finished]
    bar = Progress(len(all_jobs), progress)
    bar.advance(len(all_jobs) - len(todo))
    new: list[pd.DataFrame] = []
    try:
        for frame in run(plan(todo), list(plugin_files), vectorize):
            for key, value in (extra or {}).items():
                frame[key] = value
            new.append(frame)
            if parts is not None:
                parts.mkdir(exist_ok=True)
                save_results(frame, parts / f"part-{frame['run_key'].iloc[0]}.parquet")
            bar.advance(frame["run_key"].nunique())
    finally:  # also on Ctrl-C: what finished is merged into OUT
        table = pd.concat(done + new, ignore_index=True) if done or new else pd.DataFrame()
        if out_path is not None and (new or not out_path.exists()) and len(table):
            save_results(table, out_path)
            shutil.rmtree(parts, ignore_errors=True)
    return table


def _finished(out: Path, parts: Path | None) -> list[pd.DataFrame]:
    frames = []
    if out.exists():
        frames.append(load_results(out))
    if parts is not None and parts.is_dir():
        frames += [load_results(p) for p in sorted(parts.glob("part-*.parquet"))]
    for frame in frames:
        if "run_key" not in frame:
            raise InvalidValueError(
                f"--out {str(out)!r} holds results that are not from a sweep; use --force or another file"
            )
    return frames


SELECT = ("final", "time")


def tune(
    grid: Grid,
    out: str | Path | None = None,
    *,
    tune_seeds: Sequence[int] = (0, 1, 2),
    eval_seeds: Sequence[int] = (100, 101, 102, 103, 104),
    select: str = "final",
    **options: Any,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Fair tuning: every problem x optimizer searches the same grid on ``tune_seeds`` with the same
    budget; the best settings (lowest median final objective, or fewest median steps to target with
    ``select="time"``) are rerun on fresh ``eval_seeds``. Rows carry ``phase`` = tune or eval.
    Returns the table and the chosen settings."""
    import dataclasses

    if select not in SELECT:
        raise InvalidValueError(f"--select {select!r} is not valid; valid: {', '.join(SELECT)}")
    if set(tune_seeds) & set(eval_seeds):
        raise InvalidValueError("--tune-seeds and --eval-seeds overlap; evaluation needs fresh seeds")
    tuned = sweep(dataclasses.replace(grid, seeds=list(tune_seeds)), out, extra={"phase": "tune"}, **options)
    chosen = choose(grid, tuned, list(tune_seeds), select)
    winners = [dict(c["job"], seed=s) for c in chosen for s in eval_seeds]
    table = sweep(_Fixed(winners), out, extra={"phase": "eval"}, **{**options, "force": False})
    return table, chosen


class _Fixed(Grid):
    """A grid that is a given list of jobs (the tuned winners)."""

    def __init__(self, jobs: list[dict[str, Any]]):
        self._jobs = jobs

    def jobs(self) -> list[dict[str, Any]]:
        return self._jobs


def choose(grid: Grid, table: pd.DataFrame, seeds: list[int], select: str) -> list[dict[str, Any]]:
    """Per problem (with its options) and optimizer, the configuration with the best median score."""
    import dataclasses
    import statistics

    from optbench.results import objective, reach

    runs = dict(tuple(table.groupby("run_key", sort=False)))
    scores: dict[str, list[float]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for job in dataclasses.replace(grid, seeds=seeds).jobs():
        rows = runs.get(run_key(job))
        if rows is None:
            continue
        config = {k: v for k, v in job.items() if k != "seed"}
        key = run_key(config)
        configs[key] = config
        values = objective(rows)
        if select == "time":
            score = reach(rows)[0]
        elif rows["status"].iloc[0] != "ok" or not math.isfinite(values.iloc[-1]):
            score = math.inf
        else:
            score = float(values.iloc[-1])
        scores.setdefault(key, []).append(score)
    best: dict[str, tuple[float, str]] = {}
    for key, values in scores.items():
        config = configs[key]
        slot = run_key({"problem": config["problem"], "options": config["problem_options"], "opt": config["optimizer"]})
        median = statistics.median(values)
        if slot not in best or median < best[slot][0]:
            best[slot] = (median, key)
    return [{"job": configs[key], "score": score, "select": select} for score, key in best.values()]
