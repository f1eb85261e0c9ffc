"""The fair protocol's planted optimizers: a reparametrised copy of Adam and a renamed copy of the
momentum baseline, judged against the originals through the CLI, as a user's bench would."""

from __future__ import annotations

import pandas as pd
import pytest
from support import invoke

from optbench.registry import OPTIMIZERS

PLANTED = '''
"""A reparametrised copy of Adam (its lr scaled by 0.01 inside) and the momentum baseline renamed."""
import torch

import optbench


@optbench.register_optimizer("adam-centi", elementwise=True)
class CentiAdam(torch.optim.Adam):
    """Adam stepping 1/100 of the lr it is given: the same algorithm, another parametrisation."""

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] *= 0.01
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= 0.01


@optbench.register_optimizer("sgdm-twin", elementwise=True, defaults={"momentum": 0.9, "nesterov": True})
class TwinSGD(torch.optim.SGD):
    """torch-sgd-momentum under another name."""
'''

SUITE = """
description = "Adam's best lr lies inside the grid; the copy's is 100x, beyond it"
lr = "1e-3:1:7"
tune_seeds = "0"
eval_seeds = "10-17"

[[problems]]
problem = "linreg"
epochs = 60
target_objective = 1e-3

[[problems]]
problem = "quadratic"
epochs = 100
target_objective = 1e-3
options = { dim = 20, condition = 100.0 }
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fair")
    (folder / "planted.py").write_text(PLANTED)
    (folder / "suite.toml").write_text(SUITE)
    with OPTIMIZERS.snapshot():  # the plugin's names leave with this module: other tests list the registry
        result = invoke(
            *("bench", "--plugin", folder / "planted.py", "--optimizer", "adam-centi,sgdm-twin"),
            *("--baselines", "torch-adam,torch-sgd-momentum", "--suite", folder / "suite.toml"),
            *("--out", folder / "out", "--no-progress", "--no-report"),
        )
    assert result.exit_code == 0, result.output
    return folder / "out", result.output


def test_a_reparametrised_copy_is_found_past_the_grid_and_ties(bench):
    out, printed = bench
    board = pd.read_csv(out / "leaderboard.csv").set_index(["problem", "optimizer"])
    table = pd.read_csv(out / "comparisons.csv")
    for problem in ("linreg", "quadratic dim=20 condition=100.0"):
        adam, copy = board.loc[(problem, "torch-adam"), "lr"], board.loc[(problem, "adam-centi"), "lr"]
        assert adam <= 1 and copy == pytest.approx(100 * adam, rel=1e-9)  # the grid stops at 1
        assert not board.loc[(problem, "adam-centi"), "lr_on_edge"]  # interior after the extension
        row = table.query("candidate == 'adam-centi' and baseline == 'torch-adam' and problem == @problem").iloc[0]
        assert row["verdict"] == "no significant difference"
        assert row["ratio_low"] <= 1 <= row["ratio_high"]
    runs = pd.read_parquet(out / "results.parquet")
    tried = sorted(runs[(runs["optimizer"] == "adam-centi") & (runs["phase"] == "tune")]["lr"].unique())
    assert max(tried) > 1 and "searched past it, one grid step at a time, up to 6 steps" in printed
    # every optimizer under the same rule: Adam's own best is interior, so its search did not grow
    assert sorted(
        runs[(runs["optimizer"] == "torch-adam") & (runs["phase"] == "tune")]["lr"].unique()
    ) == pytest.approx([10 ** (-3 + k / 2) for k in range(7)])


def test_a_renamed_copy_of_the_momentum_baseline_is_a_tie(bench):
    out, _ = bench
    table = pd.read_csv(out / "comparisons.csv")
    twin = table.query("candidate == 'sgdm-twin' and baseline == 'torch-sgd-momentum'")
    assert len(twin) == 2 and set(twin["verdict"]) == {"no significant difference"}
    assert set(twin["ratio"]) == {1.0} and set(twin["better_seeds"]) == {0}
