"""A candidate's advantage against model size: the figure of a bench whose suite has a scale ladder.

A *ladder* is two or more of a suite's problems that differ in one size option only (``lm`` at
``n_embd`` 16, 32 and 48: :data:`SIZES`). For each, the figure draws every candidate's median paired ratio to
each baseline (its final objective over the baseline's on the same seed; below 1 the candidate
ends lower) with the verdict's 95% interval, against the model's parameter count: how Wen et al.
(2025) found matrix methods' advantage over AdamW shrinking with size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.ticker import FuncFormatter, NullLocator

from optbench.reports import facets
from optbench.reports.figures import Figure

SIZES = ("n_embd", "n_layer", "n_head", "hidden", "channels", "width", "rank", "dim")  # options that size a model
STYLES = ("-", "--", "-.", (0, (1, 1)))  # one per baseline


def ladders(entries: Sequence[Any]) -> dict[str, tuple[str, list[Any]]]:
    """Entries of one problem differing in one numeric option: ``{label: (option, entries by size)}``."""
    out = {}
    for option in sorted({k for e in entries for k in e.options if k in SIZES}):
        groups: dict[str, list[Any]] = {}
        for e in entries:
            value = e.options.get(option)
            if isinstance(value, int | float) and not isinstance(value, bool):
                rest = {k: v for k, v in e.options.items() if k != option}
                groups.setdefault(repr((e.problem, sorted(rest.items()))), []).append(e)
        for group in groups.values():
            if len(group) >= 2 and len({e.options[option] for e in group}) == len(group):
                shared = " ".join(f"{k}={v}" for k, v in group[0].options.items() if k != option)
                out[f"{group[0].problem} {shared}".strip()] = (option, sorted(group, key=lambda e: e.options[option]))
    return out


def advantage(
    comparisons: pd.DataFrame, entries: Sequence[Any], sizes: Mapping[str, int], baselines: Sequence[str]
) -> Figure | None:
    """The figure, or None when the suite has no ladder. ``sizes``: each entry label's parameter count."""
    found = ladders(entries)
    if not found:
        return None
    fig, axes = facets.grid(len(found))
    for ax, (label, (option, group)) in zip(axes, found.items(), strict=True):
        rows = comparisons[comparisons["problem"].isin([e.label for e in group])]
        for (candidate, baseline), part in rows.groupby(["candidate", "baseline"], sort=False):
            if baseline not in baselines:
                continue
            at = {r["problem"]: r for r in part.to_dict("records")}
            points = [(sizes[e.label], at[e.label]) for e in group if e.label in at]
            x = [n for n, _ in points]
            y = [r["ratio"] for _, r in points]
            low = [r["ratio"] - r["ratio_low"] for _, r in points]
            high = [r["ratio_high"] - r["ratio"] for _, r in points]
            look = facets.look(candidate, len(points))
            style = STYLES[list(baselines).index(baseline) % len(STYLES)]
            finite = [i for i, v in enumerate(y) if 0 < v < math.inf]
            ax.errorbar(
                [x[i] for i in finite],
                [y[i] for i in finite],
                yerr=[[low[i] for i in finite], [high[i] for i in finite]],
                color=look["color"],
                marker=look.get("marker", "o"),
                capsize=3,
                linestyle=style,
                label=f"{candidate} vs {baseline}",
            )  # fmt: skip
            for i in set(range(len(y))) - set(finite):  # a side diverged on most seeds: marked, not dropped
                ax.annotate("diverged", (x[i], 1.0), color=look["color"], fontsize=8, ha="center")
        ax.axhline(1.0, color="0.4", linewidth=1, linestyle=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [sizes[e.label] for e in group]
        ax.set_xticks(ticks, [f"{_count(n)}\n{option}={e.options[option]}" for n, e in zip(ticks, group, strict=True)])
        ax.xaxis.set_minor_locator(NullLocator())
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(FuncFormatter(lambda v, _: f"{v:.2g}"))
        ax.set_xlabel("parameters")
        ax.set_ylabel("final objective, candidate / baseline")
        ax.set_title(label, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    caption = (
        "Advantage against model size: each candidate's median over the evaluation seeds of its final "
        "objective divided by the baseline's on the same seed, with the verdict's 95% bootstrap interval, "
        "at each size of the suite's ladder. Below the dotted 1 the candidate ends lower; a line that "
        "climbs toward 1 is an advantage that shrinks as the model grows."
    )
    return Figure("advantage_vs_size", fig, caption)


def _count(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    return f"{n / 1e3:.3g}k" if n >= 1e3 else str(n)


def parameter_counts(entries: Sequence[Any]) -> dict[str, int]:
    """Each ladder entry's parameter count, from its problem built once (seed 0)."""
    from optbench.registry import PROBLEMS

    out = {}
    for _, group in ladders(entries).values():
        for entry in group:
            problem = PROBLEMS.get(entry.problem).target(seed=0, **entry.options)
            out[entry.label] = sum(math.prod(p.shape) for p in problem.parameters())
    return out
