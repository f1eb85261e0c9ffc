"""Outcomes defined once (optbench.results.outcomes): by hand, and a bench whose outputs all agree."""

from __future__ import annotations

import doctest
import html
import math
import re

import numpy as np
import pandas as pd
import pytest
from support import invoke

from optbench.results import outcomes
from optbench.results.io import load_results
from optbench.results.outcomes import Target, best, coincide, final, on_edge, reach, resolution, shown


def run(losses, optimum=1.0, status="ok", dtype="float32"):
    n = len(losses)
    return pd.DataFrame(
        {
            "loss": losses,
            "optimum": [optimum] * n,
            "status": [status] * n,
            "step": [10 * i for i in range(n)],
            "epoch": [float(i) for i in range(n)],
            "time_s": [0.5 * i for i in range(n)],
            "problem_dtype": [dtype] * n,
            "seed": [0] * n,
        }
    )


def test_the_docstring_examples_hold():
    assert doctest.testmod(outcomes, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_final_objective_resolution_and_divergence_by_hand():
    noisy = run([5.0, 2.0, 1.0 - 1e-7])  # suboptimality 4, 1, then -1e-7: rounding noise below f*
    floor = np.finfo(np.float32).eps * 5.0
    assert resolution(noisy) == pytest.approx(floor)
    assert final(noisy, floor=False) == pytest.approx(-1e-7)  # what was measured
    assert final(noisy) == pytest.approx(floor)  # what comparisons use: never negative
    assert shown(final(noisy), resolution(noisy)) == "< resolution (about 6e-07)"
    assert resolution(run([5.0, 1.0], dtype="float64")) == pytest.approx(np.finfo(np.float64).eps * 5.0)
    assert final(run([5.0, 3.0, math.nan])) == 2.0  # an ok run: its last finite objective
    assert final(run([5.0, 3.0, math.nan], status="diverged")) == math.inf
    assert final(run([5.0, 3.0], status="error")) == math.inf
    assert final(run([math.nan, math.nan])) == math.inf
    assert final(run([3.0, 2.5], optimum=math.nan)) == 2.5  # f* unknown: the loss


def test_floors_divergence_and_the_text_of_a_run_never_show_noise_as_a_number():
    from optbench.results.io import summarize

    a, b = run([5.0, 1.0 - 1e-7]).assign(run_id="a"), run([7.0, 2.0], dtype="float64").assign(run_id="b")
    both = pd.concat([a, b, run([9.0, 2.0], optimum=math.nan).assign(run_id="c")]).assign(problem_label="p")
    assert outcomes.floors(both) == {"p": pytest.approx((resolution(a) + resolution(b)) / 2)}  # f* known: a, b
    assert outcomes.diverged(run([5.0, 4.0], status="diverged")) and outcomes.diverged(run([math.inf]))
    assert not outcomes.diverged(run([5.0, 4.0]))
    text = summarize(a.assign(optimizer="gd", problem="linreg", message=""))
    assert "gap          < resolution (about 6e-07)" in text and "-1e-07" not in text
    assert outcomes.targets_text({"x": Target(0.1), "y": Target(0.1)}) == "10% of each run's starting objective"
    assert outcomes.targets_text({"y": Target(0.5, relative=False), "x": Target(0.1)}) == (
        "x: 10% of each run's starting objective; y: objective <= 0.5"
    )


def test_targets_relative_and_absolute_and_when_they_are_reached_by_hand():
    r = run([11.0, 6.0, 2.0, 1.05])  # objective 10, 5, 1, 0.05
    assert reach(r, Target(0.5)) == (10.0, 0.5, 1.0)  # 5 <= 0.5 x 10 at step 10
    assert reach(r, Target(0.01)) == (30.0, 1.5, 3.0)  # 0.05 <= 0.1
    assert reach(r, Target(1.0, relative=False)) == (20.0, 1.0, 2.0)
    assert reach(r, Target(0.001)) == (math.inf, math.inf, math.inf)
    assert reach(r).steps == 20.0  # the default: 10% of the start
    assert str(Target(0.01)) == "1% of each run's starting objective"
    assert str(Target(0.5, relative=False)) == "objective <= 0.5"


def test_the_best_setting_is_the_lowest_median_and_a_diverged_run_counts_as_inf():
    table = pd.DataFrame(
        {
            "opt": ["b", "b", "b", "a", "a", "a", "a", "a", "a"],
            "lr": [0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1],
            "final": [2.0, 2.0, 2.0, 0.1, math.inf, math.inf, 0.5, 0.6, 0.7],
        }
    )
    chosen = best(table, ["opt"], "lr")
    assert chosen.to_dict("records") == [{"opt": "b", "lr": 0.1, "final": 2.0}, {"opt": "a", "lr": 0.1, "final": 0.6}]
    tie = pd.DataFrame({"opt": ["a", "a"], "lr": [0.5, 0.1], "final": [1.0, 1.0]})
    assert best(tie, ["opt"], "lr")["lr"].tolist() == [0.5]  # a tie goes to the setting seen first


def test_grid_edges_and_coinciding_runs():
    assert on_edge(0.5, [0.5, 0.1, 0.01]) and on_edge(0.01, [0.5, 0.1, 0.01])
    assert not on_edge(0.1, [0.5, 0.1, 0.01]) and not on_edge(0.1, [0.1])
    a = run([5.0, 2.0, 1.5])
    assert coincide(a, a.copy()) and coincide(a, a.assign(loss=a["loss"] * (1 + 1e-7)))
    assert not coincide(a, a.assign(loss=a["loss"] * (1 + 1e-7)), rtol=0)  # bit-identical only
    assert not coincide(a, a.iloc[:2]) and not coincide(a, a.assign(step=[0, 5, 10]))


SUITE = """
description = "linreg (reaches float noise) and rosenbrock (gd never reaches 1%)"
search = "lr"  # the lr grid alone (the protocol before spaces and studies): what this test measures
schedule = "constant"
lr = "0.001,0.01,0.1,0.5"
tune_seeds = "0"
eval_seeds = "10-16"

[[problems]]
problem = "linreg"
epochs = 60
target = 0.01
options = { n = 100 }

[[problems]]
problem = "rosenbrock"
epochs = 200
target = 0.2
options = { jitter = 0.1 }
"""

CARD = re.compile(r'<div class="card"><h3>(.*?)</h3><p class="target">target: (.*?)</p>(.*?)</table>', re.S)
ROW = re.compile(
    r"<tr(?: class=winner)?><td class='text'><span[^>]*></span>(.*?)</td><td class='text'>(.*?)</td>"
    r"<td>(.*?)</td><td>(.*?)</td><td>(\d+) of (\d+)</td>"
)


def cards(page: str) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for problem, target, table in CARD.findall(page):
        for optimizer, setting, final_text, spread, reached, seeds in ROW.findall(table):
            found[(html.unescape(problem), html.unescape(optimizer))] = {
                "target": html.unescape(target),
                "setting": html.unescape(setting),
                "final": html.unescape(final_text),
                "spread": html.unescape(spread),
                "reached": int(reached),
                "seeds": int(seeds),
            }
    return found


def test_a_bench_says_the_same_in_its_leaderboard_its_page_and_its_summary(tmp_path):
    suite = tmp_path / "two.toml"
    suite.write_text(SUITE)
    out = tmp_path / "bench"
    args = ["bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", str(suite), "--out", str(out)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")
    summary = pd.read_csv(out / "report" / "summary.csv")
    page = (out / "report" / "index.html").read_text()
    shown_cards = cards(page)
    evaluated = summary.set_index(["problem", "optimizer"])  # a bench page's summary: the leaderboard's rows
    labels = ["linreg n=100", "rosenbrock jitter=0.1"]
    assert board["problem"].unique().tolist() == labels  # the same problem labels everywhere
    assert sorted(summary["problem"].unique()) == labels
    assert sorted({p for p, _ in shown_cards}) == labels
    assert len(shown_cards) == len(board) == 4
    for row in board.itertuples():
        card, line = shown_cards[(row.problem, row.optimizer)], evaluated.loc[(row.problem, row.optimizer)]
        assert row.target == card["target"]  # the suite's target, not the report's 10%
        edge = ' <span class="edge">(lr: grid edge)</span>' if row.lr_on_edge else ""  # the leaderboard's edges
        assert card["setting"] == f"lr={row.lr:g}{edge}" and line["chosen"] == f"lr={row.lr:g}"
        assert line["final_median"] == pytest.approx(row.final_median, rel=1e-12)
        assert line["resolution"] == pytest.approx(row.resolution, rel=1e-12)
        assert card["final"] == shown(row.final_median, row.resolution)
        assert row.reached == card["reached"] == line["reached"]  # which runs reached it ...
        assert row.seeds == card["seeds"] == line["seeds"] == 7
        assert row.steps_to_target == line["steps_to_target"]  # ... and when
        assert row.final_low > 0  # floored at each run's resolution: never negative
    for problem, target in board.groupby("problem")["target"].first().items():
        assert f"## {problem}\n\nTarget: {target}." in (out / "leaderboard.md").read_text()
    assert board.set_index(["problem", "optimizer"]).loc[("rosenbrock jitter=0.1", "gd"), "reached"] < 7
    # the runs do go below f* in float32 noise; no table or card says so with a negative number
    runs = load_results(out / "results.parquet")
    assert ((runs["loss"] - runs["optimum"]) < 0).any()
    assert shown_cards[("linreg n=100", "gd")]["final"].startswith("< resolution (about ")
    assert summary.filter(like="final_").min().min() >= 0
    assert not any(c["final"].startswith("-") or c["spread"].startswith("-") for c in shown_cards.values())
    # the figures: their captions name the same problems, targets and float resolution
    text = html.unescape(page)
    assert "Time to target (1% of each run" not in text  # two targets: each named
    assert "Time to target (linreg n=100: 1% of each run's starting objective; rosenbrock" in text
    assert "No performance profile: it needs at least 4 problems (here 2)" in text  # and says why
    linreg = board.set_index(["problem", "optimizer"]).loc[("linreg n=100", "gd")]
    assert f"starting loss (linreg n=100 {linreg['resolution']:.1e})" in text


def test_a_report_names_problems_as_a_suite_does_the_most_specific_entry_winning():
    import optbench
    from optbench.reports.data import label_runs
    from optbench.studies.bench import Entry

    runs = [optbench.run("linreg", "gd", lr=0.1, epochs=1, problem_options={"n": n}) for n in (100, 400)]
    table = pd.concat(runs, ignore_index=True)
    assert set(label_runs(table)["problem_label"]) == {"linreg n=100", "linreg n=400"}
    named = [Entry("linreg", 1, options={"n": 400}), Entry("linreg", 1)]  # labels "linreg n=400", "linreg"
    labels = label_runs(table, named).groupby("problem_n")["problem_label"].first().to_dict()
    assert labels == {100: "linreg", 400: "linreg n=400"}


def test_failures_counts_each_message_once_per_run_and_says_how_many_more():
    rows = [(f"k{i}", "gd", "linreg", f"E{i % 5}: bad", "error") for i in range(12)]  # 5 messages
    rows += [("k0", "gd", "linreg", "E0: bad", "error")]  # a second row of run k0: one run still
    rows += [("ok1", "gd", "linreg", "", "ok")]
    table = pd.DataFrame(rows, columns=["run_key", "optimizer", "problem", "message", "status"])
    assert outcomes.failures(table) == [
        "3 runs: E0: bad (gd on linreg)",
        "3 runs: E1: bad (gd on linreg)",
        "2 runs: E2: bad (gd on linreg)",
        "... and 2 more distinct messages (4 runs)",
    ]
    assert outcomes.failures(table[table["status"] == "ok"]) == []


def test_every_runs_outcome_at_once_is_each_runs_outcome():
    """outcomes_by_run (what a bench's leaderboard reads) gives outcome() run by run, bit for bit: a run
    that reaches its target, one that never does, a diverged one, one whose start is not finite, one
    under its resolution, with or without test accuracy, relative and absolute targets."""
    runs = {
        "reaches": run([10.0, 4.0, 1.5, 1.2]),
        "never": run([10.0, 9.0, 8.0]),
        "diverged": run([10.0, math.nan, math.nan], status="diverged"),
        "nan-start": run([math.nan, 3.0, 1.1]),
        "noise": run([5.0, 1.0, 1.0 + 1e-9], dtype="float64"),
    }
    for i, (key, frame) in enumerate(runs.items()):
        frame["run_key"], frame["step"] = key, np.arange(len(frame)) * 4
        frame["time_s"], frame["epoch"] = frame["step"] * 0.01, frame["step"] / 8.0
        frame["test_accuracy"] = [0.5 + i / 10] * (len(frame) - 1) + [0.9 - i / 10]
    table = pd.concat(runs.values(), ignore_index=True)
    for target in (None, Target(0.5), Target(0.3, relative=False)):
        for with_accuracy in (True, False):
            got = outcomes.outcomes_by_run(table if with_accuracy else table.drop(columns="test_accuracy"), target)
            assert list(got.index) == list(runs)
            for key, frame in runs.items():
                expected = outcomes.outcome(frame, target)
                ok = frame["status"].iloc[0] == "ok"
                expected["test_accuracy"] = float(frame["test_accuracy"].iloc[-1]) if with_accuracy and ok else math.nan
                row = got.loc[key].to_dict()
                assert row.keys() == expected.keys()
                for name, value in expected.items():
                    same = value == row[name] or (
                        isinstance(value, float) and math.isnan(value) and math.isnan(row[name])
                    )
                    assert same, (key, target, name, value, row[name])
    reached = outcomes.outcomes_by_run(table).loc["reaches"]  # objective 9, 3, 0.5, 0.2: 0.5 <= 10% of 9 at step 8
    assert (reached["steps_to_target"], reached["epochs_to_target"], reached["test_accuracy"]) == (8.0, 1.0, 0.9)
    assert outcomes.outcomes_by_run(table).loc["nan-start", "final"] == pytest.approx(0.1)  # no resolution to floor at
