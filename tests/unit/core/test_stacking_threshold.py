"""A per-tensor decision cannot pool a stack: a class whose update switches on a tensor's gradient
norm against a constant (AdamP's projection switches on a cosine against its ``delta``) is never
given a stack as one tensor unless its registration declares it elementwise. The short probe never
sees the branch fire (its gradients are far above the constant), so on the old code it shared one
optimizer over the stack and took the norm of every run's rows together: the branch then fired at
another step than alone, and the run's numbers depended on its stack-mates and its position."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from optbench.core.runner import execute, prepare
from optbench.registry import OPTIMIZERS

THRESHOLD = 0.15  # a gradient norm the classification runs cross while they train, the probe's never reach


class NormSwitch(torch.optim.Optimizer):
    """SGD whose step doubles on a tensor once that tensor's gradient norm falls below ``THRESHOLD``."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    boost = 2.0 if float(p.grad.norm()) < THRESHOLD else 1.0
                    p.sub_(group["lr"] * boost * p.grad)


@pytest.fixture
def norm_switch():
    with OPTIMIZERS.snapshot():
        OPTIMIZERS.add("t-norm-switch", NormSwitch)
        yield "t-norm-switch"


def sweep(name: str, seeds: list[int], stack: bool) -> pd.DataFrame:
    specs = [prepare("classification", name, lr=0.5, epochs=50, seed=s) for s in seeds]
    table = execute(specs, stack=stack)
    return table.sort_values(["seed", "step"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seeds", [[0, 1], [2, 0, 1], [3, 4, 0, 1, 2]], ids=lambda s: f"{len(s)}-seeds")
def test_a_per_tensor_threshold_gives_every_run_its_numbers_alone_at_every_position(norm_switch, seeds):
    stacked, alone = sweep(norm_switch, seeds, True), sweep(norm_switch, seeds, False)
    assert set(alone["status"]) == {"ok"}
    assert alone["loss"].iloc[-1] < 0.5 * alone["loss"].iloc[0]  # it trains
    pd.testing.assert_frame_equal(stacked[["seed", "step", "status"]], alone[["seed", "step", "status"]])
    for seed in seeds:
        mine, theirs = stacked[stacked["seed"] == seed], alone[alone["seed"] == seed]
        said = mine["message"].str.startswith("trained alone").all()
        assert said or (mine["batch_runs"] > 1).all()
        assert mine["loss"].to_numpy() == pytest.approx(theirs["loss"].to_numpy(), rel=1e-6, abs=1e-7), seed


def test_the_branch_fires_in_these_runs_and_changes_them(norm_switch):
    """The test above is not vacuous: alone, the switch fires, so a run pooled with others would differ."""
    problem = prepare("classification", "t-norm-switch", lr=0.5, epochs=50, seed=0)
    table = execute(problem)
    plain = execute(prepare("classification", "torch-sgd", lr=0.5, epochs=50, seed=0))
    assert abs(table["loss"].iloc[-1] - plain["loss"].iloc[-1]) > 1e-4
