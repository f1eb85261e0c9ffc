"""Parts every animation draws with: a figure, which record each frame shows, notes and colour bars.

Shared by :mod:`optbench.reports.animation` (linreg, decision regions) and
:mod:`optbench.reports.landscape` (2-D test functions), so that neither reaches into the other.
A *trace* is one run as the drawing reads it: a dict with the optimizer's ``name``, the rows it
recorded (``records``: dicts of ``epoch``, ``step``, ``loss``...) and what to draw at each of them
(``snapshots``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

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
