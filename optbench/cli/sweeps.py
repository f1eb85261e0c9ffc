"""`sweep` and `tune`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from optbench.cli import preflight
from optbench.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    allow_import_paths_option,
    checked,
    cli,
    max_epochs_option,
    memory_option,
    plugin_option,
    pop_settings,
    setting_options,
    threads_option,
    whole_number,
    whole_option,
)
from optbench.errors import InvalidValueError
from optbench.registry import OPTIMIZERS, PROBLEMS
from optbench.results.files import results_file
from optbench.settings import validate
from optbench.settings.validate import MAX_RUNS


def sweep_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The grid flags of `sweep` and `tune`, defined once."""
    options = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            default=None,
            help="A TOML file with the grid (flags below are then not used).",
        ),
        allow_import_paths_option,
        click.option("--problem", "problems", default="linreg", show_default=True, help="Problems, comma-separated."),
        click.option("--optimizer", "optimizers", default="gd", show_default=True, help="Optimizers, comma-separated."),
        click.option("--lr", default=None, help="Learning rates: 0.01,0.1 or 1e-4:1:5 (log-spaced) [default: each's]."),
        click.option("--seeds", default="0", show_default=True, help="Seeds: 0-9, 0,1,2 ..."),
        max_epochs_option,
        click.option(
            "--opt",
            "opts",
            multiple=True,
            metavar="KEY=VALUES",
            help="Hyperparameter grid for the optimizers that take KEY, e.g. momentum=0,0.9.",
        ),
        click.option(
            "--problem-opt",
            "problem_opts",
            multiple=True,
            metavar="KEY=VALUES",
            help="Problem option grid, e.g. shape=blobs,moons.",
        ),
        click.option(
            "--out", type=click.Path(dir_okay=False), required=True, help="The store of runs (.parquet or .csv)."
        ),
        whole_option("--jobs", default="1", show_default=True, help="Local processes (capped at the useful number)."),
        click.option("--executor", default="local", show_default=True, help="local or dask."),
        click.option("--scheduler", default=None, help="Dask scheduler address, tcp://HOST:PORT."),
        click.option(
            "--max-runs",
            callback=checked(whole_number, "--max-runs"),
            default=str(MAX_RUNS),
            show_default=True,
            metavar="N",
            help="Refuse grids of more runs than this (counted before anything is built).",
        ),
        click.option(
            "--force", is_flag=True, help="Rerun every run of the grid; stored results are replaced once all finish."
        ),
        click.option("--no-retry-errors", is_flag=True, help="Keep stored errored runs instead of retrying them."),
        click.option("--no-vectorize", is_flag=True, help="Run one by one (same results, slower)."),
        click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal]."),
    ]
    for option in reversed(options):
        func = option(func)
    return memory_option(threads_option(plugin_option(setting_options(func))))


