"""Figures of a results table. Each function returns a :class:`Figure`: a name, the matplotlib
figure and a caption that says what is drawn (what a band, a floor, a coinciding line means).

What every figure shares (``facets.py``), so that a reader learns it once:

- an optimizer's look comes from :func:`~optbench.reports.styles.style` (colour, dashes, marker),
  so two optimizers with identical runs stay visible, and the caption says they coincide;
- a facet per problem (name + the options that vary), at most ``COLUMNS`` to a row;
- on a log axis of suboptimality, nothing below the problem's float resolution
  (:func:`~optbench.reports.data.float_floor`): smaller values are drawn at it, and it is marked;
- x counts epochs, not steps, in a facet whose runs take steps of different batch sizes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    NullLocator,
    ScalarFormatter,
)

from optbench.reports import facets
from optbench.reports.data import (
    best_configs,
    cost_unit,
    float_floor,
    identical,
    performance_profile,
)
from optbench.reports.facets import COLUMNS, WIDTH
from optbench.reports.styles import colors, style
from optbench.results.bands import median_bands
from optbench.results.outcomes import best

BLOWN_UP = 1e3  # a diverged run counts as +inf once its objective passes this multiple of its start
SEEDS_FOR_CI = 5  # with fewer seeds a band shows the spread (min to max), not a bootstrap interval


@dataclass
class Figure:
    name: str
    figure: matplotlib.figure.Figure
    caption: str


def _band(n_seeds: int) -> str:
    if n_seeds < SEEDS_FOR_CI:
        return f"the band spans min to max over {n_seeds} seed(s)"
    return f"the band is a 95% bootstrap confidence interval over {n_seeds} seeds for the median (whole runs resampled)"


def _median_line(
    ax: Any, runs: pd.DataFrame, x: str, name: str, n_seeds: int, look: dict[str, Any], objective: bool = True
) -> np.ndarray:
    """The median over runs at each x and its band (see :func:`_band`); returns the median.

    A diverged run counts as +inf from where it blew up (past ``BLOWN_UP`` x its start, or its first
    non-finite point) on, never as a missing run: the median line ends (marked with an x) where half
    of the runs have diverged, and a band open above reaches the top of the axis, paler."""
    wide = runs.groupby([x, "run_id"])["plotted"].first().unstack()
    values = np.array(wide.to_numpy(dtype=float))  # a copy: diverged runs' ends are written into it
    gone = wide.columns.isin(runs.loc[runs["status"] == "diverged", "run_id"])
    if (
        objective and gone.any()
    ):  # +inf (the worst objective) from where it blew up: past BLOWN_UP x its start, or no longer finite
        start = values[np.argmax(~np.isnan(values), axis=0), np.arange(values.shape[1])]
        started = np.cumsum(~np.isnan(values), axis=0) > 0
        with np.errstate(invalid="ignore"):
            blown = np.cumsum((np.isnan(values) & started) | (values > BLOWN_UP * start), axis=0) > 0
        values[:, gone] = np.where(blown, np.inf, values)[:, gone]
    if n_seeds < SEEDS_FOR_CI:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an x where every run is NaN
            middle, low, high = np.nanmedian(values, axis=1), np.nanmin(values, axis=1), np.nanmax(values, axis=1)
    else:
        middle, low, high = median_bands(values)
    ax.plot(wide.index, np.where(np.isinf(middle), np.nan, middle), label=name, **look)
    ends = np.flatnonzero(np.isinf(middle))
    if len(ends) and ends[0] > 0 and np.isfinite(middle[ends[0] - 1]):  # where half of the runs had diverged
        ax.plot([wide.index[ends[0] - 1]], [middle[ends[0] - 1]], "x", color=look["color"], markersize=9, mew=2)
    open_above = np.isinf(high)  # an interval with no upper end (enough runs diverged): paler, up to the axis top
    ax.fill_between(wide.index, low, high, where=~open_above, color=look["color"], alpha=0.2, linewidth=0)
    if open_above.any():
        ax.fill_between(wide.index, low, 1e100, where=open_above, color=look["color"], alpha=0.07, linewidth=0)
    return middle


def _objective_label(has_optimum: bool) -> str:
    return "suboptimality  loss - f*" if has_optimum else "training loss"


def _chosen(df: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    return df.merge(best[["problem_label", "optimizer", "config"]], on=["problem_label", "optimizer", "config"])


def _best_note(best: pd.DataFrame) -> str:
    if (best["config"] == best["optimizer"]).all():
        return ""  # one setting per optimizer: nothing was chosen
    return " Each optimizer is shown at its best setting by median final value (listed in the report's first table)."


def _n_seeds(final: pd.DataFrame) -> int:
    return int(final.groupby("config")["seed"].nunique().min())


def _curves(
    data: pd.DataFrame,
    y: str,
    x: str,
    n_seeds: int,
    ylabel: Any,
    floors: dict[str, float] | None = None,
    goals: dict[str, float] | None = None,
) -> tuple[matplotlib.figure.Figure, list[Any], list[str], str]:
    """A line per optimizer (the median over seeds and a band) per problem; ``goals``: a target
    objective per problem, drawn as a line."""
    problems = sorted(data["problem_label"].unique())
    fig, axes = facets.grid(len(problems))
    marked, epochs, per_step, diverged = [], [], [], []
    band = _band(n_seeds)
    for problem, ax in zip(problems, axes, strict=True):
        part = data[data["problem_label"] == problem]
        column, xlabel = facets.x_axis(part, x)
        if column == "epoch":
            epochs.append(problem)
        floor = (floors or {}).get(problem)
        plotted = facets.clip(part[y], floor) if floors is not None else part[y]
        part = part.assign(plotted=plotted)
        costs = step_costs(part) if x == "time_s" else {}
        medians = []
        for name, runs in part.groupby("optimizer", sort=True):
            if x == "time_s":  # each step at the optimizer's median seconds per step: one x for every seed
                runs = runs.assign(seconds=runs["step"] * costs[name])
                column = "seconds"
            look = facets.look(name, runs[column].nunique())
            medians.append(_median_line(ax, runs, column, name, n_seeds, look, objective=floors is not None))
            gone = runs.loc[runs["status"] == "diverged", "run_id"].nunique()
            if gone and floors is not None:  # an objective: counted as +inf (accuracy curves stop where runs did)
                diverged.append(f"{name} {gone}/{runs['run_id'].nunique()} on {problem}")
        if costs:
            per_step.append(f"{problem}: {cost_text(costs)}")
        if goals and problem in goals:
            facets.mark_target(ax, goals[problem])
        if floors is not None:
            ax.set_yscale("log")
            finite = np.concatenate(medians)
            finite = finite[np.isfinite(finite)]
            if len(finite):  # the medians set the axis: a diverged run's 1e30 never stretches it
                ax.set_ylim(top=float(finite.max()) * 3)
            if facets.mark_floor(ax, floor, float(plotted.min())):
                marked.append(problem)
            facets.log_labels(ax.yaxis)
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel(problem) if callable(ylabel) else ylabel)
        ax.grid(True, which="major", alpha=0.3)
    what = f"The line is the median over seeds; {band}."
    if diverged:
        what += (
            f" Diverged runs ({'; '.join(diverged)}) count as +inf from where they blew up (past {BLOWN_UP:g}x "
            "their start): a line ends, marked x, where half of its runs had; a paler band reaching the top "
            "is an interval open above."
        )
    if goals:
        what += " The dashed grey line is the problem's target (median over runs, where it is relative to the start)."
    if x == "time_s":
        what += (
            " x is each step at the optimizer's median seconds per step on that problem (optimizer work: "
            "gradient and step, evaluation excluded; each run's rate is the median of 5 timed windows), so "
            f"its seeds share one time axis. Seconds per step: {'; '.join(per_step)}."
        )
    if epochs:
        what += (
            f" On {', '.join(epochs)} the optimizers take steps of different batch sizes, so x counts epochs "
            "(passes over the data) rather than steps."
        )
    return fig, axes, marked, what


REFERENCES = ("gd", "torch-sgd", "sgd")  # the step other steps' costs are given relative to, where present


def step_costs(runs: pd.DataFrame) -> dict[str, float]:
    """Median seconds per optimizer step of each optimizer's runs (each run: its last time_s / its steps)."""
    ends = runs[runs["step"] > 0].groupby(["optimizer", "run_id"])[["time_s", "step"]].max()
    rate = (ends["time_s"] / ends["step"]).groupby(level="optimizer").median()
    return {name: float(rate.get(name, math.nan)) for name in sorted(runs["optimizer"].unique())}


