"""Sweeps: many runs, grouped for the training core, run locally, in processes or on Dask.

Before any work a sweep counts its runs (:data:`optbench.settings.validate.MAX_RUNS`), checks every
configuration (:func:`optbench.core.runner.prepare`) and names every run by its canonical ``run_key``.
Finished runs stream into ``OUT`` (:mod:`optbench.results.store`: part files, merged under a lock), and a
rerun skips every run already stored there (errored ones are retried).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError, OptbenchError, WriteError
from optbench.results.io import check_writable, load_results, schema
from optbench.results.parts import PartWriter
from optbench.results.store import Store
from optbench.settings import declared, validate
from optbench.settings.grid import Grid

BATCH_LIMIT = 1000  # runs per stacked group (memory grows with it)
EXECUTORS = ("local", "dask")
Note = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, with what is on disk: ``saved`` of this sweep's ``total`` runs."""

    def __init__(self, out: str, saved: int, total: int, forced: bool, discarded: int = 0):
        super().__init__(out)
        self.out, self.saved, self.total, self.forced, self.discarded = out, saved, total, forced, discarded


def plan(jobs: list[dict[str, Any]], vectorize: bool = True) -> list[list[dict[str, Any]]]:
    """Groups of jobs: one stacked tensor program each (runs that differ in seed and hyperparameters
    only), cut at BATCH_LIMIT runs. A run that trains alone (an optimizer that cannot be stacked,
    or ``vectorize=False``) is a group of its own, so it is saved as soon as it finishes."""
    from optbench.core.engine import group_key
    from optbench.optimizers.protocol import can_stack

    groups: dict[Any, list[dict[str, Any]]] = {}
    alone: list[list[dict[str, Any]]] = []
    for job, spec in zip(jobs, _specs(jobs), strict=True):
        stacks = not isinstance(spec, OptbenchError) and can_stack(spec.optimizer, dict(spec.hyperparameters))
        if not vectorize or not stacks:
            alone.append([job])
        else:
            groups.setdefault(group_key(spec), []).append(job)
    stacked = [g[i : i + BATCH_LIMIT] for g in groups.values() for i in range(0, len(g), BATCH_LIMIT)]
    return stacked + alone


def _config_of(job: dict[str, Any]) -> str:
    """A job's configuration as text (what its runs share but the seed); :func:`keyed` stores it in the job."""
    if "config" in job:
        return job["config"]
    return json.dumps({k: v for k, v in job.items() if k not in _NOT_CONFIG}, sort_keys=True, default=repr)


_NOT_CONFIG = ("seed", "run_key", "config")