def _grid(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from optbench.settings.config import load_grid_file
    from optbench.settings.grid import Grid, parse_shared_opts, parse_values

    limit = params["max_runs"]
    settings = pop_settings(params)  # checked by their flags' callbacks; a --config file has its own
    if params["config"] is not None:
        return load_grid_file(params["config"], allow_import_paths=params["allow_import_paths"], limit=limit)
    grid = Grid(
        problems=[p.strip() for p in params["problems"].split(",") if p.strip()],
        optimizers=[o.strip() for o in params["optimizers"].split(",") if o.strip()],
        seeds=parse_values(params["seeds"], "--seeds", limit),
        lr=None if params["lr"] is None else parse_values(params["lr"], "--lr", limit),
        shared_opt=parse_shared_opts(params["opts"], "--opt", limit),
        shared_problem_opt=parse_shared_opts(params["problem_opts"], "--problem-opt", limit),
        **settings,
    )
    return grid, {}


def _sweep_call(params: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The grid (validated), the tuning keys of a TOML file, and the sweep options, before any work."""
    from optbench.registry.plugins import _loaded_files

    results_file(params["out"])  # torch-free checks first: a typo costs nothing
    grid, tuning = _grid(params)
    PROBLEMS.require_known(grid.problems)
    OPTIMIZERS.require_known(grid.optimizers)
    preflight.grid_sizes(grid, params["max_runs"])  # a built-in problem's size, before torch loads

    for registry, names in ((PROBLEMS, grid.problems), (OPTIMIZERS, grid.optimizers)):
        for name in names:
            registry.get(name)  # a plugin or import path that cannot load fails here, before any work

    from optbench.results.io import check_writable
    from optbench.results.store import Store

    check_writable(params["out"], also=Store.added_names(params["out"]))
    validate.runs(grid.count(), params["max_runs"])  # names checked, runs counted: before anything is built
    progress = params["progress"]
    options = {
        "jobs": params["jobs"],
        "executor": params["executor"],
        "scheduler": params["scheduler"],
        "force": params["force"],
        "retry_errors": not params["no_retry_errors"],
        "vectorize": not params["no_vectorize"],
        "plugin_files": [str(p) for p in _loaded_files],
        "progress": sys.stderr.isatty() if progress is None else progress,
        "max_runs": params["max_runs"],
        "max_epochs": params["max_epochs"],
        "note": lambda message: click.echo(f"optbench: {message}", err=True),
    }
    return grid, tuning, options


def _report_sweep(table: Any, out: str, seconds: float) -> int:
    runs = table.groupby("run_key")["status"].first() if len(table) else []
    counts = {s: int((runs == s).sum()) for s in ("ok", "diverged", "error")} if len(table) else {}
    origin = table.attrs.get("runs")
    how = f"; {origin['new']} new, {origin['resumed']} resumed from OUT, {origin['retried']} retried" if origin else ""
    click.echo(
        f"{len(runs)} runs ({counts.get('ok', 0)} ok, {counts.get('diverged', 0)} diverged, "
        f"{counts.get('error', 0)} errors{how}) in {seconds:.2f} s -> {out}"
    )
    print_failures(table)
    return EXIT_FAILED if counts.get("error") else EXIT_OK


def print_failures(table: Any) -> None:
    """Why runs failed: each distinct error message with its count, on stderr."""
    from optbench.results.outcomes import failures

    lines = failures(table)
    if lines:
        click.echo("optbench: runs that failed, by message:", err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)


@cli.command()
@sweep_options
def sweep(**params: Any) -> int:
    """Run a grid of problems x optimizers x hyperparameters x seeds into a store of runs (OUT).

    \b
    Values: lists 0.01,0.1; integer ranges 0-9; log-spaced START:STOP:COUNT (1e-4:1:5).
    OUT keeps every run stored in it; a run already there is skipped (an errored one is retried),
    so rerunning the command resumes it. --force reruns the grid's runs and replaces them at the end.
    """
    import time

    grid, _, options = _sweep_call(params)

    from optbench.studies.sweeps import Interrupted
    from optbench.studies.sweeps import sweep as run_sweep

    start = time.perf_counter()
    try:
        table = run_sweep(grid, params["out"], **options)
    except KeyboardInterrupt as exc:
        return _interrupted(exc if isinstance(exc, Interrupted) else None, params["out"])
    return _report_sweep(table, params["out"], time.perf_counter() - start)


def _interrupted(info: Any, out: str) -> int:
    """A true account of what Ctrl-C left on disk, and only a safe way on."""
    if info is None:  # before the runs, or while saving: say what is on disk now
        from optbench.results.store import Store

        store = Store(out)
        stored, pending = len(store.index()), store.pending()
        waiting = f"; {pending} part file(s) in {store.parts} are merged by the next sweep to it" if pending else ""
        message = (
            f"interrupted; {out} holds {stored} runs{waiting}; to go on, run the same command again "
            "without --force (stored runs are skipped)"
        )
    elif info.forced:
        message = (
            f"interrupted; --force replaces stored results only once every run has finished, so {out} is "
            f"unchanged ({info.saved} of this grid's {info.total} runs stored) and the {info.discarded} runs "
            "of this attempt were discarded"
        )
    else:
        rest = info.total - info.saved
        message = (
            f"interrupted; {info.saved} of {info.total} runs are saved in {out}; to run the other {rest}, "
            "run the same command again without --force (stored runs are skipped)"
        )
    click.echo(f"optbench: {message}", err=True)
    return EXIT_INTERRUPTED


@cli.command()
@sweep_options
@click.option(
    "--tune-seeds", default="0-2", show_default=True, help="Seeds the search runs on (study s: each + 1000 s)."
)
@click.option("--eval-seeds", default="100-104", show_default=True, help="Fresh seeds the winners are rerun on.")
@click.option(
    "--select", default="final", show_default=True, help="Pick by 'final' objective or by 'time' (steps to target)."
)
@click.option(
    "--search",
    "method",
    type=click.Choice(["halton", "grid", "lr"]),
    default="halton",
    show_default=True,
    help="halton or grid: each optimizer's space (optbench describe NAME; lr over the --lr values' range), "
    "explored, refined and evaluated in --studies studies, as bench does; lr: the values given, as they are.",
)
@whole_option("--trials", default="8", show_default=True, help="Settings each study explores before refining.")
@whole_option("--studies", default="3", show_default=True, help="Independent tuning studies (1-10).")
@whole_option(
    "--max-trials", default="24", show_default=True, help="Settings a study tries at most, refinement included."
)
@click.option(
    "--tolerance",
    default="0.01",
    show_default=True,
    metavar="X",
    help="Refinement stops when no step improves the tuning objective by more than this share.",
)
def tune(**params: Any) -> int:
    """Fair tuning: every optimizer's space searched by the same rule and budget, winners rerun on fresh seeds."""
    import time

    tune_seeds = _seed_list(params["tune_seeds"], "--tune-seeds")  # torch-free checks first
    eval_seeds = _seed_list(params["eval_seeds"], "--eval-seeds")
    chosen = _protocol(params)  # checked here, torch-free; built after the names are
    ctx = click.get_current_context()
    flagged = [n for n in ("schedule", "warmup_steps") if ctx.get_parameter_source(n) != ParameterSource.DEFAULT]
    grid, tuning, options = _sweep_call(params)
    from optbench.studies.search import Protocol

    protocol = None if chosen is None else Protocol(**chosen)
    named = tuning.pop("named", None)
    from optbench.studies.suite import FAIR_SCHEDULE

    if protocol is not None and not set(FAIR_SCHEDULE) & set(flagged if named is None else named):
        grid = grid.replace(**FAIR_SCHEDULE)  # the suites' schedule, unless the command names one

    from optbench.studies.search import tune as run_tune
    from optbench.studies.sweeps import Interrupted

    if protocol is not None:
        click.echo(
            f"optbench: {protocol.text()}; schedule {grid.schedule}, {grid.warmup_steps} warm-up steps", err=True
        )
    start = time.perf_counter()
    try:
        table, chosen = run_tune(
            grid,
            params["out"],
            protocol=protocol,
            tune_seeds=tuning.get("tune_seeds") or tune_seeds,
            eval_seeds=tuning.get("eval_seeds") or eval_seeds,
            select=tuning.get("select", params["select"]),
            **options,
        )
    except KeyboardInterrupt as exc:
        return _interrupted(exc if isinstance(exc, Interrupted) else None, params["out"])
    click.echo("chosen settings (rerun on the evaluation seeds):")
    for c in sorted(chosen, key=lambda c: (c["job"]["problem"], c["job"]["optimizer"], c["study"])):
        click.echo(_chosen_line(c, protocol))
    return _report_sweep(table, params["out"], time.perf_counter() - start)


def _chosen_line(choice: dict[str, Any], protocol: Any) -> str:
    from optbench.results.outcomes import shown

    job = choice["job"]
    settings = ", ".join(f"{k}={_short(v)}" for k, v in job["hyperparameters"].items()) or "defaults"
    score = shown(choice["score"], choice["resolution"], 4) if choice["select"] == "final" else f"{choice['score']:.4g}"
    where = f"  {job['problem']:<15} {job['optimizer']:<14}"
    if protocol is None:
        edge = "".join(f"  [{k}={v} is on the edge of the grid: widen it]" for k, v in choice["edges"].items())
        return f"{where} {settings}  (median {choice['select']}: {score}){edge}"
    # refinement searches past every range's edge: a value at the edge of those tried is where it stopped
    edges = f"; at the edge of those tried: {', '.join(choice['edges'])}" if choice["edges"] else ""
    study = f" study {choice['study']}" if protocol.studies > 1 else ""
    state = f"  [{choice['trials']} settings, {choice['state']}{edges}]"
    return f"{where}{study} {settings}  (worst-seed {choice['select']}: {score}){state}"


def _protocol(params: dict[str, Any]) -> dict[str, Any] | None:
    """The tuning protocol's settings the flags ask for (None: --search lr, the values given), checked."""
    from optbench.settings.validate import number

    method, trials, studies = params.pop("method"), params.pop("trials"), params.pop("studies")
    most, tolerance = params.pop("max_trials"), params.pop("tolerance")
    try:
        tolerance = float(tolerance)
    except ValueError:
        raise InvalidValueError(f"--tolerance {tolerance!r} is not a number; expected e.g. 0.01") from None
    tolerance = number(tolerance, "--tolerance")
    if tolerance >= 1:
        raise InvalidValueError(f"--tolerance {tolerance:g} is out of range; expected a number in [0, 1), e.g. 0.01")
    if not 1 <= studies <= 10:
        raise InvalidValueError(f"--studies {studies} is out of range; expected a whole number 1-10")
    if most < trials:
        raise InvalidValueError(f"--max-trials {most} is below --trials {trials}; expected at least {trials}")
    if method == "lr":
        return None
    return {"trials": trials, "method": method, "studies": studies, "tolerance": tolerance, "max_trials": most}


def _short(value: Any) -> str:
    """A setting as the chosen-settings line shows it: 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ",".join(_short(v) for v in value)
    return str(value)


def _seed_list(value: str, label: str) -> list[int]:
    from optbench.settings.grid import parse_values

    return parse_values(value, label)
