"""Fit animations: the lesson's line being fitted, decision regions evolving, optimizers racing.

>>> from optbench.reports import save
>>> from optbench.studies.replay import race
>>> anim = animate(race("linreg", ["gd"], lr=0.1, epochs=100))  # in a notebook, ``anim`` shows the offline player
>>> save(anim, "fit.gif")
PosixPath('fit.gif')

The drawing never trains: it draws *traces*, the runs a study produced with what each looked like
at every recorded step (:mod:`optbench.studies.replay`: a race from settings, or a bench's chosen
settings replayed). Each builder draws the still parts (data, contour, axes) once and hands
:class:`Animation` the artists that move, so a frame costs a few artists, not a whole figure (see
``movie.py``). Only matplotlib's object API is used (no pyplot, no seaborn): nothing to close, quick to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.colors import ListedColormap, LogNorm, to_rgb
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from optbench.errors import InvalidValueError
from optbench.reports.frames import at, colorbar, figure, fitted_legend, frames, same_as, tallest, wrapped
from optbench.reports.landscape import draw_landscape
from optbench.reports.movie import Animation, check_output, save
from optbench.reports.styles import style

__all__ = ["Animation", "animate", "check_output", "save"]

CLASS_COLORS = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#56b4e9", "#949494")


def animate(traces: Sequence[dict[str, Any]], *, max_frames: int = 100, interval_ms: int = 80) -> Animation:
    """Animate runs, one frame per recorded point (at most ``max_frames``); ``traces`` come from
    :mod:`optbench.studies.replay`, one per optimizer, all on one problem.

    ``line`` (linreg): the data and the fitted line; with several optimizers, a race of their paths
    over the loss contour of (slope, intercept) beside their lines. ``regions`` (a classifier over
    2-D inputs): the decision regions over the training data, one panel per optimizer. ``surface``
    (a 2-D test function: rosenbrock, beale, himmelblau, rastrigin): each optimizer's path over its
    contours, its minima starred (:mod:`optbench.reports.landscape`). The legend names each one's lr;
    ``description`` says what ran (saved in the file: a GIF's comment, a report's caption).
    """
    traces = list(traces)
    if not traces:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    if max_frames < 2:
        raise InvalidValueError(f"--max-frames {max_frames!r} is out of range; expected 2 or more")
    kind = traces[0]["kind"]
    if kind == "line":
        anim = _linreg(traces, max_frames, interval_ms)
    elif kind == "surface":
        anim = draw_landscape(traces, max_frames, interval_ms)
    else:
        anim = _regions(traces, max_frames, interval_ms)
    anim.description = description(traces)
    return anim


def description(traces: Sequence[dict[str, Any]]) -> str:
    """What ran, in words: the problem and its options, each optimizer with its lr, the seed, the
    schedule, and each run's length as run (a run that diverged stopped early; the budget says so)."""
    first = traces[0]
    options = "".join(f" {k}={_shown(v)}" for k, v in first["options"].items())
    schedule = "" if first["schedule"] == "constant" else f", {first['schedule']} schedule"
    if first["warmup_steps"]:
        schedule += f" after {first['warmup_steps']} warm-up steps"
    ran = [_length(t) for t in traces]
    if len(set(ran)) == 1 and traces[0]["status"] == "ok":  # one budget, run in full by all
        lengths = ran[0]
    else:
        lengths = "; ".join(f"{t['name']} {r}" for t, r in zip(traces, ran, strict=True))
    return (
        f"{first['problem_name']}{options}: {', '.join(t['label'] for t in traces)}; "
        f"seed {first['seed']}{schedule}, {lengths}"
    )


def _length(trace: dict[str, Any]) -> str:
    """A run's length as run: its epochs and steps, or where it stopped (a diverged run stops early)."""
    last = trace["records"][-1] if trace["records"] else {"epoch": 0, "step": 0}
    epochs, steps = trace["epochs"], int(last["step"])
    if trace["status"] == "ok":
        return f"{_count(epochs, 'epoch')} ({_count(steps, 'step')})"
    return f"{trace['status']} at step {steps} (epoch {last['epoch']:g} of {epochs})"


