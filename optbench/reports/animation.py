"""Fit animations: the lesson's line being fitted, decision regions evolving, optimizers racing.

>>> anim = animate("linreg", ["gd"], lr=0.1, epochs=100)   # doctest: +SKIP
>>> HTML(anim.to_jshtml())                                 # in a notebook   # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

from optbench.errors import InvalidValueError, OptbenchError
from optbench.reports.figures import palette
from optbench.runner import RunSpec, execute, prepare

FORMATS = (".gif", ".mp4", ".html")
GRID = 120  # decision-region resolution (points per side)


def animate(
    problem: str = "linreg",
    optimizers: str | Sequence[str] = "gd",
    *,
    lr: float | None = None,
    epochs: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    eval_every: int | None = None,
    problem_options: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    max_frames: int = 100,
    interval_ms: int = 80,
) -> FuncAnimation:
    """Run each optimizer and animate it, one frame per recorded point (at most ``max_frames``).

    linreg: the data and the fitted line; with several optimizers, a race of their paths over the
    loss contour of (slope, intercept) beside their lines. A problem with a 2-D ``x`` and a ``model``
    (classification): the decision regions over the training data, one panel per optimizer.
    """
    names = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if not names:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    if max_frames < 2:
        raise InvalidValueError(f"--max-frames {max_frames!r} is out of range; expected 2 or more")
    settings = {
        "lr": lr,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "problem_options": problem_options,
        "hyperparameters": hyperparameters,
    }
    specs = [prepare(problem, name, **settings) for name in names]  # every name checked before any run
    traces = [_trace(spec) for spec in specs]
    instance = traces[0]["problem"]
    if hasattr(instance, "true_a"):
        return _linreg(traces, max_frames, interval_ms)
    if hasattr(instance, "model") and getattr(instance, "x", torch.empty(0, 0)).shape[-1] == 2:
        return _regions(traces, max_frames, interval_ms)
    raise InvalidValueError(f"problem {problem!r} cannot be animated: animations draw linreg and 2-D classification")


def check_output(path: str | os.PathLike[str]) -> Path:
    """Fail before any work when an animation could not be written to ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidValueError(f"--out {str(path)!r}: expected a file ending in {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise InvalidValueError(f"--out {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise OptbenchError(
            "writing .mp4 needs ffmpeg, which is not installed: install it (apt-get install ffmpeg, "
            "brew install ffmpeg or conda install ffmpeg) or write a .gif or .html instead"
        )
    return path


def save(animation: FuncAnimation, path: str | os.PathLike[str], fps: int = 12) -> Path:
    """Write a .gif (Pillow), .mp4 (ffmpeg) or .html (self-contained jshtml)."""
    path = check_output(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        path.write_text(animation.to_jshtml(fps=fps), encoding="utf-8")
    else:
        writer = PillowWriter(fps=fps) if suffix == ".gif" else FFMpegWriter(fps=fps)
        animation.save(path, writer=writer, dpi=90)
    plt.close(animation._fig)
    return path


def _trace(spec: RunSpec) -> dict[str, Any]:
    """One run plus what the animation draws at each recorded point: parameters, or class predictions."""
    snapshots: list[Any] = []
    seen: dict[str, Any] = {}

    def snapshot(step: int, instance: Any) -> None:
        seen["problem"] = instance
        if hasattr(instance, "true_a"):
            snapshots.append(instance.a.detach().double().clone())
        else:
            grid = seen.setdefault("grid", _grid(instance))
            snapshots.append(instance.predict(grid[0]).reshape(GRID, GRID).numpy())

    df = execute(spec, on_record=snapshot)
    return {"name": spec.optimizer.name, "df": df, "snapshots": snapshots[: len(df)], **seen}


def _grid(instance: Any) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    points = torch.cat([instance.x, getattr(instance, "x_test", instance.x)])
    low, high = points.min(0).values - 0.5, points.max(0).values + 0.5
    xs = np.linspace(float(low[0]), float(high[0]), GRID)
    ys = np.linspace(float(low[1]), float(high[1]), GRID)
    mesh = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return torch.tensor(mesh, dtype=instance.x.dtype), xs, ys


def _frames(traces: list[dict[str, Any]], max_frames: int) -> list[int]:
    """Frame k shows each run's k-th record (its last once it has no more); subsampled, last kept."""
    longest = max(len(t["df"]) for t in traces)
    if longest <= max_frames:
        return list(range(longest))
    return sorted({round(i * (longest - 1) / (max_frames - 1)) for i in range(max_frames)})


def _title(traces: list[dict[str, Any]], k: int) -> str:
    parts = []
    for t in traces:
        row = t["df"].iloc[min(k, len(t["df"]) - 1)]
        extra = f", test acc. {row['test_accuracy']:.1%}" if "test_accuracy" in row else ""
        parts.append(f"{t['name']}: step {int(row['step'])}, loss {row['loss']:.4g}{extra}")
    return "\n".join(parts)


def _linreg(traces: list[dict[str, Any]], max_frames: int, interval_ms: int) -> FuncAnimation:
    problem = traces[0]["problem"]
    u, y = problem.x[:, 0].double().numpy(), problem.y.double().numpy()
    colors = palette([t["name"] for t in traces])
    race = len(traces) > 1
    fig, axes = plt.subplots(1, 2 if race else 1, figsize=(11 if race else 6, 4.6), squeeze=False)
    fit_ax = axes[0][-1]
    fit_ax.scatter(u, y, s=12, color="gray", alpha=0.7, label="data")
    fit_ax.set_xlabel("u (x = [u, 1])")
    fit_ax.set_ylabel("y")
    line_u = np.array([u.min(), u.max()])
    lines = {t["name"]: fit_ax.plot([], [], color=colors[t["name"]], linewidth=2.5, label=t["name"])[0] for t in traces}
    fit_ax.legend(loc="upper left", frameon=False)
    paths, heads = {}, {}
    if race:
        path_ax = axes[0][0]
        _contour(path_ax, problem, traces)
        for t in traces:
            paths[t["name"]] = path_ax.plot([], [], color=colors[t["name"]], linewidth=2, label=t["name"])[0]
            heads[t["name"]] = path_ax.plot([], [], "o", color=colors[t["name"]], markersize=6)[0]
        path_ax.legend(loc="upper left", frameon=False)
    frames = _frames(traces, max_frames)

    def draw(k: int) -> list[Any]:
        for t in traces:
            i = min(k, len(t["snapshots"]) - 1)
            slope, intercept = t["snapshots"][i].tolist()
            lines[t["name"]].set_data(line_u, slope * line_u + intercept)
            if race:
                path = np.array([s.tolist() for s in t["snapshots"][: i + 1]])
                paths[t["name"]].set_data(path[:, 0], path[:, 1])
                heads[t["name"]].set_data([slope], [intercept])
        fig.suptitle(_title(traces, k), fontsize=10)
        return [*lines.values(), *paths.values(), *heads.values()]

    fig.tight_layout(rect=(0, 0, 1, 1 - 0.045 * (len(traces) + 1)))  # room for one title line per optimizer
    return FuncAnimation(fig, draw, frames=frames, interval=interval_ms, blit=False)


def _contour(ax: Any, problem: Any, traces: list[dict[str, Any]]) -> None:
    """The loss over (slope, intercept), around every path and the optimum, log-spaced levels."""
    x, y = problem.x.double(), problem.y.double()
    points = torch.stack([s for t in traces for s in t["snapshots"] if torch.isfinite(s).all()] + [problem.solution])
    low, high = points.min(0).values, points.max(0).values
    pad = (high - low).clamp(min=0.5) * 0.15
    slopes = torch.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), 160, dtype=torch.float64)
    intercepts = torch.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), 160, dtype=torch.float64)
    a = torch.stack(torch.meshgrid(slopes, intercepts, indexing="xy"), dim=-1)  # (160, 160, 2)
    loss = ((a @ x.T - y) ** 2).mean(-1).numpy()
    levels = np.geomspace(max(loss.min(), 1e-6), loss.max(), 18)
    ax.contourf(
        slopes.numpy(),
        intercepts.numpy(),
        loss,
        levels=levels,
        cmap="Greys_r",
        alpha=0.55,
        locator=None,
        norm=plt.matplotlib.colors.LogNorm(),
    )
    ax.plot(*problem.solution.tolist(), marker="*", color="black", markersize=12, linestyle="none")
    ax.annotate("least squares", problem.solution.tolist(), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("slope a[0]")
    ax.set_ylabel("intercept a[1]")
    ax.set_title("MSE over (slope, intercept) (log-spaced contours)", fontsize=9)


def _regions(traces: list[dict[str, Any]], max_frames: int, interval_ms: int) -> FuncAnimation:
    problem = traces[0]["problem"]
    _, xs, ys = _grid(problem)
    n = len(traces)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 4.6), squeeze=False)
    cmap = plt.matplotlib.colors.ListedColormap(sns.color_palette("pastel", problem.classes))
    points, labels = problem.x.double().numpy(), problem.y.numpy()
    images = []
    for ax, t in zip(axes[0], traces, strict=True):
        images.append(
            ax.imshow(
                t["snapshots"][0],
                origin="lower",
                extent=(xs[0], xs[-1], ys[0], ys[-1]),
                cmap=cmap,
                vmin=-0.5,
                vmax=problem.classes - 0.5,
                aspect="auto",
                interpolation="nearest",
            )
        )
        dots = plt.matplotlib.colors.ListedColormap(sns.color_palette("dark", problem.classes))
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=dots, s=10, edgecolors="white", linewidths=0.3)
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
    frames = _frames(traces, max_frames)

    def draw(k: int) -> list[Any]:
        for image, ax, t in zip(images, axes[0], traces, strict=True):
            i = min(k, len(t["snapshots"]) - 1)
            image.set_data(t["snapshots"][i])
            row = t["df"].iloc[i]
            ax.set_title(
                f"{t['name']}: step {int(row['step'])}\nloss {row['loss']:.4g}, test acc. {row['test_accuracy']:.1%}",
                fontsize=9,
            )
        return images

    fig.suptitle("decision regions (background) and training data (dots)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return FuncAnimation(fig, draw, frames=frames, interval=interval_ms, blit=False)