def _specs(jobs: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """A RunSpec per job (the error where its settings are invalid); prepared once per configuration."""
    cache: dict[str, Any] = {}
    for job in jobs:
        config = _config_of(job)
        if config not in cache:
            try:
                cache[config] = prepare_job(job)
            except OptbenchError as exc:
                cache[config] = exc
        spec = cache[config]
        yield spec if isinstance(spec, OptbenchError) else dataclasses.replace(spec, seed=job["seed"])


def prepare_job(job: dict[str, Any], flags: dict[str, str] | None = None) -> Any:
    """The job's :class:`~optbench.core.spec.RunSpec` at seed 0 (raises one line for bad settings)."""
    from optbench.core.runner import prepare

    return prepare(
        job["problem"],
        job["optimizer"],
        seed=0,
        problem_options=job["problem_options"],
        hyperparameters=job["hyperparameters"],
        flags=flags,
        **{name: job[name] for name in declared.NAMES if name in job},
    )


def keyed(jobs: list[dict[str, Any]], phase: str | None = None, source: str = "") -> list[dict[str, Any]]:
    """Every job checked (each configuration once, before any work) and named by its ``run_key``."""
    flags = {"opt": f"{source}: opt", "problem_opt": f"{source}: problem_opt"} if source else None
    by_config: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_config.setdefault(_config_of(job), []).append(i)
    out = [dict(job) for job in jobs]
    for config, indices in by_config.items():
        spec = prepare_job(jobs[indices[0]], flags)  # raises one line for bad settings
        seeds = [jobs[i]["seed"] for i in indices]
        for i, key in zip(indices, schema.seed_keys(spec, seeds, phase), strict=True):
            out[i] |= {"run_key": key, "config": config} | ({} if phase is None else {"phase": phase})
    return out


def run_group(jobs: list[dict[str, Any]], plugin_files: Sequence[str] = (), vectorize: bool = True) -> pd.DataFrame:
    """Run one group (in this process or a worker) through the core; rows carry run_key (and phase)."""
    from optbench.core.runner import execute
    from optbench.registry.plugins import load_file

    for path in plugin_files:
        load_file(path)
    specs = list(_specs(jobs))
    bad = [isinstance(s, OptbenchError) for s in specs]
    ordered = [j for j, b in zip(jobs, bad, strict=True) if not b] + [j for j, b in zip(jobs, bad, strict=True) if b]
    frames = [execute([s for s, b in zip(specs, bad, strict=True) if not b], stack=vectorize)] if not all(bad) else []
    frames += [_error_row(j, str(s)) for j, s, b in zip(jobs, specs, bad, strict=True) if b]
    frame = schema.concat(frames)
    counts = frame.groupby((frame["step"] == 0).cumsum(), sort=False).size().to_numpy()  # rows per run, in order
    identity = {"run_key": [job["run_key"] for job in ordered]}
    if "phase" in ordered[0]:
        identity["phase"] = [job["phase"] for job in ordered]
    for column, values in identity.items():
        frame[column] = pd.Series(values).repeat(counts).to_numpy()
    return schema.with_roles(frame, dict.fromkeys(identity, schema.IDENTITY))


def _error_row(job: dict[str, Any], message: str) -> pd.DataFrame:
    """The ``error`` row of a job whose settings could not even be prepared (in a worker): its names,
    seed, lr and every run setting as given (defaults where the job has none)."""
    run = declared.defaults() | {name: job[name] for name in declared.NAMES if name in job}
    row = {
        "problem": job["problem"],
        "optimizer": job["optimizer"],
        "seed": job["seed"],
        "lr": job["hyperparameters"].get("lr", math.nan),
        **{k: schema.table_value(v) for k, v in declared.columns(run | {"batch_size": run["batch_size"] or 0}).items()},
        "epoch": 0.0,
        "step": 0,
        "loss": math.nan,
        "optimum": math.nan,
        "time_s": 0.0,
        "batch_runs": 1,
        "threads": 0,  # nothing was timed
        "status": "error",
        "message": message,
    }
    return schema.label_table(pd.DataFrame([row]), settings=("problem", "optimizer", "lr", *declared.NAMES))


class Progress:
    """A bar on stderr when it is a terminal (tqdm): runs done of the grid, with a rate and an ETA
    from the runs trained in this call only (runs already in OUT count as done from the start, never
    as speed). Stacked runs finish together, so the bar moves a group at a time."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def start(self, done: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, initial=done, unit="run", desc="sweep", file=sys.stderr, leave=False, mininterval=0
            )  # every group redraws it: groups are few

    def advance(self, runs: int) -> None:
        if self.bar is not None:
            self.bar.update(runs)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_executor(kind: str, scheduler: str | None) -> None:
    """The executor's name and, for dask, that a scheduler is named (before OUT is read or anything runs)."""
    if kind not in EXECUTORS:
        raise InvalidValueError(f"--executor {kind!r} is not valid; valid executors: {', '.join(EXECUTORS)}")
    if kind == "dask" and not scheduler:
        raise InvalidValueError("--executor dask needs --scheduler tcp://HOST:PORT (a running Dask scheduler)")


def _executor(kind: str, jobs_n: int, scheduler: str | None) -> Callable[..., Iterator[pd.DataFrame]]:
    """How groups run (``kind`` and ``scheduler`` checked already: :func:`check_executor`)."""
    if kind == "dask":
        return lambda groups, files, vectorize: _dask(groups, files, vectorize, str(scheduler))
    if jobs_n > 1:
        return lambda groups, files, vectorize: _processes(groups, files, vectorize, jobs_n)
    return lambda groups, files, vectorize: (run_group(g, files, vectorize) for g in groups)


def _processes(groups, files, vectorize, n) -> Iterator[pd.DataFrame]:
    from joblib import Parallel, delayed

    # in submission order: the table comes out as one process makes it (a bootstrap over seeds reads its order)
    parallel = Parallel(n_jobs=n, backend="loky", return_as="generator")
    yield from parallel(delayed(_in_worker)(g, files, vectorize, _worker_settings(n)) for g in groups)


def _worker_settings(n: int) -> dict[str, str]:
    """Each of ``n`` workers' share of the cores (a large group's threads stay within it), and this
    process's OPTBENCH_* settings as they are now: a reused worker keeps the environment it was started with."""
    from optbench.core.threads import SHARE_ENV, cores

    settings = {k: v for k, v in os.environ.items() if k.startswith("OPTBENCH_")}
    settings[SHARE_ENV] = str(max(1, cores() // n))
    return settings


class SharedPool:
    """``n`` worker processes that several :func:`run_jobs` calls share at once (a bench's problems, a
    thread each, so that one problem's bookkeeping between its search rounds overlaps another's
    training). Each call's groups still come back in its submission order. :meth:`stop` (Ctrl-C, or
    another problem's error) makes every call stop at its next finished group, as Ctrl-C would, and
    cancels what it had queued."""

    def __init__(self, n: int):
        self.n, self.stopped = n, threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def run(self, groups: list[list[dict[str, Any]]], files: list[str], vectorize: bool) -> Iterator[pd.DataFrame]:
        from optbench.private_apis import loky_executor

        executor = loky_executor(self.n)
        settings = _worker_settings(self.n)
        futures = [executor.submit(_in_worker, group, files, vectorize, settings) for group in groups]
        try:
            for future in futures:
                if self.stopped.is_set():
                    raise KeyboardInterrupt
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _in_worker(group, files, vectorize, settings: dict[str, str]) -> pd.DataFrame:
    """A group in a worker process, which outlives the call (loky reuses it): with the caller's
    OPTBENCH_* settings (an epoch scale set after the worker started would be missed), and with the
    registries as they were before, so that the next call's plugin files load into a clean registry
    (two benches' files may register one name from two paths)."""
    from optbench.registry import OPTIMIZERS, PROBLEMS
    from optbench.registry.plugins import forget_files, loaded_files

    for key in [k for k in os.environ if k.startswith("OPTBENCH_") and k not in settings]:
        del os.environ[key]
    os.environ.update(settings)
    before = loaded_files()
    with OPTIMIZERS.snapshot(), PROBLEMS.snapshot():
        try:
            return run_group(group, files, vectorize)
        finally:
            forget_files(before)


def _dask(groups, files, vectorize, scheduler) -> Iterator[pd.DataFrame]:
    try:
        from distributed import Client
    except ImportError:
        raise OptbenchError("--executor dask needs the distributed package: pip install 'dask[distributed]'") from None
    _refuse_unreachable(scheduler)
    try:
        client = Client(scheduler, timeout="5s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise OptbenchError(f"--scheduler {scheduler!r} cannot be reached: {str(exc).splitlines()[0]}") from None
    try:
        futures = [client.submit(run_group, g, files, vectorize, pure=False) for g in groups]
        for future in futures:  # in submission order, as one process makes the table
            yield future.result()
    finally:
        client.close()


def _refuse_unreachable(scheduler: str) -> None:
    """A refused TCP connection is known at once; dask's Client would retry it for its whole timeout."""
    import socket
    from urllib.parse import urlsplit

    try:
        address = urlsplit(scheduler)
        host, port = address.hostname, address.port
    except ValueError:
        return  # not a URL: dask's own message says what is wrong with it
    if address.scheme != "tcp" or not host or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise OptbenchError(f"--scheduler {scheduler!r} cannot be reached: {exc.strerror or exc}") from None


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
    retry_errors: bool = True,
    vectorize: bool = True,
    plugin_files: Sequence[str] = (),
    progress: bool = False,
    max_runs: int | None = validate.MAX_RUNS,
    max_epochs: int | None = validate.MAX_EPOCHS,
    note: Note | None = None,
    phase: str | None = None,
) -> pd.DataFrame:
    """Run every run of a grid not already stored in ``out``; return this grid's runs (old and new rows).

    The grid is a :class:`~optbench.settings.grid.Grid`, or made from ``problems``, ``optimizers``, ``lr``,
    ``seeds``, ``epochs``, ``batch_size`` and ``opt`` (hyperparameter -> values, for the optimizers
    that take it)::

        df = optbench.sweep(problems="linreg", optimizers=["gd", "torch-sgd"], lr=[0.01, 0.1], seeds=range(10))

    ``out`` is a store of runs (:mod:`optbench.results.store`): runs of other grids in it are kept; runs
    that errored are retried unless ``retry_errors=False``; ``force=True`` reruns every run of the
    grid and replaces their stored results once all have finished. More than ``max_runs`` runs or
    ``max_epochs`` epochs is refused before any work (None: no limit). ``phase`` (e.g. ``"tune"``)
    is an identity column. ``note`` receives one-line notes (what ``out`` held, capped ``jobs``).
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
    validate.runs(grid.count(), max_runs)
    validate.epochs(grid.epochs, grid.label("epochs"), max_epochs)
    planned = keyed(grid.jobs(), phase, grid.source)
    return run_jobs(
        planned,
        out,
        jobs=jobs,
        executor=executor,
        scheduler=scheduler,
        force=force,
        retry_errors=retry_errors,
        vectorize=vectorize,
        plugin_files=plugin_files,
        progress=progress,
        note=note,
    )


def run_jobs(
    planned: list[dict[str, Any]],
    out: str | Path | None,
    *,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    retry_errors: bool = True,
    vectorize: bool = True,
    plugin_files: Sequence[str] = (),
    progress: bool = False,
    note: Note | None = None,
    pool: SharedPool | None = None,
) -> pd.DataFrame:
    """Run keyed jobs (:func:`keyed`) that ``out`` does not hold yet; see :func:`sweep`. With ``pool``,
    the groups run in its workers (``jobs`` and ``executor`` unread) and no bar is drawn: other calls
    share them."""
    note = note or (lambda message: None)
    check_executor(executor, scheduler)
    store = None
    todo = planned
    if out is not None:
        check_writable(out, also=Store.added_names(out))
        Store.check_places(out)
        store = Store(out)
        store.check()
        todo = _todo(store, planned, force, retry_errors, note)
    groups = plan(todo, vectorize)
    if pool is not None:
        run, progress = pool.run, False
    else:
        workers = validate.jobs(jobs, len(groups), os.cpu_count()) if executor == "local" else jobs
        if workers < jobs:
            note(f"--jobs {jobs}: starting {workers} process(es), as many as there are groups of runs and CPUs to use")
        run = _executor(executor, workers, scheduler)
    bar = Progress(len(planned), progress)
    bar.start(len(planned) - len(todo))
    counts = {"new": len(todo) - len(retried := _retried(store, todo)), "resumed": len(planned) - len(todo)}
    counts["retried"] = len(retried)
    if store is None:
        frames = []
        for frame in run(groups, list(plugin_files), vectorize):
            frames.append(frame)
            bar.advance(frame["run_key"].nunique())
        bar.close()
        return _counted(schema.concat(frames), counts)
    staged = store.staging() if force else None
    writer = PartWriter(store, staged)
    try:
        _stream(run(groups, list(plugin_files), vectorize), writer, bar)
        writer.close()
        bar.close()
    except KeyboardInterrupt:
        bar.close()
        writer.close(raise_errors=False)
        raise _interrupted(store, planned, staged, writer.runs) from None
    except WriteError as exc:
        writer.close(raise_errors=False)
        raise WriteError(f"{exc}; every run finished before it is kept in {store.parts}, rerun to resume") from None
    merged = store.merge(staged)
    table = merged if merged is not None else load_results(store.out)
    keys = {job["run_key"] for job in planned}
    if set(table["run_key"].unique()) <= keys:
        return _counted(table, counts)
    return _counted(schema.concat([table[table["run_key"].isin(keys)]]), counts)


def _retried(store: Store | None, todo: list[dict[str, Any]]) -> set[str]:
    """Keys of the runs to do that OUT holds as errored: they run again."""
    if store is None or not todo:
        return set()
    stored = store.index()
    return {job["run_key"] for job in todo if stored.get(job["run_key"]) == "error"}


def _counted(table: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    """Say in ``table.attrs["runs"]`` how many of its runs were new, resumed (already in OUT) and retried."""
    table.attrs["runs"] = counts
    return table


def _stream(frames: Iterator[pd.DataFrame], writer: PartWriter, bar: Progress) -> None:
    """Hand each finished group to the writer (no reference kept: the writer owns it)."""
    for frame in frames:
        runs = frame["run_key"].nunique()
        writer.put(frame)
        bar.advance(runs)


def _todo(
    store: Store, planned: list[dict[str, Any]], force: bool, retry_errors: bool, note: Note
) -> list[dict[str, Any]]:
    """The jobs ``store`` does not hold (all of them with ``force``), and a note of what it holds."""
    stored = store.index()
    if not stored:
        return planned
    keys = {job["run_key"] for job in planned}
    ours = keys & stored.keys()
    errored = {k for k in ours if stored[k] == "error"}
    retried = errored if retry_errors and not force else set()
    held = [f"{len(ours) - len(retried)} of this grid" + ("" if force else " (skipped)")]
    if retried:
        held.append(f"{len(retried)} errored of this grid (retried)")
    elif errored and not force:
        held[0] += f", {len(errored)} of them errored (kept: --no-retry-errors)"
    if len(stored) > len(ours):
        held.append(f"{len(stored) - len(ours)} of other grids (kept: a sweep adds to OUT and never removes runs)")
    note(f"{store.out} holds {len(stored)} runs: {'; '.join(held)}")
    if force:
        note(f"--force: every run of this grid reruns; stored results are replaced only once all {len(keys)} finish")
        return planned
    finished = ours - retried
    return [job for job in planned if job["run_key"] not in finished]


def _interrupted(store: Store, planned: list[dict[str, Any]], staged: Path | None, new_runs: int) -> Interrupted:
    """Make what finished safe (merge it, or discard a forced attempt) and say exactly what is on disk."""
    keys = {job["run_key"] for job in planned}
    if staged is not None:
        store.discard(staged)
        saved = len(keys & store.index().keys())
        return Interrupted(str(store.out), saved, len(keys), forced=True, discarded=new_runs)
    store.merge()
    saved = len(keys & {k for k, s in store.index().items()})
    return Interrupted(str(store.out), saved, len(keys), forced=False)