def _count(n: int, unit: str) -> str:
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _linreg(traces: list[dict[str, Any]], max_frames: int, interval_ms: int) -> Animation:
    problem = traces[0]["problem"]
    u, y = problem.x[:, 0].double().numpy(), problem.y.double().numpy()
    race = len(traces) > 1
    fig = figure(11, 4.9) if race else figure(6.4, 4.6)
    path_ax, fit_ax = fig.subplots(1, 2) if race else (None, fig.subplots())
    fit_ax.scatter(u, y, s=12, color="gray", alpha=0.7, label="data")
    fit_ax.set_xlabel("u (x = [u, 1])")
    fit_ax.set_ylabel("y")
    line_u = np.array([u.min(), u.max()])
    params = {t["name"]: np.array(t["snapshots"]) for t in traces}
    lines, paths, heads = {}, {}, {}
    for t in traces:
        look = style(t["name"])
        lines[t["name"]] = fit_ax.plot([], [], color=look.color, linestyle=look.linestyle, linewidth=2.5)[0]
        lines[t["name"]].set_label(t["name"])
    if race:
        _contour(path_ax, problem, params)
        for t in traces:
            look = style(t["name"])
            paths[t["name"]] = path_ax.plot([], [], color=look.color, linestyle=look.linestyle, linewidth=2)[0]
            heads[t["name"]] = path_ax.plot([], [], look.marker, color=look.color, markersize=7)[0]
            paths[t["name"]].set_label(t["name"])
        fit_ax.set_title("the data and each optimizer's fitted line", fontsize=10)
        fit_ax.legend(handles=[fit_ax.collections[0]], loc="upper left", frameon=False)
        same = same_as(traces, params)
        labels = [t["label"] + same.get(t["name"], "") for t in traces]
        fitted_legend(fig, [*lines.values()], labels, ncols=min(len(traces), 4))
    else:
        fit_ax.legend(loc="upper left", frameon=False)
    # One line of text: a legend redrawn per frame cost 50 ms a frame, and N stacked title lines were unreadable.
    title = fig.suptitle(" ", fontsize=11)
    epochs = max(t["records"][-1]["epoch"] for t in traces)

    def draw(k: int) -> list[Any]:
        for t in traces:
            i, _ = at(t, k)
            slope, intercept = params[t["name"]][i]
            lines[t["name"]].set_data(line_u, slope * line_u + intercept)
            if race:
                paths[t["name"]].set_data(params[t["name"]][: i + 1, 0], params[t["name"]][: i + 1, 1])
                heads[t["name"]].set_data([slope], [intercept])
        title.set_text(wrapped(heading(k), title))
        return moving

    def heading(k: int) -> str:
        if not race:
            return _status(traces[0], k)
        epoch = max(at(t, k)[1]["epoch"] for t in traces)
        losses = ", ".join(f"{t['name']} {at(t, k)[1]['loss']:.4g}" for t in traces)
        return f"epoch {epoch:g} of {epochs:g}; loss: {losses}"

    moving = [*lines.values(), *paths.values(), *heads.values(), title]
    numbers = frames(traces, max_frames)
    draw(tallest(numbers, heading, title))  # the layout, made once, leaves room for the tallest title
    return Animation(fig, draw, numbers, moving, interval_ms)


def _status(trace: dict[str, Any], k: int) -> str:
    _, row = at(trace, k)
    accuracy = f", test acc. {row['test_accuracy']:.1%}" if "test_accuracy" in row else ""
    return f"{trace['label']}: step {int(row['step'])}, loss {row['loss']:.4g}{accuracy}"


