"""Divergence, coinciding optimizers and targets as the figures draw them, checked on the figure data.

The table: gd on linreg over 10 seeds, and "flaky", a copy of those runs of which 6 blow up at step 3
(1e30, then inf, as a real diverged run is recorded), and "twin", an exact copy of gd; gd and twin
at two learning rates, flaky at one. Every check
was seen to fail with the drawing it guards put back as it was (median over survivors, a y axis set
by the 1e30, bars without counts, x marks on one spot).
"""

import math

import matplotlib
import matplotlib.collections
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest

import optbench
from optbench.reports import figures as fg
from optbench.reports.data import best_settings, finals, float_floor, label_runs, target_values
from optbench.reports.styles import PALETTE, color, distinct
from optbench.results.outcomes import Target

matplotlib.use("Agg")
SEEDS = range(10)
BLOWN = (0, 2, 3, 5, 7, 8)  # the seeds on which flaky diverges


def _flaky(runs: pd.DataFrame, name: str, blown: tuple[int, ...]) -> pd.DataFrame:
    parts = []
    for seed, run in runs.groupby("seed"):
        run = run.assign(optimizer=name)
        if seed in blown:
            run = run[run["step"] <= 4].copy()
            run.loc[run["step"] == 3, "loss"] = 1e30
            run.loc[run["step"] == 4, "loss"] = math.inf
            run["status"] = "diverged"
        parts.append(run)
    return pd.concat(parts)


@pytest.fixture(scope="module")
def planted():
    gd = pd.concat([optbench.run("linreg", "gd", lr=0.1, epochs=20, seed=s) for s in SEEDS], ignore_index=True)
    lr1 = pd.concat([optbench.run("linreg", "gd", lr=0.02, epochs=20, seed=s) for s in SEEDS], ignore_index=True)
    table = pd.concat(
        [gd, lr1, _flaky(gd, "flaky", BLOWN), _flaky(gd, "twin", ()), _flaky(lr1, "twin", ())],
        ignore_index=True,
    )
    df = label_runs(table)
    return df, finals(df, Target(0.1))


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_a_diverged_run_counts_as_inf_and_never_stretches_the_axis(planted):
    df, final = planted
    figure = fg.loss_curves(df, final, "step", target_values(df, Target(0.1)))
    ax = figure.figure.axes[0]
    flaky, gd = _lines(ax)["flaky"], _lines(ax)["gd"]
    y = np.asarray(flaky.get_ydata(), dtype=float)
    steps = np.asarray(flaky.get_xdata())
    # 6 of 10 diverged at step 3: from there the median is inf (not drawn), not the 4 survivors' median
    assert np.isfinite(y[steps < 3]).all() and np.isnan(y[steps >= 3]).all()
    survivors = df[(df["optimizer"] == "flaky") & (df["status"] == "ok")]
    assert survivors["run_id"].nunique() == 4  # what a median over survivors would have drawn, on to the end
    ends = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert len(ends) == 1 and list(ends[0].get_xdata()) == [2]  # marked where it ends
    assert matplotlib.colors.to_hex(ends[0].get_color()) == color("flaky")
    top = ax.get_ylim()[1]
    assert top < 1e3 and top == pytest.approx(3 * max(np.nanmax(gd.get_ydata()), np.nanmax(y)))  # not 1e30
    assert "flaky 6/10 on linreg" in figure.caption and "+inf" in figure.caption
    # the target: 10% of each run's start, the median over runs, as a dashed line
    start = df[df["step"] == 0].groupby("run_id")["objective"].first()
    target = [line for line in ax.get_lines() if np.allclose(line.get_ydata(), 0.1 * start.median(), rtol=1e-12)]
    assert len(target) == 1 and "target" in [t.get_text() for t in ax.texts]


