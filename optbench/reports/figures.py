"""Seaborn figures of a results table. Each function returns a :class:`Figure`: a name, the
matplotlib figure and a caption that says what is drawn (and what a band means)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from optbench.reports.data import best_configs, performance_profile

FLOOR = 1e-12  # suboptimality below this is drawn at it: a log axis cannot show 0 or float noise below f*
SEEDS_FOR_CI = 5  # with fewer seeds a band shows the spread (min to max), not a bootstrap interval


@dataclass
class Figure:
    name: str
    figure: matplotlib.figure.Figure
    caption: str


def palette(optimizers: list[str]) -> dict[str, Any]:
    """One color per optimizer, the same in every figure of a report."""
    names = sorted(set(optimizers))
    colors = sns.color_palette("colorblind" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def _band(n_seeds: int) -> tuple[Any, str]:
    if n_seeds < SEEDS_FOR_CI:
        return (lambda v: (v.min(), v.max())), f"the band spans min to max over {n_seeds} seed(s)"
    return ("ci", 95), f"the band is a 95% bootstrap confidence interval over {n_seeds} seeds"


def _objective_label(has_optimum: bool) -> str:
    return "suboptimality  loss - f*" if has_optimum else "training loss"


def _for_plot(values: pd.Series) -> pd.Series:
    """Log-axis ready: non-finite (diverged) values become gaps, tiny ones sit at FLOOR."""
    return values.where(values.map(math.isfinite)).clip(lower=FLOOR)


def _chosen(df: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    return df.merge(best[["problem_label", "optimizer", "config"]], on=["problem_label", "optimizer", "config"])


def _best_note(best: pd.DataFrame) -> str:
    tuned = best[best["config"] != best["optimizer"]]
    if tuned.empty:
        return ""
    picks = "; ".join(f"{r.problem_label}: {r.config}" for r in tuned.itertuples())
    return f" Each optimizer is shown at its best setting by median final value ({picks})."


def _lines(data: pd.DataFrame, colors: dict[str, Any]) -> dict[str, Any]:
    """What every line figure shares: a facet per problem, a color per optimizer, both in sorted order."""
    return {
        "kind": "line",
        "hue": "optimizer",
        "col": "problem_label",
        "col_order": sorted(data["problem_label"].unique()),
        "hue_order": sorted(data["optimizer"].unique()),
        "palette": colors,
        "height": 3.4,
        "aspect": 1.35,
    }


def _finish(grid: sns.FacetGrid, ylabel: Any, xlabel: str) -> matplotlib.figure.Figure:
    for problem, ax in zip(grid.col_names, grid.axes.flat, strict=True):
        ax.set_title(problem)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel(problem) if callable(ylabel) else ylabel)
        ax.grid(True, which="major", alpha=0.3)
    grid.tight_layout()  # the grid's own layout keeps room for its legend, outside the axes
    return grid.figure


def loss_curves(df: pd.DataFrame, final: pd.DataFrame, colors: dict[str, Any], x: str = "step") -> Figure:
    """The objective against steps or wall time, log y, one line per optimizer, a facet per problem."""
    best = best_configs(final)
    data = _chosen(df, best).assign(plotted=lambda d: _for_plot(d["objective"]))
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    n_seeds = int(final.groupby("config")["seed"].nunique().min())
    if x == "step":
        errorbar, band = _band(n_seeds)
        kwargs: dict[str, Any] = {"estimator": "median", "errorbar": errorbar}
        what = f"The line is the median over seeds; {band}."
    else:  # wall times differ between seeds: draw every seed
        kwargs = {"units": "seed", "estimator": None, "alpha": 0.8, "linewidth": 1}
        what = f"Each of the {n_seeds} seed(s) is drawn as its own line."
    grid = sns.relplot(
        data=data,
        x=x,
        y="plotted",
        **_lines(data=data, colors=colors),
        facet_kws={"sharey": False, "sharex": False},
        **kwargs,
    )
    grid.set(yscale="log")
    xlabel = "optimizer steps" if x == "step" else "optimizer wall time (s, evaluation excluded)"
    figure = _finish(grid, lambda p: _objective_label(has_optimum.get(p, False)), xlabel)
    name = "loss_vs_step" if x == "step" else "loss_vs_time"
    caption = (
        f"Training objective against {xlabel} (log scale): suboptimality loss - f* where the problem "
        f"knows its optimum f*, else the loss. Values below {FLOOR:g} are drawn at {FLOOR:g}. {what}" + _best_note(best)
    )
    return Figure(name, figure, caption)


def accuracy_curves(df: pd.DataFrame, final: pd.DataFrame, colors: dict[str, Any]) -> Figure | None:
    if "test_accuracy" not in df or df["test_accuracy"].isna().all():
        return None
    best = best_configs(final)
    data = _chosen(df[df["test_accuracy"].notna()], best)
    n_seeds = int(final.groupby("config")["seed"].nunique().min())
    errorbar, band = _band(n_seeds)
    grid = sns.relplot(
        data=data,
        x="step",
        y="test_accuracy",
        **_lines(data=data, colors=colors),
        estimator="median",
        errorbar=errorbar,
        facet_kws={"sharex": False},
    )
    grid.set(ylim=(0, 1.02))
    figure = _finish(grid, "test accuracy", "optimizer steps")
    caption = f"Test accuracy against steps. The line is the median over seeds; {band}." + _best_note(best)
    return Figure("test_accuracy", figure, caption)


def lr_sensitivity(final: pd.DataFrame, colors: dict[str, Any]) -> Figure | None:
    """Final objective against learning rate, when some optimizer was run at several."""
    if final.groupby(["problem_label", "optimizer"])["lr"].nunique().max() < 2:
        return None
    medians = final.groupby(["problem_label", "optimizer", "config", "lr"], as_index=False)["final"].median()
    best_per_lr = medians.sort_values("final").drop_duplicates(["problem_label", "optimizer", "lr"])
    best_per_lr = best_per_lr.assign(plotted=lambda d: _for_plot(d["final"])).sort_values("lr")
    diverged = best_per_lr[~best_per_lr["final"].map(math.isfinite)]
    grid = sns.relplot(
        data=best_per_lr,
        x="lr",
        y="plotted",
        **_lines(data=best_per_lr, colors=colors),
        marker="o",
        errorbar=None,  # one value per point: the median over seeds
        facet_kws={"sharey": False},
    )
    grid.set(xscale="log", yscale="log")
    for problem, ax in zip(grid.col_names, grid.axes.flat, strict=True):
        bad = diverged[diverged["problem_label"] == problem]
        top = ax.get_ylim()[1]
        for row in bad.itertuples():
            ax.scatter([row.lr], [top], marker="x", s=60, color=colors[row.optimizer], clip_on=False, zorder=5)
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    figure = _finish(grid, lambda p: "final " + _objective_label(has_optimum.get(p, False)), "learning rate")
    caption = (
        "Learning-rate sensitivity: the final objective (median over seeds; at each lr the best of the "
        "other settings) against the learning rate, log-log. An x on the top edge marks an lr where the "
        "runs diverged."
    )
    return Figure("lr_sensitivity", figure, caption)


def final_distribution(final: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    best = best_configs(final)
    data = _chosen(final, best).assign(plotted=lambda d: _for_plot(d["final"]))
    order = sorted(data["optimizer"].unique())
    with warnings.catch_warnings():  # seaborn 0.13 hands matplotlib 3.11 a deprecated boxplot argument
        warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
        grid = sns.catplot(
            data=data,
            x="optimizer",
            y="plotted",
            hue="optimizer",
            col="problem_label",
            col_order=sorted(data["problem_label"].unique()),
            kind="box",
            order=order,
            palette=colors,
            sharey=False,
            height=3.6,
            aspect=1.3,
            legend=False,
            fliersize=0,
        )
    grid.map_dataframe(sns.stripplot, x="optimizer", y="plotted", order=order, color="black", size=3.5, alpha=0.7)
    grid.set(yscale="log")
    has_optimum = final.groupby("problem_label")["has_optimum"].first().to_dict()
    figure = _finish(grid, lambda p: "final " + _objective_label(has_optimum.get(p, False)), "")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=40)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    grid.tight_layout()
    n_div = int((data["status"] == "diverged").sum())
    caption = "Final objective per optimizer at its best setting: a box over seeds with each seed as a dot." + (
        f" {n_div} diverged run(s) have no final value and are not drawn." if n_div else ""
    )
    return Figure("final_distribution", figure, caption)


def time_to_target(final: pd.DataFrame, colors: dict[str, Any], target_text: str) -> Figure:
    best = best_configs(final)
    data = _chosen(final, best)
    long = data.melt(
        id_vars=["problem_label", "optimizer", "seed"],
        value_vars=["steps_to_target", "seconds_to_target"],
        var_name="measure",
        value_name="cost",
    )
    long["measure"] = long["measure"].map({"steps_to_target": "steps", "seconds_to_target": "seconds"})
    solved = long[long["cost"].map(math.isfinite)]
    order = sorted(data["optimizer"].unique())
    problems = sorted(data["problem_label"].unique())
    fig, axes = plt.subplots(2, len(problems), figsize=(4.6 * len(problems), 6.4), squeeze=False)
    for j, problem in enumerate(problems):
        for i, measure in enumerate(("steps", "seconds")):
            ax = axes[i][j]
            part = solved[(solved["problem_label"] == problem) & (solved["measure"] == measure)]
            if len(part):
                sns.barplot(
                    data=part,
                    x="optimizer",
                    y="cost",
                    hue="optimizer",
                    order=order,
                    palette=colors,
                    ax=ax,
                    estimator="median",
                    errorbar=(lambda v: (v.min(), v.max())),
                    legend=False,
                )
            ax.set_xticks(range(len(order)), order, rotation=40, ha="right")
            ax.set_xlim(-0.5, len(order) - 0.5)
            missing = long[(long["problem_label"] == problem) & (long["measure"] == measure)]
            for k, optimizer in enumerate(order):
                costs = missing[missing["optimizer"] == optimizer]["cost"]
                if len(costs) and not costs.map(math.isfinite).any():
                    ax.text(
                        k,
                        0.02,
                        "never",
                        rotation=90,
                        ha="center",
                        va="bottom",
                        transform=ax.get_xaxis_transform(),
                        color="dimgray",
                        fontsize=9,
                    )
            ax.set_title(problem if i == 0 else "")
            ax.set_xlabel("")
            ax.set_ylabel("steps to target" if measure == "steps" else "seconds to target")
            ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    caption = (
        f"Time to target ({target_text}): median steps (top) and optimizer seconds (bottom) over the seeds "
        "that reached it, measured at recorded points (--eval-every K records more often); whiskers span min "
        "to max. 'never' marks an optimizer none of whose runs reached "
        "the target (diverged runs included)." + _best_note(best)
    )
    return Figure("time_to_target", fig, caption)


def profile(final: pd.DataFrame, colors: dict[str, Any]) -> Figure | None:
    if final["problem_label"].nunique() < 2:
        return None
    prof = performance_profile(final)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for optimizer, part in prof.groupby("optimizer"):
        ax.step(part["tau"], part["fraction"], where="post", label=optimizer, color=colors[optimizer], linewidth=2)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ (steps to target / the best optimizer's)")
    ax.set_ylabel("fraction of problems solved")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    caption = (
        "Performance profile (Dolan & Moré): for each optimizer at its best setting, the fraction of the "
        f"{final['problem_label'].nunique()} problems it brings to the target within τ times the steps of the "
        "fastest optimizer on that problem (median over seeds). A problem it never solves never counts."
    )
    return Figure("performance_profile", fig, caption)
