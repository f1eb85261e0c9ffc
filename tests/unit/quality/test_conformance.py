"""The conformance suite over everything registered: built-ins and installed plugins alike."""

import sys

import pytest
import torch
from support import SignSGD

import optbench
from optbench.quality.conformance import ConformanceError, check_optimizer

# Learning rates where an optimizer's own default is made for other scales than these small problems.
LR = {"torch-adadelta": 3.0, "lion": 1e-2}


@pytest.mark.parametrize("name", optbench.list_optimizers())
def test_every_registered_optimizer_conforms(name):
    checks = check_optimizer(name, lr=LR.get(name))
    first = "matrix-factorization" if optbench.get_optimizer(name).roles else "linreg"  # Muon: matrices only
    assert [c.name for c in checks] == [
        "constructs",
        f"lowers-loss[{first}]",
        "lowers-loss[classification]",
        "deterministic",
        "state-dict",
        "own-params-only",
        "stacking",
    ]


def test_the_example_plugin_is_in_the_registry():
    assert "lion" in optbench.list_optimizers()


class ForgetsItsState(torch.optim.SGD):
    """Momentum SGD whose state_dict() drops the momentum buffers."""

    def state_dict(self):
        sd = super().state_dict()
        sd["state"] = {}
        return sd


class Unseeded(torch.optim.Optimizer):
    """Adds noise from a generator nobody seeds: not reproducible."""

    _noise = torch.Generator().manual_seed(0)

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is None else None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * (p.grad + 0.01 * torch.randn(p.shape, generator=self._noise)))
        return loss


def _parameters_its_callers_hold() -> list[torch.nn.Parameter]:
    """Every parameter the calling frames hold, alone or in a module: what a meddler can reach (a scan
    of gc.get_objects() finds the same ones, at 0.2 s a call in a test process's heap)."""
    found = {}
    frame = sys._getframe(2)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, torch.nn.Module):
                found.update((id(p), p) for p in value.parameters())
            elif type(value) is torch.nn.Parameter:
                found[id(value)] = value
        frame = frame.f_back
    return list(found.values())


class Meddler(torch.optim.SGD):
    """Also nudges every other trainable tensor it can find: touches parameters it was not given."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, lr=lr)
        self.others = _parameters_its_callers_hold()

    def step(self, closure=None):
        loss = super().step(closure)
        with torch.no_grad():
            for other in self.others:
                other.mul_(0.999)
        return loss


class Lazy(torch.optim.SGD):
    """Never moves: the loss is not lowered."""

    def step(self, closure=None):
        return closure() if closure is not None else None


class NormalizedStep(SignSGD):
    """Divides by its tensor's norm (mixes elements) yet declares itself elementwise."""

    optbench_elementwise = True

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * p.grad / p.grad.norm())


@pytest.mark.parametrize(
    ("cls", "settings", "failing"),
    [
        (ForgetsItsState, {"lr": 0.05, "hyperparameters": {"momentum": 0.9}}, {"state-dict"}),
        (Unseeded, {}, {"deterministic", "state-dict"}),
        (Meddler, {"lr": 0.1}, {"own-params-only"}),
        (Lazy, {"lr": 0.1}, {"lowers-loss[linreg]", "lowers-loss[classification]", "own-params-only"}),
        (SignSGD, {"lr": 0.01}, set()),
        (NormalizedStep, {"lr": 0.05}, {"stacking"}),
    ],
)
def test_each_check_catches_what_it_is_for(cls, settings, failing):
    checks = check_optimizer(cls, raise_on_failure=False, **settings)
    assert {c.name for c in checks if not c.passed} == failing
    if failing:
        with pytest.raises(ConformanceError, match=next(iter(sorted(failing))).replace("[", r"\[")):
            check_optimizer(cls, **settings)


def test_an_optimizer_that_never_moves_is_told_so():
    checks = {c.name: c for c in check_optimizer(Lazy, lr=0.1, raise_on_failure=False)}
    assert "the parameters never moved in 100 epochs" in checks["lowers-loss[linreg]"].detail
    assert "update each p in place from p.grad" in checks["lowers-loss[linreg]"].detail


def test_a_constructor_that_raises_fails_the_first_check_only():
    class Broken(torch.optim.SGD):
        def __init__(self, params, lr=0.1):
            raise RuntimeError("no GPU here")

    checks = check_optimizer(Broken, raise_on_failure=False)
    assert len(checks) == 1 and not checks[0].passed and "no GPU here" in checks[0].detail


def test_pytest_fixture(pytester):
    pytester.makepyfile(
        """
        def test_sgd(optbench_check):
            checks = optbench_check("gd")
            assert all(c.passed for c in checks)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)  # the fixture comes through the pytest11 entry point
