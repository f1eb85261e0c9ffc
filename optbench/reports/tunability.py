"""How much tuning an optimizer needs: the bench's best-of-k figure (Sivaprasad et al. 2020).

For each problem, each optimizer's best tuning score among k settings drawn from those its
exploration tried (every study's, pooled), against k: the median over resamples with its quartiles
(:func:`optbench.studies.board.tunability`). A curve that starts low is an optimizer that is good
untuned; one that needs many trials to come down is one whose verdict depends on the tuning budget.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.ticker import MaxNLocator

from optbench.reports import facets
from optbench.reports.figures import Figure


def best_of_k(table: pd.DataFrame, problems: list[str]) -> Figure | None:
    """The figure from a bench's tunability table (None when nothing was explored)."""
    if table is None or not len(table):
        return None
    shown = [p for p in problems if p in set(table["problem"])]
    fig, axes = facets.grid(len(shown))
    for ax, problem in zip(axes, shown, strict=True):
        part = table[table["problem"] == problem]
        for optimizer, curve in part.groupby("optimizer", sort=False):
            finite = curve[curve["best_median"].map(lambda v: 0 < v < math.inf)]
            look = facets.look(optimizer, len(finite))
            ax.plot(finite["trials"], finite["best_median"], label=optimizer, **look)
            band = curve[curve["best_q3"].map(lambda v: 0 < v < math.inf) & (curve["best_q1"] > 0)]
            ax.fill_between(band["trials"], band["best_q1"], band["best_q3"], color=look["color"], alpha=0.15)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("settings tried (k)")
        ax.set_ylabel("best tuning score of k")
        ax.set_title(problem, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    caption = (
        "Tunability: each optimizer's best tuning score (median final objective over its tuning seeds, or "
        "validation loss where the problem selects on it) among k settings drawn at random from those its "
        "exploration tried in every study, against k; the line is the median over resamples, the band its "
        "quartiles. Refinement's settings are not random draws and are left out. A diverged setting counts "
        "as infinite, so a curve starts where at least half of single draws finish."
    )
    return Figure("tunability", fig, caption)
