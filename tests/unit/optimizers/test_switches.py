"""A third-party switch reaches an optimizer through --opt: a constructor keyword unchanged (heavyball's
``compile_step``), and a module's setting that no keyword reaches (heavyball's
``heavyball.utils.compile_mode``) as ``--opt MODULE:NAME=VALUE``, set around the optimizer's steps and
put back after. A small package of the same shape stands in: its step fails, as torch's CPU compiler
fails on heavyball's KL classes, while either switch is on."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from support import invoke

import optbench
from optbench.core.runner import execute, prepare
from optbench.errors import InvalidValueError
from optbench.registry import OPTIMIZERS

MODE = "max-autotune-no-cudagraphs"


@pytest.fixture
def fakeball(monkeypatch):
    """Package ``fakeball`` with ``fakeball.utils.compile_mode`` and class ``fakeball.KLSGD``: SGD
    whose step raises while ``compile_step`` (a keyword) or the module's ``compile_mode`` is on."""
    package, utils = types.ModuleType("fakeball"), types.ModuleType("fakeball.utils")
    utils.compile_mode = MODE
    package.utils = utils

    class KLSGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1, compile_step: bool = True):
            super().__init__(params, dict(lr=lr))
            self.compile_step = compile_step

        @torch.no_grad()
        def step(self, closure=None):
            if self.compile_step or utils.compile_mode is not None:
                raise RuntimeError("InductorError: the compiler failed")
            for group in self.param_groups:
                for p in group["params"]:
                    p.sub_(group["lr"] * p.grad)

    KLSGD.__module__ = "fakeball"
    package.KLSGD = KLSGD
    monkeypatch.setitem(sys.modules, "fakeball", package)
    monkeypatch.setitem(sys.modules, "fakeball.utils", utils)
    with OPTIMIZERS.snapshot():
        OPTIMIZERS.add("fakeball-kl", KLSGD)
        yield utils


OFF = {"compile_step": "false", "fakeball.utils:compile_mode": "none"}


def runs(settings, seeds=(0, 1, 2), stack=True):
    specs = [
        prepare("classification", "fakeball-kl", lr=0.5, epochs=20, seed=s, hyperparameters=settings) for s in seeds
    ]
    return execute(specs, stack=stack)


def test_with_both_switches_off_it_trains_stacked_and_alone_and_the_module_is_put_back(fakeball):
    stacked, alone = runs(OFF), runs(OFF, stack=False)
    for table in (stacked, alone):
        assert set(table["status"]) == {"ok"}
        for _, run in table.groupby("seed"):
            assert run["loss"].iloc[-1] < 0.8 * run["loss"].iloc[0]
    assert stacked["loss"].tolist() == pytest.approx(alone["loss"].tolist(), rel=1e-6)
    assert set(stacked["batch_runs"]) == {3}
    # plain SGD's numbers: the switches changed how it runs, not what it computes
    sgd = execute([prepare("classification", "torch-sgd", lr=0.5, epochs=20, seed=s) for s in (0, 1, 2)])
    assert stacked["loss"].tolist() == pytest.approx(sgd["loss"].tolist(), rel=1e-6)
    assert fakeball.compile_mode == MODE  # set around its steps only
    assert set(stacked["compile_step"]) == {False}  # both are the run's settings, in its table
    assert stacked["fakeball.utils:compile_mode"].isna().all()


@pytest.mark.parametrize(
    "settings",
    [{"compile_step": "false"}, {"fakeball.utils:compile_mode": "none"}, {}],
    ids=["keyword only", "module only", "neither"],
)
def test_either_switch_left_on_fails_as_the_compiler_does(fakeball, settings):
    table = runs(settings, seeds=(0,))
    assert set(table["status"]) == {"error"}
    assert "compiler failed" in table["message"].iloc[-1]


def test_the_switches_reach_it_from_the_command_line(fakeball, tmp_path):
    out = tmp_path / "kl.parquet"
    result = invoke(
        "sweep", "--problem", "classification", "--optimizer", "fakeball-kl", "--seeds", "0-1", "--epochs", "5",
        "--opt", "compile_step=false", "--opt", "fakeball.utils:compile_mode=none", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = optbench.load_results(out)
    assert set(table["status"]) == {"ok"}
    again = invoke(
        "sweep", "--problem", "classification", "--optimizer", "fakeball-kl", "--seeds", "0-1", "--epochs", "5",
        "--opt", "compile_step=false", "--opt", "fakeball.utils:compile_mode=none", "--out", out,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "0 new, 2 resumed" in again.output  # the switch is part of the run's key, and found again


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("torch.nn:x", "own package (fakeball), not 'torch.nn'"),
        ("fakeball.utils:missing", "has no setting 'missing'"),
        ("fakeball.elsewhere:compile_mode", "has no setting 'compile_mode' (or is not imported)"),
    ],
)
def test_a_switch_outside_its_package_or_missing_is_one_clear_error(fakeball, key, said):
    """And neither a built-in optimizer nor a problem reaches a module: torch and optbench are not switched."""
    with pytest.raises(InvalidValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        prepare("classification", "fakeball-kl", hyperparameters={key: "none"})
    result = invoke("run", "--problem", "classification", "--optimizer", "fakeball-kl", "--opt", f"{key}=none")
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("key", ["optbench.core.loop:CHECK_EVERY", "torch.backends.mkldnn:enabled"])
def test_torch_and_optbench_are_never_switched(key):
    with pytest.raises(InvalidValueError, match="none outside torch and optbench"):
        prepare("linreg", "torch-adam", hyperparameters={key: "1"})
    with pytest.raises(InvalidValueError):
        prepare("linreg", "gd", problem_options={key: "1"})
