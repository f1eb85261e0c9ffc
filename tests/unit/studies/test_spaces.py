"""Search spaces: declared with the optimizer (built-in or plugin), overridden by a suite, the same
number of trials for every optimizer, and listed with the chosen values in the leaderboard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from support import invoke

import optbench
from optbench.errors import InvalidValueError
from optbench.registry import OPTIMIZERS
from optbench.studies import spaces

PLUGIN = '''
import torch

import optbench


@optbench.register_optimizer("my-sgd", elementwise=True, space={"lr": "log:0.01:1", "momentum": "0:0.5"})
class MySGD(torch.optim.SGD):
    """SGD whose author says what to tune: lr and a little momentum."""
'''

SUITE = """
description = "each optimizer's own space, 6 trials each"
lr = "1e-3:1:4"
tune_seeds = "0"
eval_seeds = "10-16"
search = "halton"
trials = 6
studies = 1              # one study's exploration is what this test reads
speedup = false

[spaces.torch-adam]
lr = "log:0.001:0.3"

[[problems]]
problem = "quadratic"
epochs = 15
target_objective = 1e-2
options = { dim = 5, condition = 10.0 }
"""


def test_each_optimizer_searches_its_own_space_with_the_same_trials(tmp_path):
    (tmp_path / "plugin.py").write_text(PLUGIN)
    (tmp_path / "suite.toml").write_text(SUITE)
    with OPTIMIZERS.snapshot():
        result = invoke(
            *("bench", "--plugin", tmp_path / "plugin.py", "--optimizer", "my-sgd,gd"),
            *("--baselines", "torch-adam,torch-sgd-momentum", "--suite", tmp_path / "suite.toml"),
            *("--out", tmp_path / "b", "--no-progress", "--no-report"),
        )
    assert result.exit_code == 0, result.output
    runs = pd.read_parquet(tmp_path / "b" / "results.parquet")
    assert not runs.duplicated(["run_key", "step"]).any()  # each point once (the lr grid repeated them 4x)
    tuned = runs[runs["phase"] == "tune"].drop_duplicates("run_key")
    first = tuned.groupby("optimizer").head(6)  # before any extension past an edge
    assert first.groupby("optimizer").size().to_dict() == dict.fromkeys(
        ["gd", "my-sgd", "torch-adam", "torch-sgd-momentum"], 6
    )
    adam = tuned[tuned["optimizer"] == "torch-adam"].head(6)
    assert adam["lr"].between(0.001, 0.3 * (1 + 1e-12)).all()  # the suite's override, not the built-in's 1e-4..1
    beta1 = adam["betas"].map(lambda b: float(str(b).split(",")[0]))
    assert beta1.between(0.8, 0.95).all() and beta1.nunique() == 6  # betas.0 searched, beta2 at its default
    assert set(adam["betas"].map(lambda b: float(str(b).split(",")[1]))) == {0.999}
    mine = tuned[tuned["optimizer"] == "my-sgd"].head(6)
    assert mine["lr"].between(0.01, 1).all() and mine["momentum"].between(0, 0.5).all()  # the plugin's own
    momentum = tuned[tuned["optimizer"] == "torch-sgd-momentum"].head(6)["momentum"]
    assert momentum.between(0.8, 0.99).all() and momentum.nunique() == 6
    gd = tuned[tuned["optimizer"] == "gd"].head(6)["lr"]
    np.testing.assert_allclose(sorted(gd), np.logspace(-3, 0, 6))  # no space: the lr over the suite's range
    # the leaderboard lists each space, the trial count and the chosen values
    md = (tmp_path / "b" / "leaderboard.md").read_text()
    assert "Search spaces (each explored with 6 settings, halton, then refined):" in md
    assert "- torch-adam: lr log 0.001-0.3, betas.0 log1m 0.8-0.95" in md
    assert "- my-sgd: lr log 0.01-1, momentum 0-0.5" in md and "- gd: lr log 0.001-1" in md
    board = pd.read_csv(tmp_path / "b" / "leaderboard.csv").set_index("optimizer")
    chosen = runs[(runs["phase"] == "eval") & (runs["optimizer"] == "torch-sgd-momentum")].iloc[0]
    assert board.loc["torch-sgd-momentum", "chosen"] == f"lr={chosen['lr']:.3g}, momentum={chosen['momentum']:.3g}"
    assert f"| torch-sgd-momentum | lr={chosen['lr']:.3g}, momentum={chosen['momentum']:.3g} (" in md


def test_the_same_suite_draws_the_same_points():
    dims = spaces.parse({"lr": "log:1e-4:1", "betas.0": "0.8:0.95", "weight_decay": "log:1e-4:0.3"}, "s")
    a, b = spaces.points(dims, 8), spaces.points(dims, 8)
    assert a == b and len({round(p["lr"], 12) for p in a}) == 8
    assert all(1e-4 <= p["lr"] <= 1 and 0.8 <= p["betas.0"] <= 0.95 for p in a)
    logs = sorted(math.log10(p["lr"]) for p in spaces.points(dims, 64))  # quasi-random: every decade gets its share
    assert np.histogram(logs, bins=4, range=(-4, 0))[0].min() >= 12
    grid = spaces.points(spaces.parse({"lr": "log:0.01:1", "momentum": "0.5:0.9"}, "s"), 9, "grid")
    assert sorted({round(p["momentum"], 6) for p in grid}) == [0.5, 0.7, 0.9] and len(grid) == 9


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": "log:1:0.1"}, "lr = 'log:1:0.1' needs finite LOW < HIGH"),
        ({"lr": "log:0:1"}, "lr = 'log:0:1' needs LOW > 0 on a log scale"),
        ({"momentum": "log1m:0.5:1"}, "momentum = 'log1m:0.5:1' needs 0 <= LOW and HIGH < 1 on a log1m scale"),
        ({"lr": "fast"}, "lr = 'fast' is not a range; expected 'log:LOW:HIGH', 'log1m:LOW:HIGH'"),
    ],
)
def test_a_bad_range_is_one_line(space, message):
    with pytest.raises(InvalidValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spaces.parse(space, "suite 's': spaces.x")


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"lr.0": 0.1}, "'lr.0' names an element of lr, but lr is a number, not a sequence: write lr"),
        ({"maximize.0": 1.0}, "'maximize.0' names an element of maximize, but maximize is False, not a sequence"),
        ({"betas.5": 0.9}, r"'betas.5' names no element of betas \(its default is \(0.9, 0.999\)\)"),
    ],
)
def test_an_element_of_what_has_none_is_one_line(point, message):
    with pytest.raises(InvalidValueError, match=message):
        spaces.hyperparameters(point, OPTIMIZERS.get("torch-adam").hyperparameters())


def test_an_element_sets_that_element_and_keeps_the_others():
    defaults = OPTIMIZERS.get("torch-adam").hyperparameters()
    assert spaces.hyperparameters({"betas.1": 0.95, "lr": 0.01}, defaults) == {"betas": (0.9, 0.95), "lr": 0.01}


def test_a_suite_indexing_a_number_is_one_line_naming_the_file(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.replace('lr = "log:0.001:0.3"', '"lr.0" = "log:1e-4:1"'), encoding="utf-8")
    args = ["--optimizer", "torch-adam", "--baselines", "torch-sgd", "--suite", suite, "--out", tmp_path / "b"]
    result = invoke("bench", *args)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and f"suite {str(suite)!r}: [spaces.torch-adam]" in line, line
    assert "lr is a number, not a sequence: write lr" in line, line


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("item", ["lr.0=0.1", "betas.5=0.9"])
def test_an_element_in_an_opt_flag_is_one_line(tmp_path, command, item):
    """--opt takes whole settings (an element is for search spaces): the same refusal for both."""
    args = ["--problem", "linreg", "--optimizer", "torch-adam", "--opt", item, "--out", tmp_path / "o.parquet"]
    result = invoke(command, *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"optbench: error: --opt {item!r} is malformed: expected KEY=VALUE with a Python-style name, "
        "e.g. --opt momentum=0.9"
    )


def test_a_class_written_with_kwargs_tunes_its_lr():
    """A plugin whose constructor takes ``**kwargs`` shows no lr in its signature, yet every run gives it
    one: its space has the lr (it searched its momentum alone and ran at torch's default lr 1e-3)."""

    class KwargsSGD(torch.optim.SGD):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)

    with OPTIMIZERS.snapshot():
        optbench.register_optimizer("kwargs-sgd", defaults={"momentum": 0.9})(KwargsSGD)
        dims = {d.name: d for d in spaces.space_of("kwargs-sgd", None, [1e-3, 1.0])}
    assert sorted(dims) == ["lr", "momentum"]
    assert (dims["lr"].low, dims["lr"].high) == (1e-3, 1.0)
