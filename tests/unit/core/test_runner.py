"""The runner's table: columns, recording schedule, determinism, divergence and errors."""

import math

import pandas as pd
import pytest
import torch

import optbench
from optbench.errors import InvalidValueError, UnknownNameError
from optbench.registry import OPTIMIZERS


def test_columns_of_a_linreg_run():
    df = optbench.run("linreg", "torch-sgd", lr=0.1, epochs=3, momentum=0.5)
    for column in [
        "problem",
        "optimizer",
        "seed",
        "lr",
        "momentum",
        "nesterov",
        "weight_decay",
        "batch_size",
        "epoch",
        "step",
        "loss",
        "optimum",
        "time_s",
        "status",
        "message",
    ]:
        assert column in df.columns, column
    assert "foreach" not in df.columns  # implementation switches are not hyperparameters
    assert df["momentum"].eq(0.5).all() and df["lr"].eq(0.1).all()
    assert df["problem_n"].eq(100).all() and df["problem_a"].eq("3.0,2.0").all()
    assert df["optimum"].nunique() == 1 and df["optimum"].iloc[0] > 0


def test_classification_records_test_metrics_and_no_optimum():
    df = optbench.run("classification", "gd", epochs=5)
    assert {"test_loss", "test_accuracy"} <= set(df.columns)
    assert df["optimum"].isna().all()
    assert df["test_accuracy"].between(0, 1).all()


def test_eval_every_adds_points_and_epoch_ends_stay():
    df = optbench.run("linreg", "sgd", epochs=2, eval_every=4)  # 10 steps per epoch
    assert df["step"].tolist() == [0, 4, 8, 10, 12, 16, 20]
    assert df["epoch"].tolist() == [0, 0.4, 0.8, 1, 1.2, 1.6, 2]


def test_time_is_cumulative_and_starts_at_zero():
    df = optbench.run("linreg", "gd", epochs=20)
    assert df["time_s"].iloc[0] == 0
    assert df["time_s"].is_monotonic_increasing and df["time_s"].iloc[-1] > 0


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "torch-adam", "torch-lbfgs"])
@pytest.mark.parametrize("problem", ["linreg", "classification"])
def test_the_same_run_twice_is_bit_identical(problem, optimizer):
    a = optbench.run(
        problem, optimizer, epochs=5, seed=3, problem_options={"model": "mlp"} if problem != "linreg" else None
    )
    b = optbench.run(
        problem, optimizer, epochs=5, seed=3, problem_options={"model": "mlp"} if problem != "linreg" else None
    )
    pd.testing.assert_frame_equal(a.drop(columns="time_s"), b.drop(columns="time_s"))


def test_seeds_change_the_data():
    a = optbench.run("linreg", "gd", epochs=1, seed=0)
    b = optbench.run("linreg", "gd", epochs=1, seed=1)
    assert a["loss"].iloc[0] != b["loss"].iloc[0]


def test_a_run_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    optbench.run("classification", "sgd", epochs=2)
    assert torch.equal(torch.rand(3), expected)


def test_divergence_stops_the_run_and_keeps_the_trajectory():
    df = optbench.run("linreg", "gd", lr=5.0, epochs=1000)
    assert (df["status"] == "diverged").all()
    assert not math.isfinite(df["loss"].iloc[-1])
    assert df["loss"].iloc[:-1].map(math.isfinite).all()  # everything before the blow-up is kept
    assert len(df) < 100  # stopped long before 1000 epochs
    assert "step" in df["message"].iloc[0]


def test_a_raising_optimizer_is_an_error_row_not_an_exception():
    class Explodes(torch.optim.SGD):
        def step(self, closure=None):
            if self.state.get("calls", 0) >= 3:
                raise RuntimeError("boom")
            self.state["calls"] = self.state.get("calls", 0) + 1
            return super().step(closure)

    with OPTIMIZERS.snapshot():
        OPTIMIZERS.add("test-explodes", Explodes, description="raises on its 4th step", override=True)
        df = optbench.run("linreg", "test-explodes", lr=0.1, epochs=10)
    assert "test-explodes" not in OPTIMIZERS
    assert (df["status"] == "error").all()
    assert df["step"].tolist() == [0, 1, 2, 3]
    assert df["message"].iloc[0] == "RuntimeError: boom"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": 0}, "--lr 0"),
        ({"lr": -0.1}, "--lr -0.1"),
        ({"lr": "fast"}, "not a number"),
        ({"epochs": 0}, "--epochs 0"),
        ({"batch_size": 0}, "--batch-size 0"),
        ({"batch_size": 101}, "--batch-size 101 is larger than the 100"),
        ({"eval_every": -2}, "--eval-every -2"),
        ({"seed": -1}, "--seed -1"),
        ({"momentum": 0.9}, "takes no setting 'momentum'"),
        ({"problem_options": {"shape": "moons"}}, "problem 'linreg' takes no setting 'shape'"),
    ],
)
def test_bad_settings_raise_typed_errors(kwargs, fragment):
    with pytest.raises(InvalidValueError, match=fragment.replace("(", r"\(")):
        optbench.run("linreg", "gd", **kwargs)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UnknownNameError, match=r"unknown optimizer 'torch-adan' \(did you mean 'torch-adam'\?\)"):
        optbench.run("linreg", "torch-adan")
