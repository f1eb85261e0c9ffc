"""A verdict that tuning cannot fool: optimizers exactly equivalent to a baseline, planted the ways users
write them (a renamed copy, a subclass, a copy that declares the baseline's space, one that rescales its
lr or weight decay inside with its range shifted to match, one that declares a wider range), are never
called better or worse than their twin; real differences still are. Through the CLI, as a user's bench."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support import invoke

from optbench.registry import OPTIMIZERS
from optbench.studies import spaces

PLANTED = '''
"""Optimizers equivalent to the default baselines, as people write them."""
import torch

import optbench


@optbench.register_optimizer("adam-copy", elementwise=True)
class AdamCopy(torch.optim.Adam):
    """torch.optim.Adam renamed, no space of its own: the conventional rule gives it Adam's."""


@optbench.register_optimizer("adam-declared", elementwise=True, space={"lr": "log:1e-3:1", "betas.0": "log1m:0.8:0.95"})
class AdamDeclared(torch.optim.Adam):
    """Adam declaring the space the baseline gets from the rule."""


class AdamTimes3(torch.optim.Adam):
    """Adam stepping 3x the lr it is given, its declared lr range a third of Adam's: the same points."""

    optbench_space = {"lr": "log:3.3333333333333335e-4:0.3333333333333333", "betas.0": "log1m:0.8:0.95"}

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] *= 3
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= 3


optbench.register_optimizer("adam-x3", elementwise=True)(AdamTimes3)


@optbench.register_optimizer("adam-wide", elementwise=True, space={"lr": "log:1e-5:30", "betas.0": "log1m:0.5:0.99"})
class AdamWide(torch.optim.Adam):
    """Adam declaring far wider ranges than the baseline's."""


@optbench.register_optimizer("sgdm-copy", elementwise=True, defaults={"momentum": 0.9, "nesterov": True})
class SGDMCopy(torch.optim.SGD):
    """torch-sgd-momentum under another name, no space of its own."""


@optbench.register_optimizer("adamw-decay10", elementwise=True, space={
    "lr": "log:1e-3:1", "betas.0": "log1m:0.8:0.95", "weight_decay": "log:1e-5:0.03"})
