"""What every figure of a report shares, so that a reader learns it once: a grid of facets (one per
problem, ``COLUMNS`` to a row), one legend, an optimizer's look (:func:`~optbench.reports.styles.style`),
notes for optimizers whose runs coincide, log axes that stop at the float resolution and label
their ticks legibly, and x in epochs where batch sizes differ."""

from __future__ import annotations

import math
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from optbench.reports.data import batch_sizes_differ
from optbench.reports.styles import style

COLUMNS = 2  # facets per row: two 4.6-inch facets fit the page (about 1,000 px at the report's 110 dpi)
WIDTH, HEIGHT = 4.6, 3.2  # inches per facet
TINY = 1e-300  # a log axis cannot show 0: a loss of exactly 0 (no f* known) is drawn here


def grid(n: int, width: float = WIDTH, height: float = HEIGHT) -> tuple[matplotlib.figure.Figure, list[Any]]:
    """A figure of ``n`` facets, ``COLUMNS`` to a row, laid out by matplotlib's constrained layout."""
    cols = min(n, COLUMNS)
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(cols * width, rows * height + 0.5), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def legend(fig: matplotlib.figure.Figure, names: list[str], notes: dict[str, str] | None = None) -> None:
    """One legend above the facets: each optimizer's line, with a note such as " (= gd)" where it has one."""
    handles = [Line2D([], [], **look(name, 1)) for name in names]
    labels = [name + (notes or {}).get(name, "") for name in names]
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(names), 4), frameon=False)


def look(name: str, n_points: int) -> dict[str, Any]:
    """``ax.plot`` keywords for optimizer ``name`` on a line of ``n_points`` (a marker on every point if few)."""
    look = style(name).line(n_points)
    if n_points <= 1:
        look.pop("markevery")
    return look


def same_notes(same: dict[str, list[tuple[str, str]]], data: pd.DataFrame) -> dict[str, str]:
    """Legend notes for optimizers whose runs equal an earlier one's: " (= gd)", or where, if not everywhere."""
    notes = {}
    present = data.groupby("problem_label")["optimizer"].agg(set)
    for name, earlier in sorted({pair for pairs in same.values() for pair in pairs}):
        shared = sum({name, earlier} <= names for names in present)
        where = sum((name, earlier) in pairs for pairs in same.values())
        notes[name] = f" (= {earlier})" if where == shared else f" (= {earlier} on {where} of {shared} problems)"
    return notes


def same_note(same: dict[str, list[tuple[str, str]]]) -> str:
    if not same:
        return ""
    parts = [f"{name} and {earlier} on {problem}" for problem, pairs in same.items() for name, earlier in pairs]
    return (
        f" Identical runs (losses equal to 1e-5 at every record): {'; '.join(parts)}. Their lines coincide;"
        " the dashes and markers of each stay visible."
    )


def coinciding(points: dict[str, list[tuple[float, ...]]]) -> dict[str, str]:
    """Notes " (= gd)" for optimizers whose drawn points equal an earlier one's: their lines coincide."""
    notes = {}
    names = sorted(points)
    for i, name in enumerate(names):
        for earlier in names[:i]:
            a, b = np.array(points[name], dtype=float), np.array(points[earlier], dtype=float)
            if a.shape == b.shape and np.allclose(a, b, rtol=1e-5, equal_nan=True):
                notes[name] = f" (= {earlier})"
                break
    return notes


def x_axis(part: pd.DataFrame, x: str) -> tuple[str, str]:
    """The column and label of a facet's x axis: epochs where batch sizes differ, else steps (or seconds)."""
    if x == "time_s":
        return "time_s", "optimizer wall time (s, evaluation excluded)"
    if batch_sizes_differ(part):
        return "epoch", "epochs (passes over the training data)"
    return "step", "optimizer steps"


def clip(values: pd.Series, floor: float | None) -> pd.Series:
    """Log-axis ready: non-finite (diverged) values become gaps; below ``floor``, values sit at it."""
    return values.where(values.map(math.isfinite)).clip(lower=floor or TINY)


def mark_floor(ax: Any, floor: float | None, lowest: float, axis: str = "y") -> bool:
    """Stop the log axis at the float floor (when some value reaches it) and draw it; True if drawn."""
    if not floor or not lowest <= floor:
        return False
    line = ax.axhline if axis == "y" else ax.axvline
    line(floor, color="0.45", linewidth=0.9, linestyle=(0, (1, 2)), zorder=1)
    if axis == "y":
        ax.set_ylim(bottom=floor / 2)
        ax.annotate(
            "float resolution",
            (1, floor),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7.5,
            color="0.35",
        )
    else:
        ax.set_xlim(left=floor / 2)
    return True


def mark_target(ax: Any, value: float) -> None:
    """The problem's target as a dashed grey line across the facet, labelled at its right end."""
    if not (math.isfinite(value) and value > 0):
        return
    ax.axhline(value, color="0.35", linewidth=1.0, linestyle=(0, (5, 3)), zorder=1)
    ax.annotate(
        "target",
        (1, value),
        xycoords=("axes fraction", "data"),
        xytext=(-3, -3),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=7.5,
        color="0.3",
    )


def floor_note(floors: dict[str, float], marked: list[str], df: pd.DataFrame) -> str:
    if not marked:
        return ""
    dtypes = sorted({str(d) for d in df.get("problem_dtype", pd.Series(["float64"])).unique()})
    where = ", ".join(f"{p} {floors[p]:.1e}" for p in marked)
    return (
        f" The axis stops at each problem's float resolution, machine epsilon of its dtype ({', '.join(dtypes)}) "
        f"times its starting loss ({where}): suboptimality below it is rounding noise, drawn at the dotted line."
    )


def log_labels(axis: Any) -> None:
    """Tick labels on a log axis that neither collide nor vanish: decades where two or more are in
    view, else 1-2-5 steps in plain numbers (matplotlib labels every minor tick there, in 3x10^-2 form)."""
    low, high = axis.get_view_interval()
    axis.set_minor_formatter(NullFormatter())
    if math.floor(math.log10(high)) - math.ceil(math.log10(low)) < 1:
        axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
