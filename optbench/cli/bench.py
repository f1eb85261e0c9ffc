"""`bench`: a fair verdict on new optimizers against baselines over a suite (see :mod:`optbench.studies.bench`)."""

from __future__ import annotations

import sys
from typing import Any

import click

from optbench.cli import preflight
from optbench.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    allow_import_paths_option,
    cli,
    memory_option,
    plugin_option,
    threads_option,
)
from optbench.cli.sweeps import print_failures
from optbench.settings.options import validate_device_name


@cli.command()
@click.option("--optimizer", "optimizers", required=True, help="Candidates, comma-separated (names or import paths).")
@click.option(
    "--baselines",
    default=None,
    help="Baselines, comma-separated [default: the suite's, else torch-sgd-momentum,torch-adam,torch-adamw; "
    "gd, the lesson's, only when asked].",
)
@click.option("--suite", default="quick", show_default=True, help="quick, standard, lm, or a suite .toml file.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for leaderboard.md, leaderboard.csv, comparisons.csv, tunability.csv, results.parquet, "
    "runs/ (a rerun resumes from it) and report/.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Local processes [default: one per core this process may use; the results are the same with 1].",
)
@click.option("--executor", default="local", show_default=True, help="local or dask.")
@click.option("--scheduler", default=None, help="Dask scheduler address, tcp://HOST:PORT.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
@click.option("--no-report", is_flag=True, help="Skip the HTML report (the leaderboard and results are still written).")
@allow_import_paths_option
@plugin_option
@threads_option
@memory_option
def bench(**params: Any) -> int:
    """Tune every optimizer the same way on each problem of a suite, rerun the winners on fresh seeds,
    and print a leaderboard with 95% intervals and paired-test verdicts against each baseline.

    \b
    Example:
      optbench bench --optimizer torch-nadam,torch-radam --suite quick --out bench/
    """
    from pathlib import Path

    from optbench.registry import OPTIMIZERS, canonical_name

    candidates = [canonical_name(n) for n in preflight.split_names(params["optimizers"])]
    baselines = [canonical_name(n) for n in preflight.split_names(params["baselines"] or "")]
    OPTIMIZERS.require_known([*candidates, *baselines])  # before torch loads
    preflight.suite(params["suite"])
    validate_device_name(params["device"])
    from optbench.studies.suite import check_sizes, load_suite

    suite = load_suite(params["suite"], allow_import_paths=params["allow_import_paths"])
    check_sizes(suite)  # the built-in problems' sizes, before torch loads too

    from optbench.core.spec import validate_device
    from optbench.registry.plugins import _loaded_files
    from optbench.studies.bench import DEFAULT_BASELINES, to_markdown
    from optbench.studies.bench import bench as run_bench
    from optbench.studies.board import attached

    for name in [*candidates, *baselines]:
        OPTIMIZERS.get(name)  # an import path or a plugin that cannot load fails here, before any work
    baselines = baselines or list(suite.baselines or DEFAULT_BASELINES)
    params["baselines"] = ",".join(baselines)  # the command line the page records names them
    progress = params["progress"]
    if suite.description and (sys.stderr.isatty() if progress is None else progress):  # with the progress bar:
        problems = f"{len(suite.entries)} problem{'s' if len(suite.entries) != 1 else ''}"  # what it is and,
        click.echo(f"optbench: suite {suite.name!r} ({problems}): {suite.description}", err=True)  # its time
    command = _command_line(params)
    try:
        results, board = run_bench(
            candidates,
            baselines,
            suite,
            params["out"],
            command=command,
            device=validate_device(params["device"]),
            jobs=params["jobs"] or _cores(),
            executor=params["executor"],
            scheduler=params["scheduler"],
            plugin_files=[str(p) for p in _loaded_files],
            progress=sys.stderr.isatty() if progress is None else progress,
        )
    except KeyboardInterrupt:
        return _interrupted(Path(params["out"]), command)
    page = attached(board).get("page")
    if page is not None and not params["no_report"]:  # the page: a view of the verdict the study handed over
        from optbench.reports.bench_page import write_page

        write_page(params["out"], page, jobs=params["jobs"] or _cores())
    click.echo(to_markdown(board, suite, candidates, baselines))
    report = "" if params["no_report"] else ", report/index.html"
    click.echo(f"written: {Path(params['out']) / 'leaderboard.md'}, leaderboard.csv, results.parquet{report}")
    print_failures(results)
    failed = "status" in results and bool((results["status"] == "error").any())
    return EXIT_FAILED if failed else EXIT_OK  # as sweep: a run that raised is exit 1


def _cores() -> int:
    from optbench.core.threads import cores

    return cores()


def _interrupted(out: Any, command: str) -> int:
    """What Ctrl-C left on disk (each problem's runs are a store under OUT/runs/) and the command that
    goes on from there."""
    from optbench.results.store import Store

    folder = out / "runs"
    names = {p.name.removesuffix(".parts") for p in folder.glob("*.parquet*")} if folder.is_dir() else set()
    counts = [Store(folder / name).counts() for name in sorted(names) if name.endswith(".parquet")]
    merged, waiting, parts = (sum(c[i] for c in counts) for i in range(3))
    problems = f"{len(counts)} problem{'s' if len(counts) != 1 else ''}"
    saved = f"{merged} finished runs of {problems} are merged into the stores in {folder}"
    if waiting:
        saved += f" and {waiting} more wait in {parts} part file(s) beside them (the next run merges them)"
    saved = saved if merged or waiting else "no run had finished"
    click.echo(f"optbench: interrupted; {saved}; to go on, run the same command again (stored runs skipped):", err=True)
    click.echo(f"  {command}", err=True)
    return EXIT_INTERRUPTED


def _command_line(params: dict[str, Any]) -> str:
    """The command as a user would retype it (what the page and leaderboard record)."""
    import shlex

    from optbench.registry.plugins import _loaded_files

    words = ["optbench", "bench", "--optimizer", params["optimizers"], "--baselines", params["baselines"]]
    words += ["--suite", params["suite"], "--out", str(params["out"])]
    words += [w for p in _loaded_files for w in ("--plugin", str(p))]
    if params["device"] != "cpu":
        words += ["--device", params["device"]]
    return shlex.join(words)
