"""The ``optbench`` command: a thin click layer over the Python API.

Only click and torch-free modules are imported at the top, so ``optbench --help`` is instant;
torch, pandas and the registries load inside the commands. The library raises typed exceptions
(:mod:`optbench.errors`); :class:`OptbenchGroup` turns them into one line and an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from optbench.errors import OptbenchError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


class OptbenchGroup(click.Group):
    """A group whose errors are one line on stderr and an exit code, never a traceback."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = EXIT_USAGE
        except click.ClickException as exc:
            code = _fail(exc.format_message(), exc.exit_code)
        except OptbenchError as exc:
            code = _fail(str(exc), EXIT_USAGE)
        except click.Abort:
            code = _fail("aborted", 130)
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("OPTBENCH_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            code = _fail(
                f"internal error: {type(exc).__name__}: {first} (OPTBENCH_DEBUG=1 shows the traceback)", EXIT_INTERNAL
            )
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, code: int) -> int:
    click.echo(f"optbench: error: {message}", err=True)
    return code


# Options shared by every command that runs something: defined once, applied with @run_options.
_RUN_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--problem", default="linreg", show_default=True, help="Problem name (see `optbench list`)."),
    click.option("--optimizer", default="gd", show_default=True, help="Optimizer name (see `optbench list`)."),
    click.option("--lr", default=None, help="Learning rate, a positive number [default: the optimizer's]."),
    click.option(
        "--epochs", type=click.IntRange(min=1), default=100, show_default=True, help="Passes over the training set."
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=None,
        help="Examples per step [default: the optimizer's; full batch unless it declares one].",
    ),
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed for data, initialisation and shuffling.",
    ),
    click.option(
        "--opt",
        "opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="Optimizer hyperparameter, e.g. --opt momentum=0.9 (repeatable).",
    ),
    click.option(
        "--problem-opt",
        "problem_opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="Problem option, e.g. --problem-opt n=1000 (repeatable).",
    ),
    click.option(
        "--eval-every",
        type=click.IntRange(min=1),
        default=None,
        help="Also record every K steps (step 0 and epoch ends always are).",
    ),
]


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return plugin_option(func)


