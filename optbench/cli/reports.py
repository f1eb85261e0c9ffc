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
    help="Each optimizer at the learning rate a bench (its folder) or tune (its results) chose on this problem.",
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
    --lr-from BENCH_FOLDER takes each one's tuned rate (and the problem's options) from a bench or tune."""
    out, fps, max_frames = params.pop("out"), params.pop("fps"), params.pop("max_frames")
    names = preflight.split_names(params.pop("optimizer"))
    rates = _rates(params, names)  # --lr 0.002,0.1: one learning rate per optimizer, a fair race
    source = params.pop("lr_from")
    if source is not None:
        if rates is not None or params["lr"] is not None:
            raise click.UsageError("--lr and --lr-from both give learning rates; give one of them")
        from optbench.settings.options import parse_assignments
        from optbench.studies.tuning import tuned_rates

        given = parse_assignments(params["problem_opts"], "--problem-opt")
        rates, options = tuned_rates(source, params["problem"], names, given)
        params["problem_opts"] = tuple(f"{k}={v}" for k, v in options.items())
    preflight.run_options(params, names)
    animation_file(out)  # before the work: a bad path or a missing ffmpeg costs nothing

    import matplotlib

    matplotlib.use("Agg")
    from optbench.reports.animation import animate as make_animation
    from optbench.reports.movie import save

    settings = run_settings(params)
    if rates is not None:
        settings["lr"] = rates
    anim = make_animation(params.pop("problem"), names, max_frames=max_frames, **settings)
    save(anim, out, fps=fps)
    click.echo(f"animation written to {out}")