class AdamWDecay10(torch.optim.AdamW):
    """AdamW applying 10x the weight decay it is given, its range shifted to a tenth of AdamW's."""

    def step(self, closure=None):
        for group in self.param_groups:
            group["weight_decay"] *= 10
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["weight_decay"] /= 10
'''

TWINS = {  # candidate -> the baseline it is equivalent to
    "adam-copy": "torch-adam",
    "adam-declared": "torch-adam",
    "adam-x3": "torch-adam",
    "adam-wide": "torch-adam",
    "sgdm-copy": "torch-sgd-momentum",
    "adamw-decay10": "torch-adamw",
}

SUITE = """
description = "twins: two convex problems with f*, the fair protocol's defaults"
lr = "1e-3:1:7"
tune_seeds = "0-1"
eval_seeds = "10-17"
trials = 6

[[problems]]
problem = "linreg"
epochs = 30
target_objective = 1e-3

[[problems]]
problem = "quadratic"
epochs = 60
target_objective = 1e-3
options = { dim = 20, condition = 100.0 }
"""


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twins")
    (folder / "planted.py").write_text(PLANTED)
    (folder / "suite.toml").write_text(SUITE)
    with OPTIMIZERS.snapshot():  # the plugin's names leave with this module
        result = invoke(
            *("bench", "--plugin", folder / "planted.py", "--optimizer", ",".join(TWINS)),
            *("--suite", folder / "suite.toml", "--out", folder / "out", "--no-progress", "--no-report"),
        )
    assert result.exit_code == 0, result.output
    return folder / "out", result.output


def test_no_equivalent_of_a_baseline_is_called_better_or_worse_than_it(twins):
    out, printed = twins
    table = pd.read_csv(out / "comparisons.csv")
    for candidate, baseline in TWINS.items():
        rows = table[(table["candidate"] == candidate) & (table["baseline"] == baseline)]
        assert len(rows) == 2, candidate
        assert set(rows["verdict"]) <= {"equivalent", "inconclusive"}, rows[["problem", "verdict", "reason"]]
        assert (rows["studies"] == 3).all() and (rows["seeds"] == 24).all()
    # the leaderboard and its headline say the same, per comparison
    board = pd.read_csv(out / "leaderboard.csv")
    for candidate, baseline in TWINS.items():
        column = board.loc[board["optimizer"] == candidate, f"vs {baseline}"]
        assert set(column) <= {"equivalent", "inconclusive"}
        line = next(x for x in printed.splitlines() if x.startswith(f"- {candidate} vs {baseline}"))
        assert "better" not in line.split(";")[0] and "worse" not in line.split(";")[0]


def test_copies_that_search_what_the_baseline_searches_are_its_identical_runs(twins):
    out, printed = twins
    table = pd.read_csv(out / "comparisons.csv")
    for candidate in ("adam-copy", "adam-declared", "adam-x3", "sgdm-copy", "adamw-decay10"):
        rows = table[(table["candidate"] == candidate) & (table["baseline"] == TWINS[candidate])]
        assert set(rows["verdict"]) == {"equivalent"} and set(rows["ratio"]) == {1.0}
        assert f"- {candidate} vs {TWINS[candidate]} (identical runs): equivalent on 2 of 2 problems" in printed
    md = (out / "leaderboard.md").read_text()
    same = next(line for line in md.splitlines() if line.startswith("Identical runs (bit for bit)"))
    # the same runs bit for bit: the rescaled copies too (their declared ranges give the same effective steps)
    assert "adam-copy = adam-declared = adam-x3 = torch-adam" in same and "sgdm-copy = torch-sgd-momentum" in same
    assert "adamw-decay10 = torch-adamw" in same


def test_each_study_searched_past_the_declared_ranges_and_says_how_it_ended(twins):
    out, _ = twins
    runs = pd.read_parquet(out / "results.parquet")
    tuned = runs[(runs["phase"] == "tune") & (runs["optimizer"] == "adam-wide")]
    assert set(tuned["seed"]) == {0, 1, 1000, 1001, 2000, 2001}  # each study's own tuning seeds
    board = pd.read_csv(out / "leaderboard.csv")
    for row in board.itertuples():
        counts = [int(n) for n in row.trials.split(" / ")]
        assert len(counts) == 3 and all(6 < n <= 32 for n in counts), row  # explored 6, refined, capped at 32
        assert "studies" in row.tuning
    # x3 chose (about) a third of Adam's lrs: the same effective steps, found by the same rule
    lrs = board.set_index(["problem", "optimizer"])["lr"]
    for problem in board["problem"].unique():
        ratio = lrs[(problem, "adam-x3")] / lrs[(problem, "torch-adam")]
        assert 1 / 3 / 2 < ratio < 1 / 3 * 2, (problem, ratio)


REAL = """
description = "real differences: momentum on an ill-conditioned quadratic, Adam on Rosenbrock"
lr = "1e-3:1:7"
tune_seeds = "0-1"
eval_seeds = "10-19"
trials = 6
speedup = false

[[problems]]
problem = "quadratic"
epochs = 60
target_objective = 1e-3
options = { dim = 20, condition = 100.0 }

[[problems]]
problem = "rosenbrock"
epochs = 300
target_objective = 1e-2
options = { jitter = 0.1 }
"""


def test_real_differences_are_still_found(tmp_path):
    (tmp_path / "suite.toml").write_text(REAL)
    result = invoke(
        *("bench", "--optimizer", "torch-sgd-momentum,torch-adam", "--baselines", "torch-sgd"),
        *("--suite", tmp_path / "suite.toml", "--out", tmp_path / "out", "--no-progress", "--no-report"),
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "comparisons.csv").set_index(["candidate", "problem"])
    momentum = table.loc[("torch-sgd-momentum", "quadratic dim=20 condition=100.0")]
    assert momentum["verdict"] == "better" and momentum["studies_better"] == 3 and momentum["ratio"] < 0.5
    adam = table.loc[("torch-adam", "rosenbrock jitter=0.1")]
    assert adam["verdict"] == "better" and adam["studies_better"] == 3 and adam["ratio"] < 0.5


def test_the_space_rule_is_the_same_for_every_spelling_of_an_optimizer():
    def shown(name):
        return spaces.text(spaces.space_of(name, None, [1e-3, 1.0]))

    assert shown("torch-adam") == shown("torch.optim:Adam") == "lr log 0.001-1, betas.0 log1m 0.8-0.95"
    assert shown("torch-sgd-momentum") == "lr log 0.001-1, momentum log1m 0.8-0.99"
    assert shown("torch-sgd") == shown("gd") == "lr log 0.001-1"  # momentum 0 by default: not searched
    assert shown("torch-adamw").endswith("weight_decay log 0.0001-0.3")
    assert shown("torch-muon+torch-adamw").startswith("lr log 0.001-1, torch-muon.momentum")


BASE = '[[problems]]\nproblem = "linreg"\nepochs = 2\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("studies = 0\n", "studies 0 is out of range; expected a whole number 1-10"),
        ('studies = "3"\n', "studies '3' is not a whole number; expected a whole number 1-10"),
        ('trials = "8"\n', "trials '8' is not a whole number; expected 2-1000"),
        ('search = "lr"\nstudies = 3\n', 'studies = 3 needs a space search; search = "lr" is one study'),
        ("tolerance = 1.5\n", "tolerance 1.5 is out of range; expected a number in [0, 1)"),
        ("tolerance = true\n", "tolerance true is not a number; expected a number in [0, 1)"),
        ("trials = 8\nmax_trials = 4\n", "max_trials 4 is out of range; expected a whole number 8-1000"),
        ('refine = "yes"\n', "refine 'yes' is not true or false"),
        ("margin = -0.1\n", "problems[0]: margin -0.1 is out of range; expected a number >= 0"),
        ('margin_loss = "big"\n', "problems[0]: margin_loss 'big' is not a number; expected a number >= 0"),
        (BASE.replace("epochs = 2\n", "epochs = 2\nmargin = inf\n"), "problems[0]: margin inf is out of range"),
    ],
)
def test_the_protocols_suite_keys_are_checked_like_every_other(tmp_path, text, message):
    suite = tmp_path / "s.toml"
    suite.write_text(text if text.startswith("[[problems]]") else text + BASE)
    result = invoke("bench", "--optimizer", "torch-nadam", "--suite", suite, "--out", tmp_path / "o", "--no-progress")
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()  # refused before any work


def test_a_suite_that_says_nothing_of_the_protocol_gets_the_fair_one(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(BASE)
    from optbench.studies.suite import load_suite

    loaded = load_suite(str(suite))
    assert (loaded.search, loaded.studies, loaded.refine, loaded.tolerance) == ("halton", 3, True, 0.01)
    assert loaded.entries[0].settings["schedule"] == "cosine" and loaded.entries[0].settings["warmup_steps"] == 5
    assert (loaded.entries[0].margin, loaded.entries[0].margin_loss) == (0.1, 3e-3)
    suite.write_text('schedule = "constant"\n' + BASE)  # naming a schedule keeps it (and no warm-up is added)
    assert load_suite(str(suite)).entries[0].settings["warmup_steps"] == 0


def test_describe_shows_each_space_and_where_it_came_from(tmp_path):
    plugin = tmp_path / "p.py"
    plugin.write_text(PLANTED)
    with OPTIMIZERS.snapshot():
        shown = {name: invoke("describe", name, "--plugin", plugin).output for name in ("adam-x3", "adam-wide")}
        shown["torch-adamw"] = invoke("describe", "torch-adamw").output
        shown["torch-sgd"] = invoke("describe", "torch-sgd").output
    assert (
        "space       lr log 0.000333333-0.333333, betas.0 log1m 0.8-0.95; from AdamTimes3.optbench_space"
        in shown["adam-x3"]
    )
    assert "from declared with adam-wide" in shown["adam-wide"]
    assert (
        "lr (the suite's lr range), betas.0 log1m 0.8-0.95, weight_decay log 0.0001-0.3; from the conventional"
        in (shown["torch-adamw"])
    )
    assert "space       lr (the suite's lr range); from the conventional ranges" in shown["torch-sgd"]


def test_a_subclass_inherits_the_space_its_registered_parent_declares(tmp_path):
    import torch

    import optbench

    with OPTIMIZERS.snapshot():

        @optbench.register_optimizer("parent-opt", space={"lr": "log:0.01:0.1"})
        class Parent(torch.optim.SGD):
            pass

        class Child(Parent):
            pass

        optbench.register_optimizer("child-opt")(Child)
        dims, source = spaces.resolve("child-opt", None, [1e-3, 1.0])
        assert spaces.text(dims) == "lr log 0.01-0.1" and source == "inherited from parent-opt"


def test_compass_search_walks_past_an_edge_and_stops_within_its_last_step():
    """On a known bowl (the score is the squared distance in decades from lr = 100, far past the declared
    1e-3..1), refinement moves past the edge and stops within a quarter step of the optimum."""
    from optbench.studies import search

    dim = spaces.parse({"lr": "log:1e-3:1"}, "t")[0]
    slot = search.Slot({"hyperparameters": {}}, 0, [0], [dim], {"lr": 0.1})
    best_log = 2.0

    def score(point):
        return (math.log10(dim.at(point[0])) - best_log) ** 2 + 1.0

    for u in spaces.unit_points([dim], 4, "halton"):
        slot.tried[tuple(u)] = {"score": score(tuple(u))}
    slot.centre = min(slot.tried, key=lambda p: slot.tried[p]["score"])
    while slot.state == "refining":
        for point in slot.polls():
            slot.tried.setdefault(point, {"score": score(point)})
        search._advance(slot, 0.0)
    found = math.log10(dim.at(slot.centre[0]))
    assert abs(found - best_log) <= search.FIRST_STEP["log"] / 2**search.HALVINGS + 1e-9
    assert slot.state == "converged" and len(slot.tried) < 20