def cost_text(costs: dict[str, float]) -> str:
    """``gd 0.31 ms, torch-adam 0.42 ms (1.4x gd's step)``: each cost, relative to a reference optimizer."""
    reference = next((r for r in REFERENCES if r in costs), min(costs, key=lambda n: (costs[n], n)))
    parts = []
    for name, cost in costs.items():
        text = f"{name} {cost * 1e3:.3g} ms"
        if name != reference and math.isfinite(cost) and costs[reference] > 0:
            text += f" ({cost / costs[reference]:.2g}x {reference}'s step)"
        parts.append(text)
    return ", ".join(parts)


def loss_curves(
    df: pd.DataFrame, final: pd.DataFrame, x: str = "step", goals: dict[str, float] | None = None
) -> Figure:
    """The objective against steps (epochs where batch sizes differ) or wall time, log y, a facet per
    problem; ``goals`` (the target objective per problem) are drawn as lines."""
    best = best_configs(final)
    data = _chosen(df, best)
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    floors = float_floor(df)
    fig, _, marked, what = _curves(
        data.assign(value=data["objective"]),
        "value",
        x,
        _n_seeds(final),
        lambda p: _objective_label(has_optimum.get(p, False)),
        floors,
        goals,
    )
    same = identical(df, best) if x != "time_s" else {}  # wall times never coincide
    facets.legend(fig, sorted(data["optimizer"].unique()), facets.same_notes(same, data))
    against = "wall time" if x == "time_s" else "optimizer steps (epochs where batch sizes differ)"
    caption = (
        f"Training objective against {against}, log scale: suboptimality loss - f* where the problem knows "
        f"its optimum f*, else the loss. {what}"
        + facets.floor_note(floors, marked, df)
        + facets.same_note(same)
        + _best_note(best)
    )
    return Figure("loss_vs_step" if x == "step" else "loss_vs_time", fig, caption)


