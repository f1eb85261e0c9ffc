"""`sweep` and `tune`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from optbench.cli import preflight
from optbench.cli.app import EXIT_FAILED, EXIT_OK, cli, core_options, plugin_option
from optbench.options import validate_device_name
from optbench.paths import results_file
from optbench.registry import OPTIMIZERS, PROBLEMS


def sweep_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The grid flags of `sweep` and `tune`, defined once."""
    options = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            default=None,
            help="A TOML file with the grid (flags below are then not used).",
        ),
        click.option("--problem", "problems", default="linreg", show_default=True, help="Problems, comma-separated."),
        click.option("--optimizer", "optimizers", default="gd", show_default=True, help="Optimizers, comma-separated."),
        click.option("--lr", default=None, help="Learning rates: 0.01,0.1 or 1e-4:1:5 (log-spaced) [default: each's]."),
        click.option("--seeds", default="0", show_default=True, help="Seeds: 0-9, 0,1,2 ..."),
        click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=None),
        click.option("--eval-every", type=click.IntRange(min=1), default=None),
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
        click.option("--out", type=click.Path(dir_okay=False), required=True, help="Results (.parquet or .csv)."),
        click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Local processes."),
        click.option("--executor", default="local", show_default=True, help="local or dask."),
        click.option("--scheduler", default=None, help="Dask scheduler address, tcp://HOST:PORT."),
        click.option("--force", is_flag=True, help="Rerun everything instead of resuming."),
        click.option("--no-vectorize", is_flag=True, help="Run one by one (same results, slower)."),
        click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal]."),
    ]
    for option in reversed(options):
        func = option(func)
    return plugin_option(core_options(func))


def _grid(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The grid of the flags or of ``--config``, every value parsed and range-checked; torch-free."""
    from optbench.grid import Grid, load_grid_file, parse_shared_opts, parse_values
    from optbench.options import validate_lr

    if params["config"] is not None:
        return load_grid_file(params["config"])
    preflight.core(params)
    grid = Grid(
        problems=preflight.split_names(params["problems"]),
        optimizers=preflight.split_names(params["optimizers"]),
        seeds=parse_values(params["seeds"], "--seeds"),
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        eval_every=params["eval_every"],
        device=params["device"],
        schedule=params["schedule"],
        warmup_steps=params["warmup_steps"],
        lr=None if params["lr"] is None else [validate_lr(v) for v in parse_values(params["lr"], "--lr")],
        shared_opt=parse_shared_opts(params["opts"]),
        shared_problem_opt=parse_shared_opts(params["problem_opts"], "--problem-opt"),
    )
    return grid, {}


def _checked_grid(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Everything the flags and the file say that can be checked before torch loads: values, names, --out."""
    grid, tuning = _grid(params)
    grid.device = validate_device_name(grid.device)  # its spelling; whether that GPU exists needs torch
    preflight.known(PROBLEMS, grid.problems)
    preflight.known(OPTIMIZERS, grid.optimizers)
    results_file(params["out"])
    return grid, tuning


def _sweep_options(grid: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The sweep options, once the grid's device exists and its runs are valid (this imports torch)."""
    from optbench.plugins import _loaded_files
    from optbench.runner import validate_device

    grid.device = validate_device(grid.device)
    grid.jobs()  # validates hyperparameter names and --opt keys before any work
    progress = params["progress"]
    return {
        "jobs": params["jobs"],
        "executor": params["executor"],
        "scheduler": params["scheduler"],
        "force": params["force"],
        "vectorize": not params["no_vectorize"],
        "plugin_files": [str(p) for p in _loaded_files],
        "progress": sys.stderr.isatty() if progress is None else progress,
    }


def _report_sweep(table: Any, out: str, seconds: float, new_rows: int | None = None) -> int:
    runs = table.groupby("run_key")["status"].first() if len(table) else []
    counts = {s: int((runs == s).sum()) for s in ("ok", "diverged", "error")} if len(table) else {}
    click.echo(
        f"{len(runs)} runs ({counts.get('ok', 0)} ok, {counts.get('diverged', 0)} diverged, "
        f"{counts.get('error', 0)} errors) in {seconds:.2f} s -> {out}"
    )
    return EXIT_FAILED if counts.get("error") else EXIT_OK


@cli.command()
@sweep_options
def sweep(**params: Any) -> int:
    """Run a grid of problems x optimizers x hyperparameters x seeds into one results table.

    \b
    Values: lists 0.01,0.1; integer ranges 0-9; log-spaced START:STOP:COUNT (1e-4:1:5).
    Finished runs are skipped when the same command runs again (resume); --force reruns all.
    """
    import time

    grid, _ = _checked_grid(params)
    options = _sweep_options(grid, params)
    from optbench.sweeps import sweep as run_sweep

    start = time.perf_counter()
    try:
        table = run_sweep(grid, params["out"], **options)
    except KeyboardInterrupt:
        return _interrupted(params["out"])
    return _report_sweep(table, params["out"], time.perf_counter() - start)


def _interrupted(out: str) -> int:
    click.echo(
        f"optbench: interrupted; finished runs are saved in {out}: run the same command again to resume", err=True
    )
    return 130


@cli.command()
@sweep_options
@click.option("--tune-seeds", default="0-2", show_default=True, help="Seeds the grid is searched on.")
@click.option("--eval-seeds", default="100-104", show_default=True, help="Fresh seeds the winners are rerun on.")
@click.option(
    "--select", default="final", show_default=True, help="Pick by 'final' objective or by 'time' (steps to target)."
)
def tune(**params: Any) -> int:
    """Fair tuning: the same lr grid and budget for every optimizer, winners rerun on fresh seeds."""
    import time

    grid, tuning = _checked_grid(params)
    tune_seeds = _seed_list(tuning.get("tune_seeds", params["tune_seeds"]), "--tune-seeds")
    eval_seeds = _seed_list(tuning.get("eval_seeds", params["eval_seeds"]), "--eval-seeds")
    options = _sweep_options(grid, params)
    from optbench.sweeps import tune as run_tune

    start = time.perf_counter()
    try:
        table, chosen = run_tune(
            grid,
            params["out"],
            tune_seeds=tune_seeds,
            eval_seeds=eval_seeds,
            select=tuning.get("select", params["select"]),
            **options,
        )
    except KeyboardInterrupt:
        return _interrupted(params["out"])
    click.echo("chosen settings (rerun on the evaluation seeds):")
    for c in chosen:
        job = c["job"]
        settings = ", ".join(f"{k}={v}" for k, v in job["hyperparameters"].items()) or "defaults"
        click.echo(
            f"  {job['problem']:<15} {job['optimizer']:<14} {settings}  (median {c['select']}: {c['score']:.4g})"
        )
    return _report_sweep(table, params["out"], time.perf_counter() - start)


def _seed_list(value: Any, label: str) -> list[int]:
    from optbench.errors import InvalidValueError
    from optbench.grid import parse_values

    seeds = list(value) if isinstance(value, list) else parse_values(str(value), label)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise InvalidValueError(f"{label} {value!r}: expected whole numbers >= 0, e.g. 0-9")
    return seeds
