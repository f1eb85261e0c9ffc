"""``optbench report``: results files in, a folder of figures, a summary CSV and index.html out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from optbench.errors import InvalidValueError
from optbench.reports.data import best_settings, finals, float_floor, label_runs, read_results, settings_of, summary
from optbench.reports.html import render
from optbench.results import DEFAULT_TARGET

DPI = 110  # a 2-facet figure is about 1,000 px wide: the page shows it at its own size


def report(
    results: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    target: float | None = None,
    svg: bool = False,
    animations: Sequence[str | os.PathLike[str]] = (),
) -> Path:
    """Write figures (PNG, and SVG with ``svg=True``), ``summary.csv`` and ``index.html`` to ``out``.

    ``target`` is the objective (loss - f*, or loss) a run must reach for "time to target"; the
    default is 10% of each run's starting value. Returns the path of ``index.html``.
    """
    from optbench.reports import figures as fg  # seaborn (and scipy): a second that animations need not pay

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidValueError(f"--out {str(out)!r} is a file; expected a folder for the report")
    if target is not None and not target > 0:
        raise InvalidValueError(f"--target {target!r} is out of range; expected a positive number")
    movies = [Path(a) for a in animations]
    for movie in movies:
        if not movie.is_file() or movie.suffix.lower() not in (".gif", ".mp4"):
            raise InvalidValueError(f"--animation {str(movie)!r}: expected an existing .gif or .mp4 file")
    df = label_runs(read_results([Path(r) for r in results]))
    final = finals(df, target)
    floors = float_floor(df)
    target_text = (
        f"objective <= {target:g}" if target is not None else f"{DEFAULT_TARGET:.0%} of each run's starting objective"
    )
    drawn = [
        fg.loss_curves(df, final, "step"),  # the main figure: the page shows it beside the best settings
        fg.loss_curves(df, final, "time_s"),
        fg.accuracy_curves(df, final),
        fg.lr_sensitivity(final, floors),
        fg.final_distribution(final, floors),
        fg.time_to_target(final, target_text),
        fg.profile(final),
    ]
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for figure in filter(None, drawn):
        png = out / f"{figure.name}.png"
        figure.figure.savefig(png, dpi=DPI)
        if svg:
            figure.figure.savefig(out / f"{figure.name}.svg")
        plt.close(figure.figure)
        pages.append((png, figure.caption))
    table = summary(final)
    table.to_csv(out / "summary.csv", index=False)
    copied = []
    for movie in movies:
        if movie.resolve() != (out / movie.name).resolve():
            shutil.copy(movie, out / movie.name)
        copied.append(out / movie.name)
    page = render(
        pages, best_settings(final), table, _settings_table(df), copied, [str(r) for r in results], target_text
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _settings_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every setting and the values it takes, plus seeds and epochs per config."""
    rows = []
    for column in settings_of(df):
        if column in ("problem_label", "config", "run", "objective"):
            continue
        values = sorted({str(v) for v in df[column].dropna().unique()})
        rows.append({"setting": column, "values": ", ".join(values)})
    rows.append({"setting": "seed", "values": ", ".join(map(str, sorted(df["seed"].unique())))})
    rows.append({"setting": "steps", "values": ", ".join(map(str, sorted(df.groupby("run")["step"].max().unique())))})
    return pd.DataFrame(rows)