def accuracy_curves(df: pd.DataFrame, final: pd.DataFrame) -> Figure | None:
    if "test_accuracy" not in df or df["test_accuracy"].isna().all():
        return None
    best = best_configs(final)
    data = _chosen(df[df["test_accuracy"].notna()], best)
    fig, axes, _, what = _curves(data, "test_accuracy", "step", _n_seeds(final), "test accuracy")
    for ax in axes:
        ax.set_ylim(0, 1.02)
    same = {p: pairs for p, pairs in identical(df, best).items() if p in set(data["problem_label"])}
    facets.legend(fig, sorted(data["optimizer"].unique()), facets.same_notes(same, data))
    caption = (
        f"Test accuracy against optimizer steps (epochs where batch sizes differ). {what}"
        + facets.same_note(same)
        + _best_note(best)
    )
    return Figure("test_accuracy", fig, caption)


def lr_sensitivity(final: pd.DataFrame, floors: dict[str, float] | None = None) -> Figure | None:
    """Final objective against learning rate, when some optimizer was run at several."""
    if final.groupby(["problem_label", "optimizer"])["lr"].nunique().max() < 2:
        return None
    floors = floors or {}
    best_per_lr = best(final, ["problem_label", "optimizer", "lr"], "config").sort_values("lr")
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    problems = sorted(best_per_lr["problem_label"].unique())
    fig, axes = facets.grid(len(problems))
    marked, drawn = [], {}
    for j, (problem, ax) in enumerate(zip(problems, axes, strict=True)):
        part = best_per_lr[best_per_lr["problem_label"] == problem]
        plotted = facets.clip(part["final"], floors.get(problem))
        for name, points in part.assign(plotted=plotted).groupby("optimizer", sort=True):
            ax.plot(points["lr"], points["plotted"], **facets.look(name, 1), label=name)
            drawn.setdefault(name, []).extend(
                (j, lr, final) for lr, final in zip(points["lr"], points["final"], strict=True)
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        if facets.mark_floor(ax, floors.get(problem), float(plotted.min())):
            marked.append(problem)
        facets.log_labels(ax.yaxis)
        top = ax.get_ylim()[1]
        gone = part[~part["final"].map(math.isfinite)]
        for _, at_lr in gone.groupby("lr"):  # side by side where several diverged at one lr: every colour shows
            for i, row in enumerate(at_lr.itertuples()):
                shift = 10 ** (0.045 * (i - (len(at_lr) - 1) / 2))
                ax.scatter(
                    [row.lr * shift], [top], marker="x", s=60, color=style(row.optimizer).color, clip_on=False, zorder=5
                )
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final " + _objective_label(has_optimum.get(problem, False)))
        ax.grid(True, which="major", alpha=0.3)
    facets.legend(fig, sorted(best_per_lr["optimizer"].unique()), facets.coinciding(drawn))
    caption = (
        "Learning-rate sensitivity: the final objective (median over seeds; at each lr the best of the "
        "other settings) against the learning rate, log-log. An x on the top edge marks an lr where the "
        "median run diverged (several at one lr stand side by side)." + facets.floor_note(floors, marked, final)
    )
    return Figure("lr_sensitivity", fig, caption)


def final_distribution(final: pd.DataFrame, floors: dict[str, float] | None = None) -> Figure:
    """A horizontal box per optimizer (its best setting) over seeds, each seed a dot, a facet per problem."""
    floors = floors or {}
    best = best_configs(final)
    data = _chosen(final, best)
    problems = sorted(data["problem_label"].unique())
    order = sorted(data["optimizer"].unique())
    fig, axes = facets.grid(len(problems), height=0.5 + 0.42 * len(order))
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    marked = []
    for problem, ax in zip(problems, axes, strict=True):
        part = data[data["problem_label"] == problem]
        part = part.assign(plotted=facets.clip(part["final"], floors.get(problem)))
        with warnings.catch_warnings():  # seaborn 0.13 hands matplotlib 3.11 a deprecated boxplot argument
            warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(
                data=part,
                x="plotted",
                y="optimizer",
                hue="optimizer",
                order=order,
                hue_order=order,
                palette=colors(order),
                saturation=1,  # the optimizer's own colour, not seaborn's faded one
                ax=ax,
                showfliers=False,
                legend=False,
                log_scale=True,
                width=0.6,
            )
        state = np.random.get_state()  # seaborn jitters with numpy's global generator: the same figure every time
        np.random.seed(0)
        try:
            sns.stripplot(data=part, x="plotted", y="optimizer", order=order, color="black", size=3.5, alpha=0.7, ax=ax)
        finally:
            np.random.set_state(state)
        if facets.mark_floor(ax, floors.get(problem), float(part["plotted"].min()), axis="x"):
            marked.append(problem)
        for k, name in enumerate(order):  # diverged runs have no value: a mark at the right edge, counted
            mine = part[part["optimizer"] == name]
            gone = int((mine["status"] == "diverged").sum())
            if gone:
                edge = ax.get_yaxis_transform()  # x in axes fractions, y in the categories' data units
                ax.scatter(
                    [0.985], [k], marker=">", s=46, color=style(name).color, transform=edge, clip_on=False, zorder=4
                )
                ax.text(0.965, k - 0.28, f"{gone}/{len(mine)} diverged", transform=edge, ha="right", fontsize=7.5)
        facets.log_labels(ax.xaxis)
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel("final " + _objective_label(has_optimum.get(problem, False)))
        ax.set_ylabel("")
        ax.grid(True, axis="x", which="major", alpha=0.3)
    n_div = int((data["status"] == "diverged").sum())
    caption = (
        "Final objective per optimizer at its best setting: a box over seeds with each seed as a dot."
        + (
            f" {n_div} diverged run(s) have no final value: each optimizer's count is written at the right "
            "edge, marked with a triangle; its box spans the runs that did not diverge."
            if n_div
            else ""
        )
        + facets.floor_note(floors, marked, final)
    )
    return Figure("final_distribution", fig, caption)


def time_to_target(final: pd.DataFrame, target_text: str) -> Figure:
    """Per problem, two bar panels: epochs or steps, and seconds, until the target (median over seeds)."""
    best = best_configs(final)
    data = _chosen(final, best)
    unit = cost_unit(final)
    measures = ((f"{unit}_to_target", f"{unit} to target"), ("seconds_to_target", "seconds to target"))
    problems = sorted(data["problem_label"].unique())
    order = sorted(data["optimizer"].unique())
    cols = min(len(problems), COLUMNS)
    rows = math.ceil(len(problems) / cols)
    height = 1.0 + 0.38 * len(order)
    fig = plt.figure(figsize=(cols * WIDTH, rows * height), layout="constrained")
    panels = fig.subfigures(rows, cols, squeeze=False).ravel()
    for panel in panels[len(problems) :]:
        panel.set_visible(False)
    for problem, panel in zip(problems, panels, strict=False):
        part = data[data["problem_label"] == problem]
        panel.suptitle(problem, fontsize=10)
        reached = part[part[measures[0][0]].map(math.isfinite)]
        if reached.empty:  # say so in words, not with two empty axes
            panel.text(0.5, 0.45, "no run reached the target", ha="center", va="center", fontsize=11, color="0.25")
            continue
        axes = panel.subplots(1, 2, sharey=True)
        for ax, (column, label) in zip(axes, measures, strict=True):
            # the leaderboard's median: over every run, one that never got there counting as inf, so a
            # bar is never the median of the few runs that did; whiskers span the runs that got there
            medians, spans = {}, {}
            for name in order:
                values = part.loc[part["optimizer"] == name, column].to_numpy(dtype=float)
                finite = values[np.isfinite(values)]
                medians[name] = float(np.median(values)) if len(values) else math.inf
                spans[name] = (finite.min(), finite.max()) if len(finite) else None
            shown = [name for name in order if math.isfinite(medians[name])]
            ax.barh(
                [order.index(n) for n in shown],
                [medians[n] for n in shown],
                xerr=[[medians[n] - spans[n][0] for n in shown], [spans[n][1] - medians[n] for n in shown]],
                color=[colors(order)[n] for n in shown],
                ecolor="0.3",
                capsize=3,
            )
            ax.set_ylim(len(order) - 0.5, -0.5)
            right = ax.get_xlim()[1]
            for k, name in enumerate(order):
                if not math.isfinite(medians[name]):
                    got = int(np.isfinite(part.loc[part["optimizer"] == name, column].to_numpy(dtype=float)).sum())
                    said = "not reached" if not got else "over budget: fewer than half reached"
                    ax.text(0.02 * right, k, said, va="center", fontsize=8.5, color="0.3")
            ax.set_xlabel(label)
            ax.set_ylabel("")
            ax.grid(True, axis="x", alpha=0.3)
        counts = part.groupby("optimizer")[measures[0][0]].agg(lambda v: (int(v.map(math.isfinite).sum()), len(v)))
        counts = {name: counts.get(name, (0, 0)) for name in order}  # an optimizer not run on this problem: 0/0
        labels = [name if got in (0, runs) else f"{name}  {got}/{runs}" for name, (got, runs) in counts.items()]
        axes[0].set_yticks(range(len(order)), labels)
    caption = (
        f"Time to target ({target_text}): median {unit} (left) and optimizer seconds (right) over every seed, "
        "a run that never reached it (diverged runs included) counting as infinitely slow, as in the leaderboard; "
        "measured at recorded points (--eval-every K records more often); whiskers span the runs that reached it. "
        "An optimizer named 'k/n' reached it on k of n seeds; 'over budget' where fewer than half did, "
        "'not reached' where none did."
        + (" Steps differ in batch size between optimizers here, so the count is epochs." if unit == "epochs" else "")
        + _best_note(best)
    )
    return Figure("time_to_target", fig, caption)


PROFILE_PROBLEMS = 4  # fewer: its fractions move in steps of a third or more, and read as a ranking they are not


def profile_note(final: pd.DataFrame) -> str | None:
    """Why the performance profile is not drawn, where the results have 2 or 3 problems."""
    count = final["problem_label"].nunique()
    if 2 <= count < PROFILE_PROBLEMS:
        return (
            f"No performance profile: it needs at least {PROFILE_PROBLEMS} problems (here {count}); over fewer, "
            f"its fractions move in steps of 1/{count} and would read as a ranking they are not."
        )
    return None


def profile(final: pd.DataFrame) -> Figure | None:
    """Dolan-Moré performance profile over the problems (a problem per name and options), log2 x."""
    problems = sorted(final["problem_label"].unique())
    if len(problems) < PROFILE_PROBLEMS:
        return None  # the report says why (profile_note)
    unit = cost_unit(final)
    prof = performance_profile(final, f"{unit}_to_target")
    finite = prof.loc[prof["tau"].map(math.isfinite), "tau"]
    right = 2.0 ** max(1, math.ceil(math.log2(finite.max() * 1.05)))  # room past the last step, at least 2
    fig, ax = plt.subplots(figsize=(6.6, 3.6), layout="constrained")
    names = sorted(prof["optimizer"].unique())
    curves = {}
    for name in names:
        part = prof[prof["optimizer"] == name].sort_values("tau")
        curves[name] = ([*part["tau"], right], [*part["fraction"], part["fraction"].iloc[-1]])
    notes = facets.coinciding({name: list(zip(*xy, strict=True)) for name, xy in curves.items()})
    for name in names:
        look = facets.look(name, len(curves[name][0]))
        ax.step(*curves[name], where="post", **look, label=name + notes.get(name, ""))
    ax.set_xscale("log", base=2)
    ax.set_xlim(1, right)
    ticks = [2.0**i for i in range(int(math.log2(right)) + 1)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"τ ({unit} to target / the fastest optimizer's)")
    ax.set_ylabel(f"fraction of the {len(problems)} problems")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    caption = (
        f"Performance profile (Dolan & Moré): for each optimizer at its best setting, the fraction of the "
        f"{len(problems)} problems ({'; '.join(problems)}) it brings to the target within τ times the {unit} "
        "of the fastest optimizer on that problem (median over seeds). A problem it never solves never counts. "
        "A problem with different options counts once per setting of them."
    )
    return Figure("performance_profile", fig, caption)


def paired(pairs: Sequence[tuple[str, str, str, Sequence[float]]]) -> Figure | None:
    """What a bench's paired test compared: per problem, per candidate-baseline pair, each seed's
    log10(candidate / baseline), zero marked; a seed where only one side diverged sits at the edge
    (a triangle), counted in the caption. ``pairs``: (problem, candidate, baseline, per-seed ratios)."""
    if not pairs:
        return None
    problems = list(dict.fromkeys(p for p, *_ in pairs))
    fig, axes = facets.grid(len(problems))
    finite = [math.log10(r) for *_, ratios in pairs for r in ratios if 0 < r < math.inf]
    edge = max([abs(v) for v in finite] + [0.1]) * 1.15
    edges = 0
    for problem, ax in zip(problems, axes, strict=True):
        mine = [(c, b, list(r)) for p, c, b, r in pairs if p == problem]
        for i, (candidate, _, ratios) in enumerate(mine):
            look = facets.look(candidate, 1)
            values = np.array([math.log10(r) if 0 < r < math.inf else (edge if r > 1 else -edge) for r in ratios])
            jitter = (np.arange(len(values)) - (len(values) - 1) / 2) * (0.5 / max(len(values), 1))
            at_edge = np.array([not 0 < r < math.inf for r in ratios])
            edges += int(at_edge.sum())
            ax.scatter(i + jitter[~at_edge], values[~at_edge], color=look["color"], s=18, zorder=3)
            for side, marker in ((values > 0, "^"), (values < 0, "v")):
                where = at_edge & side
                ax.scatter(i + jitter[where], values[where], color=look["color"], marker=marker, s=40, zorder=3)
            ax.plot([i - 0.3, i + 0.3], [float(np.median(values))] * 2, color="black", linewidth=1.5)
        ax.axhline(0.0, color="0.4", linewidth=1, linestyle="--")
        for i in range(1, len(mine)):
            if mine[i][0] != mine[i - 1][0]:  # a new candidate: a thin separator
                ax.axvline(i - 0.5, color="0.8", linewidth=0.8)
        ax.set_xticks(range(len(mine)), [f"vs {b}" for _, b, _ in mine], fontsize=8, rotation=20, ha="right")
        ax.set_xlim(-0.6, len(mine) - 0.4)
        ax.set_ylim(-edge * 1.05, edge * 1.05)
        ax.set_ylabel("log10(candidate / baseline)")
        ax.set_title(problem, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    candidates = list(dict.fromkeys(c for _, c, _, _ in pairs))
    handles = [Line2D([], [], linestyle="none", marker="o", color=facets.look(c, 1)["color"]) for c in candidates]
    fig.legend(handles, candidates, loc="outside upper center", ncols=min(len(candidates), 4), frameon=False)
    caption = (
        "What each verdict compared: per seed, a dot in the candidate's colour at log10 of its final "
        "objective over the baseline's on the same seed (the same data, initialisation and shuffle); "
        "below the dashed zero the candidate ended lower. The black bar is the median. Final objectives "
        "are floored at the float resolution, so rounding noise reads as a tie."
    )
    if edges:
        caption += (
            f" {edges} seed(s) where only one side diverged sit at the edge as triangles (top: the "
            "candidate diverged; bottom: the baseline)."
        )
    return Figure("paired_ratios", fig, caption)
