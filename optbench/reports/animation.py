"""Fit animations: the lesson's line being fitted, decision regions evolving, optimizers racing.

>>> from optbench.reports import save
>>> anim = animate("linreg", ["gd"], lr=0.1, epochs=100)   # in a notebook, ``anim`` shows the offline player
>>> save(anim, "fit.gif")
PosixPath('fit.gif')

Each builder draws the still parts (data, contour, axes) once and hands :class:`Animation` the
artists that move, so a frame costs a few artists, not a whole figure (see ``movie.py``).
Only matplotlib's object API is used (no pyplot, no seaborn): nothing to close, quick to import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.colors import ListedColormap, LogNorm, to_rgb
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from optbench.core.trajectories import Trajectory, plan, problem_of, trajectories
from optbench.errors import InvalidValueError
from optbench.reports.frames import at, colorbar, figure, frames, same_as
from optbench.reports.landscape import draw_landscape, draws_landscape
from optbench.reports.movie import Animation, check_output, save
from optbench.reports.styles import style

__all__ = ["Animation", "animate", "check_output", "save"]

GRID = 120  # decision-region resolution (points per side)
CLASS_COLORS = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#56b4e9", "#949494")


def animate(
    problem: str = "linreg",
    optimizers: str | Sequence[str] = "gd",
    *,
    lr: float | Sequence[float] | None = None,
    epochs: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    eval_every: int | None = None,
    records: str = "all",
    problem_options: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    device: str = "cpu",
    schedule: str = "constant",
    warmup_steps: int = 0,
    max_frames: int = 100,
    interval_ms: int = 80,
) -> Animation:
    """Run each optimizer and animate it, one frame per recorded point (at most ``max_frames``).

    linreg: the data and the fitted line; with several optimizers, a race of their paths over the
    loss contour of (slope, intercept) beside their lines. A problem with a 2-D ``x`` and a
    ``predict`` (classification): the decision regions over the training data, one panel per optimizer.
    A 2-D test function (rosenbrock, beale, himmelblau, rastrigin): each optimizer's path over its
    contours, its minima starred (:mod:`optbench.reports.landscape`). ``lr`` is one learning rate for
    every optimizer or one per optimizer (a fair race: each at its own tuned rate); the legend names it.
    """
    names = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if not names:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    if max_frames < 2:
        raise InvalidValueError(f"--max-frames {max_frames!r} is out of range; expected 2 or more")
    if device != "cpu":  # a few small runs, read back at every recorded step: the drawing reads CPU tensors
        raise InvalidValueError(f"--device {device!r}: animations train on the CPU; leave --device out")
    settings = {
        "lr": lr,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "records": records,  # a frame per recorded point: "ends" animates the start, one point and the end
        "problem_options": problem_options,
        "hyperparameters": hyperparameters,
        "device": device,
        "schedule": schedule,
        "warmup_steps": warmup_steps,
    }
    if isinstance(lr, list | tuple):
        if len(lr) != len(names):
            raise InvalidValueError(f"lr: {len(lr)} learning rates for {len(names)} optimizers; give one per optimizer")
        specs = [plan(problem, [name], **{**settings, "lr": rate})[0] for name, rate in zip(names, lr, strict=True)]
    else:
        specs = plan(problem, names, **settings)  # every name checked before any run
    instance = problem_of(specs[0])  # what it is, before any run
    if draws_landscape(instance) and instance.params["xy"].numel() != 2:
        raise InvalidValueError(
            f"problem {problem!r} has {instance.params['xy'].numel()} coordinates; its contours are drawn in 2-D"
        )
    if not (
        hasattr(instance, "true_a")
        or draws_landscape(instance)
        or (hasattr(instance, "predict") and getattr(instance, "x", torch.empty(0, 0)).shape[-1] == 2)
    ):
        raise InvalidValueError(
            f"problem {problem!r} cannot be animated: animations draw linreg, 2-D classification and "
            "the 2-D test functions (rosenbrock, beale, himmelblau, rastrigin)"
        )
    traces = [_trace(t) for t in trajectories(specs, _snapshot())]
    if hasattr(instance, "true_a"):
        anim = _linreg(traces, max_frames, interval_ms)
    elif draws_landscape(instance):
        anim = draw_landscape(traces, max_frames, interval_ms)
    else:
        anim = _regions(traces, max_frames, interval_ms)
    options = "".join(f" {k}={v}" for k, v in (problem_options or {}).items())
    steps = traces[0]["records"][-1]["step"] if traces[0]["records"] else 0
    anim.description = (
        f"{problem}{options}: {', '.join(t['label'] for t in traces)}; seed {seed}, {epochs} epochs ({steps} steps)"
    )
    return anim


def _snapshot() -> Callable[[Any], Any]:
    """What each frame draws of a run at a recorded step: the line's parameters, the point on a surface,
    or the class predicted at every point of the grid (made once per run, from its first state)."""
    grids: dict[int, Any] = {}

    def snapshot(instance: Any) -> Any:
        if hasattr(instance, "true_a"):
            return instance.a.detach().double().tolist()
        if "xy" in getattr(instance, "params", {}):  # a point on a test function's surface
            return instance.params["xy"].detach().cpu().double().tolist()
        grid = grids.setdefault(id(instance), _grid(instance))
        return instance.predict(grid[0]).reshape(GRID, GRID).cpu().numpy()

    return snapshot


def _trace(run: Trajectory) -> dict[str, Any]:
    """A trajectory as the drawing reads it (:mod:`optbench.reports.frames`): the rows the titles
    print, looked up per frame without pandas, and the snapshots."""
    shown = [c for c in ("epoch", "step", "loss", "test_accuracy") if c in run.table]
    lr = run.table["lr"].iloc[0] if "lr" in run.table else None
    has_lr = lr is not None and not (isinstance(lr, float) and math.isnan(lr))
    return {
        "name": run.spec.optimizer.name,
        "label": run.spec.optimizer.name + (f" (lr {float(lr):g})" if has_lr else ""),  # what was run, named
        "problem_name": run.spec.problem.name,
        "records": run.table[shown].to_dict("records"),
        "snapshots": run.snapshots,
        "problem": run.problem,
    }


def _grid(instance: Any) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    points = torch.cat([instance.x, getattr(instance, "x_test", instance.x)])
    low, high = points.min(0).values - 0.5, points.max(0).values + 0.5
    xs = np.linspace(float(low[0]), float(high[0]), GRID)
    ys = np.linspace(float(low[1]), float(high[1]), GRID)
    mesh = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return torch.tensor(mesh, dtype=instance.x.dtype), xs, ys


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
        fig.legend(
            handles=[*lines.values()],
            labels=[t["label"] + same.get(t["name"], "") for t in traces],
            loc="outside lower center",
            ncols=min(len(traces), 4),
            frameon=False,
        )
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
        if race:
            epoch = max(at(t, k)[1]["epoch"] for t in traces)
            losses = ", ".join(f"{t['name']} {at(t, k)[1]['loss']:.4g}" for t in traces)
            title.set_text(f"epoch {epoch:g} of {epochs:g}; loss: {losses}")
        else:
            title.set_text(_status(traces[0], k))
        return moving

    moving = [*lines.values(), *paths.values(), *heads.values(), title]
    draw(0)
    return Animation(fig, draw, frames(traces, max_frames), moving, interval_ms)


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
    _, xs, ys = _grid(problem)
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
    fig.legend(
        handles=[
            (Patch(color=light[c]), Line2D([], [], marker="o", linestyle="none", color=dark[c])) for c in range(classes)
        ],
        labels=[f"class {c}" for c in range(classes)],
        handler_map={tuple: HandlerTuple(ndivide=None)},
        loc="outside lower center",
        ncols=classes,
        title="predicted region (background), training points (dots)",
        title_fontsize=9,
        frameon=False,
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