def test_distributions_and_bars_count_the_diverged(planted):
    _, final = planted
    figure = fg.final_distribution(final).figure
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == ["6/10 diverged"]  # flaky's count, at the edge where its dots would be
    marks = [c for c in figure.axes[0].collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert any(
        matplotlib.colors.to_hex(m.get_facecolor()[0]) == color("flaky") and len(m.get_offsets()) == 1 for m in marks
    )
    bars = fg.time_to_target(final, "10%").figure
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert labels == ["flaky  4/10", "gd", "twin"]  # a partial success says how partial
    # 4 of 10 reached: its median over every run (the leaderboard's) is over budget, never a short bar of the 4
    drawn = [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars.axes[0].patches]
    assert color("flaky") not in drawn and sorted(drawn) == sorted([color("gd"), color("twin")])
    assert [t.get_text() for t in bars.axes[0].texts] == ["over budget: fewer than half reached"]


def test_coinciding_optimizers_are_both_drawn_and_named(planted):
    df, final = planted
    figure = fg.lr_sensitivity(final, float_floor(df))
    ax = figure.figure.axes[0]
    gd, twin = _lines(ax)["gd"], _lines(ax)["twin"]
    np.testing.assert_array_equal(gd.get_ydata(), twin.get_ydata())
    assert (gd.get_marker(), gd.get_linestyle()) != (twin.get_marker(), twin.get_linestyle())
    assert "twin (= gd)" in [t.get_text() for t in figure.figure.legends[0].get_texts()]
    # flaky's median run diverged at lr 0.1 (6 of 10): an x on the top edge, in its colour
    marks = [c for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert [list(m.get_offsets()[:, 0]) for m in marks] == [[0.1]]
    assert matplotlib.colors.to_hex(marks[0].get_facecolor()[0]) == color("flaky")


def test_two_diverged_at_one_lr_stand_side_by_side(planted):
    _, final = planted
    both = pd.concat([final, final[final["optimizer"] == "flaky"].assign(optimizer="flaky2")])
    ax = fg.lr_sensitivity(both).figure.axes[0]
    marks = [c for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]
    xs = sorted(float(m.get_offsets()[0, 0]) for m in marks)
    assert len(xs) == 2 and xs[0] < 0.1 < xs[1] and xs[1] / xs[0] < 1.3  # beside each other, both seen


def test_no_two_optimizers_of_a_page_share_a_colour():
    names = ["gd", "torch-adam", "boosted-gd", "flaky-gd", "gd-twin", "gd-same", "sign-sgd"]
    alone = {n: color(n) for n in names}
    assert len(set(alone.values())) < len(names)  # hashed into 16 colours, some of these collide
    with distinct(names):
        inside = {n: color(n) for n in names}
    assert len(set(inside.values())) == len(names) and set(inside.values()) <= set(PALETTE)
    assert inside["gd"] == alone["gd"] and inside["torch-adam"] == alone["torch-adam"]  # built-ins keep theirs
    assert {n: color(n) for n in names} == alone  # only inside the block


def test_best_settings_mark_grid_edges_and_rank_nothing(planted):
    _, final = planted
    best = best_settings(final).set_index("optimizer")
    assert best.loc["gd", "setting"] == "lr=0.1" and best.loc["gd", "edge"] == "lr"  # 0.1 of (0.02, 0.1)
    assert best["configs"].to_dict() == {"gd": 2, "twin": 2, "flaky": 1} and best.loc["flaky", "edge"] == ""
    # a report tests nothing (issue 30: the page ran its own Holm family): no winner, even a clear one
    lower = final.assign(final=np.where(final["optimizer"] == "gd", final["final"] / 3, final["final"]))
    assert "winner" not in best_settings(lower) and best_settings(lower)["optimizer"].iloc[0] == "gd"


def test_bars_of_problems_that_ran_different_optimizers(planted):
    """A problem that ran gd alone beside one that ran three: each panel names only what it has (a
    README sweep file did this, and the partial-success labels raised KeyError)."""
    _, final = planted
    other = final[final["optimizer"] == "gd"].assign(problem_label="quadratic")
    figure = fg.time_to_target(pd.concat([final, other], ignore_index=True), "10%").figure
    labels = [[t.get_text() for t in ax.get_yticklabels()] for ax in figure.axes[::2]]
    assert labels == [["flaky  4/10", "gd", "twin"], ["flaky", "gd", "twin"]]  # the categories are shared


def test_accuracy_curves_never_count_a_diverged_run_as_perfect(planted):
    """+inf is the worst objective but the best accuracy: accuracy curves leave diverged runs out."""
    df, final = planted
    with_accuracy = df.assign(test_accuracy=np.where(df["loss"].map(math.isfinite), 0.5, np.nan))
    ax = fg.accuracy_curves(with_accuracy, final).figure.axes[0]
    flaky = _lines(ax)["flaky"]
    assert np.nanmax(flaky.get_ydata()) <= 0.5 and not any(line.get_marker() == "x" for line in ax.get_lines())
