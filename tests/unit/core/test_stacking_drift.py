"""Stacking cannot drift late and silently: a class that keeps one number in its param group,
computed over the whole tensor it is given (D-Adaptation's `d`), and that only adapts it after the
old 16-step probe and 32-step spot check stopped looking, gives every run, at every seed count and
position in the stack, the numbers of the same run alone (or trains alone and says so)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from optbench.core.runner import execute, prepare
from optbench.optimizers.protocol import stacked_equals_separate
from optbench.registry import OPTIMIZERS

ADAPTS_AFTER = 33  # steps of the plain step size; the old spot check compared up to step 32


class LateGroupScale(torch.optim.Optimizer):
    """SGD with a step size ``d`` kept in the param group (written back every step, as DAdaptLion
    writes its ``d``), 1 until step 33, then 1 / (1 + the norm of every gradient it holds)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr, d=1.0, step=0))

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        group["step"] += 1
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = float(torch.sqrt(sum((p.grad**2).sum() for p in params)))
        d = group["d"] if group["step"] < ADAPTS_AFTER else 1.0 / (1.0 + norm)
        for p in params:
            p.sub_(group["lr"] * d * p.grad)
        group["d"] = d


@pytest.fixture
def late_scale():
    with OPTIMIZERS.snapshot():
        OPTIMIZERS.add("t-late-group-scale", LateGroupScale)
        yield "t-late-group-scale"


def sweep(name: str, seeds: range, stack: bool) -> pd.DataFrame:
    specs = [prepare("classification", name, lr=0.5, epochs=50, seed=s) for s in seeds]
    table = execute(specs, stack=stack)
    return table.sort_values(["seed", "step"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seeds", [range(2), range(3), range(5)], ids=lambda r: f"{len(r)}-seeds")
def test_a_late_adapting_group_scalar_gives_every_run_its_numbers_alone(late_scale, seeds):
    stacked, alone = sweep(late_scale, seeds, True), sweep(late_scale, seeds, False)
    assert set(alone["status"]) == {"ok"}
    assert alone["loss"].iloc[-1] < 0.5 * alone["loss"].iloc[0]  # it trains, and adapts: a real run
    pd.testing.assert_frame_equal(stacked[["seed", "step", "status"]], alone[["seed", "step", "status"]])
    for seed in seeds:  # every position: a run's numbers do not depend on its stack-mates
        mine, theirs = stacked[stacked["seed"] == seed], alone[alone["seed"] == seed]
        said = mine["message"].str.startswith("trained alone").all()
        assert said or (mine["batch_runs"] > 1).all()
        assert mine["loss"].to_numpy() == pytest.approx(theirs["loss"].to_numpy(), rel=1e-5, abs=1e-7), seed


def test_the_probe_refuses_to_share_a_class_that_writes_a_number_into_its_param_group():
    # d stays 1 for the probe's steps: the values agree; what it writes is what says it pools
    assert not stacked_equals_separate(LateGroupScale, {"lr": 0.1})