def _load_plugin_files(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> None:
    from optbench.plugins import load_file

    for path in paths:
        load_file(path)


plugin_option = click.option(
    "--plugin",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    expose_value=False,
    is_eager=True,  # names from the file must exist before --optimizer/--problem are looked up
    callback=_load_plugin_files,
    help="A Python file whose @register_optimizer/@register_problem add names (repeatable).",
)


def _warn(message: str) -> None:
    click.echo(f"optbench: warning: {message}", err=True)


@click.group(cls=OptbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optbench")
def cli() -> None:
    """Compare optimizers on problems people understand.

    \b
    Examples:
      optbench list
      optbench run --problem linreg --optimizer sgd
      optbench run --problem classification --optimizer torch-adam --lr 0.01 --out adam.parquet
    """


@cli.command()
@run_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Save the table (.parquet or .csv).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def run(
    problem: str,
    optimizer: str,
    lr: str | None,
    epochs: int,
    batch_size: int | None,
    seed: int,
    opts: tuple[str, ...],
    problem_opts: tuple[str, ...],
    eval_every: int | None,
    out: str | None,
    quiet: bool,
) -> int:
    """Run one optimizer on one problem and print a summary."""
    from optbench.options import parse_assignments
    from optbench.results import check_writable, save_results, summarize
    from optbench.runner import execute, prepare

    spec = prepare(
        problem,
        optimizer,
        lr=lr,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        eval_every=eval_every,
        problem_options=parse_assignments(problem_opts, "--problem-opt"),
        hyperparameters=parse_assignments(opts, "--opt"),
    )
    if out is not None:
        check_writable(out)  # before the work, so a bad path costs nothing
    df = execute(spec)
    if out is not None:
        save_results(df, out)
    if not quiet:
        click.echo(summarize(df))
        if out is not None:
            click.echo(f"  saved        {out} ({len(df)} rows)")
    return EXIT_FAILED if (df["status"] == "error").any() else EXIT_OK


@cli.command("list")
@click.argument("pattern", required=False)
@plugin_option
def list_(pattern: str | None) -> None:
    """List problems and optimizers, optionally filtered by a glob PATTERN such as 'torch-*'.

    Plugins are imported to show their descriptions; one that cannot be is reported on stderr.
    """
    from optbench.errors import PluginError
    from optbench.registry import OPTIMIZERS, PROBLEMS

    for title, registry in (("Problems", PROBLEMS), ("Optimizers", OPTIMIZERS)):
        names = registry.names(pattern)
        if not names:
            continue
        click.echo(f"{title}:")
        width = max(len(n) for n in names)
        for name in names:
            try:
                click.echo(f"  {name:<{width}}  {registry.get(name).description}")
            except PluginError:
                click.echo(f"  {name:<{width}}  [cannot be loaded: see the warning below]")
        for message in registry.broken.values():
            _warn(message)
    if pattern and not (PROBLEMS.names(pattern) or OPTIMIZERS.names(pattern)):
        raise click.UsageError(f"no problem or optimizer matches {pattern!r}; try `optbench list` for all names")


@cli.command()
@click.argument("name")
@plugin_option
def describe(name: str) -> None:
    """Describe a problem or optimizer: settings, defaults, batch size and where it comes from."""
    from optbench.errors import PluginError, UnknownNameError
    from optbench.registry import OPTIMIZERS, PROBLEMS, REQUIRED

    found, errors = [], []
    for registry in (PROBLEMS, OPTIMIZERS):
        try:
            found.append(registry.get(name))
        except PluginError as exc:  # e.g. an import path that is an optimizer, not a problem
            errors.append(exc)
        except UnknownNameError:
            continue
    if not found:
        if errors:
            raise errors[-1]
        raise UnknownNameError("problem or optimizer", name, PROBLEMS.names() + OPTIMIZERS.names())
    for entry in found:
        click.echo(f"{entry.name} ({entry.kind})")
        click.echo(f"  {entry.description}")
        click.echo(f"  source      {entry.source}")
        if entry.kind == "optimizer":
            click.echo(f"  batch size  {entry.batch_size or 'full batch'} (default; --batch-size changes it)")
        settings = entry.hyperparameters()
        annotations = entry.annotations()
        title = "hyperparameters" if entry.kind == "optimizer" else "options"
        click.echo(f"  {title}:" if settings else f"  {title}: none")
        rows = [
            (key, annotations.get(key) or ("" if default is None else type(default).__name__), default)
            for key, default in settings.items()
        ]
        key_width = max((len(r[0]) for r in rows), default=0)
        type_width = max((len(r[1]) for r in rows), default=0)
        for key, kind, default in rows:
            shown = "(required)" if default is REQUIRED else repr(default)
            click.echo(f"    {key:<{key_width}}  {kind:<{type_width}}  {shown}")


@cli.command("test-plugin")
@click.argument("name")
@click.option("--lr", default=None, help="Learning rate for the checks [default: the optimizer's].")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=100, show_default=True, help="Budget of the lowers-the-loss checks."
)
@click.option("--opt", "opts", multiple=True, metavar="KEY=VALUE", help="Optimizer hyperparameter (repeatable).")
@plugin_option
def test_plugin(name: str, lr: str | None, epochs: int, opts: tuple[str, ...]) -> int:
    """Run the conformance suite on optimizer NAME (a name or an import path)."""
    from optbench.options import parse_assignments, validate_lr
    from optbench.registry import OPTIMIZERS
    from optbench.testing import check_optimizer, format_checks

    entry = OPTIMIZERS.get(name)
    checks = check_optimizer(
        entry.name,
        lr=None if lr is None else validate_lr(lr),
        epochs=epochs,
        hyperparameters=parse_assignments(opts, "--opt"),
        raise_on_failure=False,
    )
    click.echo(f"{entry.name} ({entry.source})")
    click.echo(format_checks(checks))
    failed = sum(not c.passed for c in checks)
    click.echo(f"{len(checks) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


@cli.command()
@click.option("--config", type=click.Path(dir_okay=False), required=True, help="The matrix, a TOML file.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the baseline (.json).")
@plugin_option
def baseline(config: str, out: str) -> None:
    """Run a matrix of problems x optimizers x settings x seeds and store a quality baseline."""

    from optbench.regression import load_matrix, make_baseline, write_json

    matrix = load_matrix(config)
    if not Path(out).parent.is_dir():
        raise click.BadParameter(f"folder {str(Path(out).parent)!r} does not exist", param_hint="'--out'")
    data = make_baseline(matrix)
    write_json(data, out)
    click.echo(f"baseline of {len(data['cells'])} cells written to {out}")


@cli.command()
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="A file written by `optbench baseline`.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also require the baseline to have been made from this matrix.",
)
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the verdicts as JSON.")
@plugin_option
def check(baseline_path: str, config: str | None, junit_xml: str | None, json_path: str | None) -> int:
    """Rerun a baseline's matrix; exit 1 if a cell got worse, now diverges or reaches its target later."""

    from optbench.regression import (
        BaselineError,
        format_table,
        load_baseline,
        load_matrix,
        run_check,
        verdicts_json,
        write_json,
    )
    from optbench.regression import (
        junit_xml as to_junit,
    )

    stored = load_baseline(baseline_path)
    if config is not None and load_matrix(config) != stored["matrix"]:
        raise BaselineError(
            f"baseline {baseline_path!r} was made from another matrix than {config!r}; "
            "rerun `optbench baseline` to update it"
        )
    for path in (junit_xml, json_path):
        if path is not None and not Path(path).parent.is_dir():
            raise click.BadParameter(f"folder {str(Path(path).parent)!r} does not exist for {path!r}")
    verdicts = run_check(stored)
    click.echo(format_table(verdicts))
    if junit_xml:
        Path(junit_xml).write_text(to_junit(verdicts))
    if json_path:
        write_json(verdicts_json(verdicts), json_path)
    return EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the figures and index.html.")
@click.option(
    "--target",
    type=float,
    default=None,
    help="Objective (loss - f*, or loss) that counts as reached [default: 10% of each run's start].",
)
@click.option("--svg", is_flag=True, help="Also write each figure as SVG.")
@click.option(
    "--animation",
    "animations",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A .gif or .mp4 (from `optbench animate`) to embed in index.html (repeatable).",
)
def report(results: tuple[str, ...], out: str, target: float | None, svg: bool, animations: tuple[str, ...]) -> None:
    """Figures, a summary table and a self-contained index.html from RESULTS (files or folders)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    from optbench.reports import report as make_report

    index = make_report(list(results), out, target=target, svg=svg, animations=animations)
    click.echo(f"report written to {index}")


@cli.command()
@run_options
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="fit.gif, fit.mp4 or fit.html.")
@click.option("--fps", type=click.IntRange(min=1, max=60), default=12, show_default=True, help="Frames per second.")
@click.option(
    "--max-frames",
    type=click.IntRange(min=2),
    default=100,
    show_default=True,
    help="Frames at most (recorded points are subsampled).",
)
def animate(
    problem: str,
    optimizer: str,
    lr: str | None,
    epochs: int,
    batch_size: int | None,
    seed: int,
    opts: tuple[str, ...],
    problem_opts: tuple[str, ...],
    eval_every: int | None,
    out: str,
    fps: int,
    max_frames: int,
) -> None:
    """Animate the fit: the lesson's line, decision regions, or a race (--optimizer gd,torch-sgd,torch-adam)."""
    import matplotlib

    matplotlib.use("Agg")
    from optbench.options import parse_assignments, validate_lr
    from optbench.reports.animation import animate as make_animation
    from optbench.reports.animation import check_output, save

    check_output(out)  # before the work: a bad path or a missing ffmpeg costs nothing
    names = [name.strip() for name in optimizer.split(",") if name.strip()]
    anim = make_animation(
        problem,
        names,
        lr=None if lr is None else validate_lr(lr),
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        eval_every=eval_every,
        problem_options=parse_assignments(problem_opts, "--problem-opt"),
        hyperparameters=parse_assignments(opts, "--opt"),
        max_frames=max_frames,
    )
    save(anim, out, fps=fps)
    click.echo(f"animation written to {out}")


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
    return plugin_option(func)


def _grid(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from optbench.grid import Grid, load_grid_file, parse_shared_opts, parse_values
    from optbench.options import validate_lr

    if params["config"] is not None:
        return load_grid_file(params["config"])
    grid = Grid(
        problems=[p.strip() for p in params["problems"].split(",") if p.strip()],
        optimizers=[o.strip() for o in params["optimizers"].split(",") if o.strip()],
        seeds=parse_values(params["seeds"], "--seeds"),
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        eval_every=params["eval_every"],
        lr=None if params["lr"] is None else [validate_lr(v) for v in parse_values(params["lr"], "--lr")],
        shared_opt=parse_shared_opts(params["opts"]),
        shared_problem_opt=parse_shared_opts(params["problem_opts"], "--problem-opt"),
    )
    return grid, {}


def _sweep_call(params: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The grid (validated), the tuning keys of a TOML file, and the sweep options, before any work."""
    from optbench.plugins import _loaded_files
    from optbench.results import check_writable

    grid, tuning = _grid(params)
    grid.jobs()  # validates names and --opt keys before any work
    check_writable(params["out"])
    progress = params["progress"]
    options = {
        "jobs": params["jobs"],
        "executor": params["executor"],
        "scheduler": params["scheduler"],
        "force": params["force"],
        "vectorize": not params["no_vectorize"],
        "plugin_files": [str(p) for p in _loaded_files],
        "progress": sys.stderr.isatty() if progress is None else progress,
    }
    return grid, tuning, options


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

    from optbench.sweeps import sweep as run_sweep

    grid, _, options = _sweep_call(params)
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

    from optbench.sweeps import tune as run_tune

    grid, tuning, options = _sweep_call(params)
    start = time.perf_counter()
    try:
        table, chosen = run_tune(
            grid,
            params["out"],
            tune_seeds=_seed_list(tuning.get("tune_seeds", params["tune_seeds"]), "--tune-seeds"),
            eval_seeds=_seed_list(tuning.get("eval_seeds", params["eval_seeds"]), "--eval-seeds"),
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
    from optbench.grid import parse_values

    return list(value) if isinstance(value, list) else parse_values(str(value), label)


main = cli
