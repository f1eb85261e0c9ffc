"""Optimizers racing over a 2-D test function: each one's path drawn over the function's contours.

A problem with ``bounds`` (its plot window), ``minimizers`` and a static ``value(xy)`` that reads
a point from the last dimension of a tensor, trained on a 2-element ``params["xy"]`` (Rosenbrock,
Beale, Himmelblau, Rastrigin in 2-D: :mod:`optbench.problems.landscapes`), is drawn this way by
:func:`optbench.reports.animate`::

    anim = animate(race("rosenbrock", ["gd", "torch-adam"], lr=1e-3, epochs=2000))  # studies.replay.race

The contours are drawn once, as the still background; per frame only the paths, their heads and
the one-line title move (see ``movie.py``). Levels are log-spaced where the surface spans decades
(Rosenbrock's valley and Beale's plateaus would be one flat colour on a linear scale), linear
elsewhere; each known minimum is a black star. Every optimizer has its colour, dashes and marker
from :func:`optbench.reports.style`, as in every other figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.colors import LogNorm, Normalize
from matplotlib.ticker import MaxNLocator

from optbench.reports.frames import at, colorbar, figure, fitted_legend, frames, same_as, tallest, wrapped
from optbench.reports.movie import Animation
from optbench.reports.styles import style

RESOLUTION = 200  # surface points per side
LOG_SPREAD = 30.0  # log-spaced levels when the surface's 90th percentile exceeds its 10th this many times


def surface(problem: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The function's values over its ``bounds``: x and y coordinates, and a (y, x) grid of values."""
    (x0, x1), (y0, y1) = problem.bounds
    xs = torch.linspace(x0, x1, RESOLUTION, dtype=torch.float64)
    ys = torch.linspace(y0, y1, RESOLUTION, dtype=torch.float64)
    values = problem.value(torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1))
    return xs.numpy(), ys.numpy(), values.numpy()


def levels(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Contour levels for ``values``, and whether they are log-spaced (the surface spans decades)."""
    low, high = np.percentile(values, [10, 90])
    if low > 0 and high / low > LOG_SPREAD:
        floor = max(float(values.min()), float(values.max()) * 1e-8)
        return np.geomspace(floor, float(values.max()), 24), True
    return MaxNLocator(nbins=20).tick_values(float(values.min()), float(values.max())), False


def draw_landscape(traces: list[dict[str, Any]], max_frames: int, interval_ms: int) -> Animation:
    """The race over the surface: ``traces`` are the runs (:mod:`optbench.reports.frames`) of each
    optimizer, whose snapshots are the point ``xy`` at every recorded step."""
    problem = traces[0]["problem"]
    xs, ys, values = surface(problem)
    spaced, log = levels(values)
    fig = figure(7.2, 6.4)
    ax = fig.subplots()
    norm = LogNorm() if log else Normalize()
    filled = ax.contourf(xs, ys, values, levels=spaced, cmap="Greys_r", alpha=0.55, norm=norm)
    ax.contour(xs, ys, values, levels=spaced[::2], colors="white", linewidths=0.4, alpha=0.6)
    colorbar(ax, filled, f"{traces[0]['problem_name']}(x, y)" + (" (log scale)" if log else ""), spaced, log)
    minima = np.array([m[:2] for m in problem.minimizers])
    (star,) = ax.plot(minima[:, 0], minima[:, 1], "*", color="black", markersize=14, linestyle="none")
    ax.set_xlim(*problem.bounds[0])
    ax.set_ylim(*problem.bounds[1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    points = {t["name"]: np.array(t["snapshots"], dtype=float) for t in traces}
    paths, heads = {}, {}
    for t in traces:
        look = style(t["name"])
        paths[t["name"]] = ax.plot([], [], color=look.color, linestyle=look.linestyle, linewidth=2)[0]
        heads[t["name"]] = ax.plot([], [], look.marker, color=look.color, markersize=8)[0]
        paths[t["name"]].set_label(t["name"])
    same = same_as(traces, points)
    labels = [t["label"] + same.get(t["name"], "") for t in traces] + ["global minimum"]
    fitted_legend(fig, [*paths.values(), star], labels, ncols=min(len(traces) + 1, 4))
    title = fig.suptitle(" ", fontsize=11)
    steps = max(int(t["records"][-1]["step"]) for t in traces)

    def draw(k: int) -> list[Any]:
        for t in traces:
            i, _ = at(t, k)
            path = points[t["name"]][: i + 1]
            paths[t["name"]].set_data(path[:, 0], path[:, 1])
            heads[t["name"]].set_data(path[-1:, 0], path[-1:, 1])
        title.set_text(wrapped(heading(k), title))
        return moving

    def heading(k: int) -> str:
        step = max(int(at(t, k)[1]["step"]) for t in traces)
        values_now = ", ".join(f"{t['name']} {at(t, k)[1]['loss']:.3g}" for t in traces)
        return f"step {step} of {steps}; f: {values_now}"

    moving = [*paths.values(), *heads.values(), title]
    numbers = frames(traces, max_frames)
    draw(tallest(numbers, heading, title))  # the layout, made once, leaves room for the tallest title
    return Animation(fig, draw, numbers, moving, interval_ms)