def _contour(ax: Any, problem: Any, params: dict[str, np.ndarray]) -> None:
    """The loss over (slope, intercept), around every path and the optimum, log-spaced levels, a colour bar."""
    x, y = problem.x.double(), problem.y.double()
    finite = [p[np.isfinite(p).all(axis=1)] for p in params.values()]
    points = torch.tensor(np.concatenate([*finite, [problem.solution.tolist()]]))
    low, high = points.min(0).values, points.max(0).values
    pad = (high - low).clamp(min=0.5) * 0.15
    slopes = torch.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), 160, dtype=torch.float64)
    intercepts = torch.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), 160, dtype=torch.float64)
    a = torch.stack(torch.meshgrid(slopes, intercepts, indexing="xy"), dim=-1)  # (160, 160, 2)
    loss = ((a @ x.T - y) ** 2).mean(-1).numpy()
    levels = np.geomspace(max(loss.min(), 1e-6), loss.max(), 18)
    filled = ax.contourf(
        slopes.numpy(), intercepts.numpy(), loss, levels=levels, cmap="Greys_r", alpha=0.55, norm=LogNorm()
    )
    colorbar(ax, filled, "mean squared error (log scale)", levels, log=True)
    ax.plot(*problem.solution.tolist(), marker="*", color="black", markersize=12, linestyle="none")
    ax.annotate("least squares", problem.solution.tolist(), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("slope a[0]")
    ax.set_ylabel("intercept a[1]")
    ax.set_title("each optimizer's path over the loss", fontsize=10)


def _regions(traces: list[dict[str, Any]], max_frames: int, interval_ms: int) -> Animation:
    problem = traces[0]["problem"]
    xs, ys = traces[0]["grid"]
    n = len(traces)
    labels = problem.y.numpy()
    classes = int(max(labels.max(), getattr(problem, "y_test", problem.y).max())) + 1
    dark = [CLASS_COLORS[c % len(CLASS_COLORS)] for c in range(classes)]
    light = [tuple(0.35 * np.array(to_rgb(c)) + 0.65) for c in dark]  # the class colour, faded towards white
    fig = figure(4.6 * n, 4.9)
    axes = fig.subplots(1, n, squeeze=False)[0]
    points = problem.x.double().numpy()
    images, dots, titles = [], [], []
    for ax, t in zip(axes, traces, strict=True):
        images.append(
            ax.imshow(
                t["snapshots"][0],
                origin="lower",
                extent=(xs[0], xs[-1], ys[0], ys[-1]),
                cmap=ListedColormap(light),
                vmin=-0.5,
                vmax=classes - 0.5,
                aspect="auto",
                interpolation="nearest",
            )
        )
        for c in range(classes):  # a Line2D of markers per class: Agg stamps one marker, 10x a scatter's speed
            mine = points[labels == c]
            dots += ax.plot(mine[:, 0], mine[:, 1], "o", color=dark[c], markersize=3.2, markeredgewidth=0)
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
        titles.append(ax.set_title(" ", fontsize=9))
    fitted_legend(
        fig,
        [(Patch(color=light[c]), Line2D([], [], marker="o", linestyle="none", color=dark[c])) for c in range(classes)],
        [f"class {c}" for c in range(classes)],
        ncols=classes,
        handler_map={tuple: HandlerTuple(ndivide=None)},
        title="predicted region (background), training points (dots)",
        title_fontsize=9,
    )

    def draw(k: int) -> list[Any]:
        for image, title, t in zip(images, titles, traces, strict=True):
            i, _ = at(t, k)
            image.set_data(t["snapshots"][i])
            title.set_text(_status(t, k))
        return moving

    # the dots and the frame do not move, but lie over the regions that do, so they are drawn after them
    moving = [*images, *dots, *(spine for ax in axes for spine in ax.spines.values()), *titles]
    draw(0)
    return Animation(fig, draw, frames(traces, max_frames), moving, interval_ms)
