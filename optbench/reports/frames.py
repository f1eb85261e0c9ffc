"""Parts every animation draws with: a figure, which record each frame shows, a legend and titles
that fit the frame, notes and colour bars.

Shared by :mod:`optbench.reports.animation` (linreg, decision regions) and
:mod:`optbench.reports.landscape` (2-D test functions), so that neither reaches into the other.
A *trace* is one run as the drawing reads it: a dict with the optimizer's ``name``, the rows it
recorded (``records``: dicts of ``epoch``, ``step``, ``loss``...) and what to draw at each of them
(``snapshots``), made by :mod:`optbench.studies.replay` (the drawing never trains).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from optbench.reports.movie import text_width

DPI = 90  # pixels per inch of every frame: the lesson is 576 x 414 px


def frames(traces: list[dict[str, Any]], max_frames: int) -> list[int]:
    """Frame k shows each run's k-th record (its last once it has no more); subsampled, last kept."""
    longest = max(len(t["records"]) for t in traces)
    if longest <= max_frames:
        return list(range(longest))
    return sorted({round(i * (longest - 1) / (max_frames - 1)) for i in range(max_frames)})


def at(trace: dict[str, Any], k: int) -> tuple[int, dict[str, float]]:
    """The record frame ``k`` shows of a run (its last once it has no more) and its measures."""
    i = min(k, len(trace["records"]) - 1)
    return i, trace["records"][i]


def figure(width: float, height: float) -> Figure:
    """A figure drawn by Agg alone (no pyplot: nothing to close), at :data:`DPI`."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fitted_legend(fig: Figure, handles: list[Any], labels: list[str], ncols: int, **options: Any) -> Legend:
    """A legend below the axes in as many columns (at most ``ncols``) as fit the figure's width: a
    row of long labels (``torch-sgd-momentum (lr 0.00123)``) wider than the frame was cut at both edges."""
    renderer = fig.canvas.get_renderer()
    while True:
        legend = fig.legend(
            handles=handles, labels=labels, loc="outside lower center", ncols=ncols, frameon=False, **options
        )
        if ncols == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width - 4:
            return legend
        legend.remove()
        ncols -= 1


def wrapped(line: str, text: Text, width: float | None = None) -> str:
    """``line`` broken after a ``; `` or ``, `` where it would be wider than ``width`` pixels (default:
    the figure's) in ``text``'s font: a title that outgrew its frame was cut at both edges."""
    width = width if width is not None else text.get_figure(root=True).bbox.width - 8
    lines: list[str] = []
    for piece in re.split(r"(?<=; )|(?<=, )", line):
        if lines and text_width(text, (lines[-1] + piece).rstrip()) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(part.rstrip() for part in lines)


def tallest(numbers: list[int], heading: Callable[[int], str], text: Text) -> int:
    """The frame whose heading wraps into the most lines (:func:`wrapped`): an animation is laid out
    once, with the text of the frame drawn last before it, so that is the one to draw."""
    return max(numbers, key=lambda k: (wrapped(heading(k), text).count("\n"), -k))


def same_as(traces: list[dict[str, Any]], params: dict[str, np.ndarray]) -> dict[str, str]:
    """`` (same path as gd)`` for an optimizer whose path equals an earlier one's: its line hides under it."""
    notes = {}
    for i, t in enumerate(traces):
        for earlier in traces[:i]:
            a, b = params[t["name"]], params[earlier["name"]]
            if a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=0):
                notes[t["name"]] = f" (same path as {earlier['name']})"
                break
    return notes


def colorbar(ax: Any, filled: Any, label: str, levels: np.ndarray, log: bool) -> None:
    """A colour bar beside ``ax`` with plain-number ticks: every decade of a log scale (1e-3 reads 0.001)."""
    bar = ax.figure.colorbar(filled, ax=ax, label=label, pad=0.02)
    if log:
        decades = 10.0 ** np.arange(np.floor(np.log10(levels[0])), np.ceil(np.log10(levels[-1])) + 1)
        bar.set_ticks([d for d in decades if levels[0] <= d <= levels[-1]], labels=None)
        bar.ax.yaxis.set_minor_locator(NullLocator())
    else:  # round numbers, not every level's boundary
        bar.set_ticks(MaxNLocator(nbins=6).tick_values(levels[0], levels[-1])[1:-1])
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
