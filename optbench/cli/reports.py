"""`report` and `animate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from optbench.cli import preflight
from optbench.cli.app import cli, run_options, run_settings
from optbench.errors import ResultsFileError
from optbench.results.files import animation_file


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
    for path in results:  # before seaborn and torch load
        if not Path(path).exists():
            raise ResultsFileError(f"results {str(Path(path))!r} do not exist")
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    from optbench.reports import report as make_report

    index = make_report(list(results), out, target=target, svg=svg, animations=animations)
    click.echo(f"report written to {index}")


def _rates(params: dict[str, Any], names: list[str]) -> list[float] | None:
    """``--lr A,B,...``: one learning rate per optimizer, in ``--optimizer``'s order (else None: one
    shared ``--lr``, checked as every command checks it)."""
    text = params["lr"]
    if text is None or "," not in text:
        return None
    from optbench.settings.validate import lr

    parts = [p.strip() for p in text.split(",")]
    if len(parts) != len(names):
        raise click.UsageError(
            f"--lr {text!r} gives {len(parts)} learning rates for {len(names)} optimizers; give one for all, "
            "or one per optimizer in --optimizer's order"
        )
    params["lr"] = None
    return [lr(p, "--lr") for p in parts]


@cli.command()
@run_options
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="fit.gif, fit.mp4 or fit.html.")
@click.option(
    "--lr-from",
    type=click.Path(),
    default=None,
    help="Replay each optimizer's chosen setting from a bench (its folder) or tune (its results): every tuned "
    "value, the problem's options, the schedule and the budget, at its first evaluation seed unless --seed.",
)
@click.option("--fps", type=click.IntRange(min=1, max=60), default=12, show_default=True, help="Frames per second.")
@click.option(
    "--max-frames",
    type=click.IntRange(min=2),
    default=100,
    show_default=True,
    help="Frames at most (recorded points are subsampled).",
)
def animate(**params: Any) -> None:
    """Animate the fit: the lesson's line, decision regions, or a race (--optimizer gd,torch-sgd,torch-adam);
    on a 2-D test function (rosenbrock, beale, himmelblau, rastrigin), each optimizer's path over its contours.
    --lr A,B,... gives each optimizer its own learning rate (a fair race), in --optimizer's order;
    --lr-from BENCH_FOLDER replays the runs a bench or tune evaluated each one's chosen setting with."""
    out, fps, max_frames = params.pop("out"), params.pop("fps"), params.pop("max_frames")
    names = preflight.split_names(params.pop("optimizer"))
    rates = _rates(params, names)  # --lr 0.002,0.1: one learning rate per optimizer, a fair race
    source = params.pop("lr_from")
    if source is not None and (rates is not None or params["lr"] is not None):
        raise click.UsageError("--lr and --lr-from both give learning rates; give one of them")
    if source is not None and params["opts"]:
        raise click.UsageError("--opt and --lr-from both give hyperparameters; --lr-from replays the bench's")
    preflight.run_options(params, names)
    animation_file(out)  # before the work: a bad path or a missing ffmpeg costs nothing

    import matplotlib

    matplotlib.use("Agg")
    from optbench.reports.animation import animate as draw
    from optbench.reports.movie import save
    from optbench.studies import replay

    problem = params.pop("problem")
    settings = run_settings(params)
    if source is None:
        specs = replay.plan(problem, names, **{**settings, "lr": rates if rates is not None else settings["lr"]})
    else:
        specs = _replayed(source, problem, names, settings)
    anim = draw(replay.traces(specs), max_frames=max_frames)
    save(anim, out, fps=fps)
    click.echo(f"animation written to {out}")


def _replayed(source: str, problem: str, names: list[str], settings: dict[str, Any]) -> list[Any]:
    """The runs a bench or tune evaluated each optimizer's chosen setting with (:func:`optbench.studies.replay.chosen`):
    at --seed where given, else at its first evaluation seed; a run setting given on the command line
    must be the one replayed."""
    from optbench.settings.declared import NAMES, flag
    from optbench.studies.replay import chosen

    given = _given_on_command_line()
    seed = settings["seed"] if "seed" in given else None
    options = {k: str(v) for k, v in settings["problem_options"].items()}
    specs = chosen(source, problem, names, seed=seed, problem_options=options)
    for name in NAMES:
        if name in given and settings[name] != getattr(specs[0], name):
            raise click.UsageError(
                f"{flag(name)} {settings[name]} differs from the {getattr(specs[0], name)} that --lr-from "
                f"{source!r} ran with: it replays the bench's runs; leave {flag(name)} out"
            )
    return specs


def _given_on_command_line() -> set[str]:
    """The parameters of this command given by the user (not left at their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)
    return {p.name for p in ctx.command.params if p.name and ctx.get_parameter_source(p.name) not in defaults}
