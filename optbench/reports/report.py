"""``optbench report``: results files in, a folder of figures, a summary CSV and index.html out."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from optbench.errors import InvalidValueError
from optbench.reports.data import (
    MANIFEST,
    Named,
    best_settings,
    finals,
    float_floor,
    label_runs,
    read_results,
    settings_of,
    target_values,
)
from optbench.reports.data import summary as summarize
from optbench.reports.drawing import Drawing, draw_all
from optbench.reports.html import render
from optbench.reports.styles import distinct
from optbench.results.io import files
from optbench.results.outcomes import DEFAULT_TARGET, Target, targets_text
from optbench.results.schema import BUDGET_PHASE


def report(
    results: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    target: float | None = None,
    problems: Sequence[tuple[Named, Target]] = (),
    svg: bool = False,
    animations: Sequence[str | os.PathLike[str]] = (),
    preface: str = "",
    extra: Sequence[Drawing | None] = (),
    title: str = "",
    cards: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    jobs: int = 1,
) -> Path:
    """Write figures (PNG, and SVG with ``svg=True``), ``summary.csv`` and ``index.html`` to ``out``.

    ``target`` is the objective (loss - f*, or loss) a run must reach for "time to target"; the
    default is 10% of each run's starting value. ``problems`` names problems (with their options)
    as a study did and gives each its own target: a bench hands its suite's entries, so that its
    page and its leaderboard say the same. Results of ``optbench tune`` are drawn from their
    evaluation phase (fresh seeds; the learning-rate figure from the search). Every file is written
    atomically inside ``out`` (a symlink there is replaced, never followed), and ``out`` is never
    read back as results. ``preface`` is HTML the page opens with, above the first figure (a bench's
    verdict); ``extra`` figures (each a :data:`~optbench.reports.drawing.Drawing`: a function that returns a
    :class:`~optbench.reports.figures.Figure` or None, such as a bench's paired figure) follow the main one.
    The figures are drawn in up to ``jobs`` processes (default 1: a worker started cold imports matplotlib
    and seaborn for seconds, more than a small report's figures take; a bench's page passes its ``--jobs``,
    whose workers are warm), with the same files as one process makes. Inputs without runs, or with
    nothing to draw, give a page that says so. A bench hands its verdict's views: ``title``, ``cards``
    (the best-setting cards, its leaderboard's rows: median [95% interval], no test of their own) and
    ``summary`` (summary.csv and the page's table: its leaderboard's numbers), so that nothing on its
    page is computed twice.
    Returns the path of ``index.html``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidValueError(f"--out {str(out)!r} is a file; expected a folder for the report")
    if target is not None and not (math.isfinite(target) and target > 0):
        raise InvalidValueError(f"--target {target!r} is out of range; expected a positive number")
    movies = [Path(a) for a in animations]
    for movie in movies:
        if not movie.is_file() or movie.suffix.lower() not in (".gif", ".mp4"):
            raise InvalidValueError(f"--animation {str(movie)!r}: expected an existing .gif or .mp4 file")
    table = read_results([Path(r) for r in results], ignore=[out / name for name in ("summary.csv", "index.html")])
    if "phase" in table:  # a bench's budget ladder feeds its speedups; the figures compare equal budgets
        table = table[table["phase"] != BUDGET_PHASE].reset_index(drop=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidValueError(f"--out {str(out)!r} cannot be made: {exc.strerror or exc}") from None
    files.check_writable(out / "index.html")  # a real temporary file there: read-only places fail before drawing
    written: list[str] = []

    def save(name: str, write: Callable[[Path], None]) -> Path:
        written.append(name)
        return files.atomic_write(out / name, write)

    names = table["optimizer"].dropna().astype(str).unique() if "optimizer" in table else ()
    with distinct(names):  # no two optimizers of the page share a colour
        default = DEFAULT_TARGET if target is None else Target(target, relative=False)
        targets = {named.label: goal for named, goal in problems}
        target_text = targets_text(targets) if targets else str(default)
        pages, notes, summary_table, settings, best = [], [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
        if not len(table):
            notes.append(f"No runs: {', '.join(map(str, results))} hold no results rows, so there is nothing to draw.")
        else:
            df = label_runs(table, [named for named, _ in problems])
            final = finals(df, default, targets)
            summary_table = summarize(final) if summary is None else summary
            settings = _settings_table(df)
            figures, notes, best = _figures(df, final, target_text, target_values(df, default, targets))
            best = best if cards is None else cards
            figures[1:1] = [f for f in extra if f is not None]
            drawn = draw_all(figures, out, names, svg=svg, jobs=jobs)
            for png, names_written, caption in drawn:
                written.extend(names_written)
                pages.append((out / png, caption))
        save("summary.csv", lambda tmp: summary_table.to_csv(tmp, index=False))
        copied = []
        for movie in movies:
            copied.append(save(movie.name, lambda tmp, m=movie: shutil.copyfile(m, tmp)))
        evaluated = "phase" in table and bool((table["phase"] == "eval").any())
        sources = [str(r) for r in results]
        page = render(
            pages,
            best,
            summary_table,
            settings,
            copied,
            sources,
            target_text,
            notes,
            preface,
            evaluated,
            title=title,
            judged=cards is not None,
        )
        index = save("index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    known = sorted(set(written) | _listed(out))
    files.write_text(out / MANIFEST, json.dumps({"files": known}, indent=1) + "\n")
    return index


def _listed(out: Path) -> set[str]:
    try:
        return {str(n) for n in json.loads((out / MANIFEST).read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _figures(
    df: pd.DataFrame, final: pd.DataFrame, target_text: str, goals: dict[str, float]
) -> tuple[list[Drawing], list[str], pd.DataFrame]:
    """The figures worth drawing (the main one first, each a :data:`~optbench.reports.drawing.Drawing`),
    notes on what could not be drawn and why, and the best settings the page opens with."""
    from optbench.reports import figures as fg  # seaborn (and scipy): a second that animations need not pay

    notes = []
    drawable = set(df.loc[df["objective"].map(math.isfinite), "run_id"])  # runs with a finite loss somewhere
    search = final
    if "phase" in df and (df["phase"] == "eval").any():  # tune output: compare on the fresh seeds
        notes.append(
            "Tuning results: the figures show the evaluation phase (each optimizer's chosen setting rerun on "
            "fresh seeds); the learning-rate figure shows the search. The summary has both phases."
        )
        df, search, final = df[df["phase"] == "eval"], final[final["phase"] != "eval"], final[final["phase"] == "eval"]
    statuses = final["status"].value_counts().to_dict()
    if not drawable & set(final["run_id"]):
        notes.append(
            f"Nothing to draw: none of the {len(final)} runs recorded a finite loss "
            f"({statuses.get('error', 0)} errored, {statuses.get('diverged', 0)} diverged); see the summary."
        )
        return [], notes, pd.DataFrame()
    dropped = int((~final["run_id"].isin(drawable)).sum())
    if dropped:
        notes.append(f"{dropped} run(s) without a finite loss (errored before training) are not drawn.")
    df, final, search = (t[t["run_id"].isin(drawable)] for t in (df, final, search))
    floors = float_floor(df)
    drawn = [
        partial(fg.loss_curves, df, final, "step", goals),  # the main figure: the page shows it by the best settings
        partial(fg.loss_curves, df, final, "time_s"),
        partial(fg.accuracy_curves, df, final),
        partial(fg.lr_sensitivity, search, floors) if len(search) else None,
    ]
    if final["final"].map(math.isfinite).any():
        drawn.append(partial(fg.final_distribution, final, floors))
    else:
        notes.append("Every run diverged: there is no final value to show as a distribution.")
    drawn += [partial(fg.time_to_target, final, target_text), partial(fg.profile, final)]
    if fg.profile_note(final):
        notes.append(fg.profile_note(final))
    return [f for f in drawn if f is not None], notes, best_settings(final, search)


def _settings_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every setting and the values it takes, plus seeds and steps per run."""
    rows = []
    for column in settings_of(df):
        if column in ("problem_label", "config", "run", "run_id", "objective"):
            continue
        values = sorted({str(v) for v in df[column].dropna().unique()})
        rows.append({"setting": column, "values": ", ".join(values)})
    rows.append({"setting": "seed", "values": ", ".join(map(str, sorted(df["seed"].unique())))})
    steps = df.groupby("run_id")["step"].max().unique()
    rows.append({"setting": "steps", "values": ", ".join(map(str, sorted(steps)))})
    return pd.DataFrame(rows)
