"""The protocol words real classes need, each with a small class of the shape that needs it:

- the keyword a wrapper takes its base by (heavyball's ``SAMWrapper(params, wrapped_optimizer=...)``),
  read from the class or declared with ``wraps=``;
- ``train()``/``eval()`` taken for schedule-free modes only where they are the class's own and work
  (not a ``__getattr__`` that forwards every name, not a ``train()`` that forwards to a base without one);
- ``create_graph``: a step that differentiates the gradients (AdaHessian, SophiaH);
- third-party switches in ``--opt`` (heavyball's ``compile_step``): an implementation keyword of the
  constructor is passed on as given and recorded.
"""

from __future__ import annotations

import pytest
import torch
from support import Averaged, invoke

import optbench
from optbench.errors import InvalidValueError
from optbench.optimizers.protocol import has_modes
from optbench.registry import OPTIMIZERS


@pytest.fixture(autouse=True)
def _registry():
    with OPTIMIZERS.snapshot():
        yield


def linreg_by_hand(update, steps: int) -> list[float]:
    """linreg (seed 0) trained by hand: ``update(a, grad)`` in place, full batch; its losses."""
    problem = optbench.get_problem("linreg").target(seed=0)
    losses = [float(problem.loss().detach())]
    for _ in range(steps):
        problem.a.grad = None
        problem.loss().backward()
        with torch.no_grad():
            update(problem.a, problem.a.grad)
        losses.append(float(problem.loss()))
    return losses


# --- the keyword a wrapper takes its base by -------------------------------------------------


class HalfStep(torch.optim.Optimizer):
    """heavyball's SAMWrapper's shape: the parameters, then the built base by ``wrapped_optimizer``;
    it takes ``shrink`` of the base's step. train()/eval() forward to the base, which has none."""

    def __init__(self, params, wrapped_optimizer=None, shrink=0.5):
        params = list(params)
        super().__init__(params, {"shrink": shrink})
        if isinstance(wrapped_optimizer, type) or not hasattr(wrapped_optimizer, "step"):
            raise ValueError(f"{wrapped_optimizer!r} is not an optimizer")
        self.wrapped_optimizer = wrapped_optimizer

    @torch.no_grad()
    def step(self, closure=None):
        before = [p.detach().clone() for g in self.param_groups for p in g["params"]]
        loss = self.wrapped_optimizer.step(closure)
        for old, p in zip(before, [p for g in self.param_groups for p in g["params"]], strict=True):
            p.copy_(old + self.defaults["shrink"] * (p - old))
        return loss

    def train(self, mode=True):
        self.wrapped_optimizer.train(mode)
        return self

    def eval(self):
        return self.train(False)


class Inner(HalfStep):
    """The same wrapper, taking its base by a keyword no convention knows: it must be declared."""

    def __init__(self, params, inner=None, shrink=0.5):
        super().__init__(params, wrapped_optimizer=inner, shrink=shrink)


def test_a_wrapper_that_takes_its_base_by_keyword_trains_around_it():
    OPTIMIZERS.add("t-half-step", HalfStep)
    run = optbench.run("linreg", "t-half-step(torch-sgd)", lr=0.2, epochs=10)
    assert set(run["status"]) == {"ok"}, run["message"].iloc[-1]
    # half of SGD's step at lr 0.2 is SGD at lr 0.1
    assert run["loss"].tolist() == pytest.approx(linreg_by_hand(lambda a, g: a.sub_(0.1 * g), 10), rel=1e-5)
    assert "t-half-step.wrapped_optimizer" not in OPTIMIZERS.get("t-half-step(torch-sgd)").hyperparameters()
    shrunk = optbench.run("linreg", "t-half-step(torch-sgd)", lr=0.2, epochs=10, **{"t-half-step.shrink": 0.25})
    assert shrunk["loss"].tolist() == pytest.approx(linreg_by_hand(lambda a, g: a.sub_(0.05 * g), 10), rel=1e-5)


def test_a_wrapper_keyword_no_convention_knows_is_declared_with_wraps():
    OPTIMIZERS.add("t-inner", Inner)
    with pytest.raises(InvalidValueError, match="not iterable"):  # the base went where the parameters go
        optbench.run("linreg", "t-inner(torch-sgd)", lr=0.2, epochs=3)
    OPTIMIZERS.add("t-inner-declared", Inner, wraps="inner")
    run = optbench.run("linreg", "t-inner-declared(torch-sgd)", lr=0.2, epochs=10)
    assert run["loss"].tolist() == pytest.approx(linreg_by_hand(lambda a, g: a.sub_(0.1 * g), 10), rel=1e-5)


# --- train()/eval(): schedule-free modes only where they are the class's own ------------------


class Forwarding(torch.optim.Optimizer):
    """A wrapper that answers every name it lacks from its base (``__getattr__``) and steps it."""

    def __init__(self, optimizer, k=1):
        self.optimizer = optimizer
        self.k = k

    def __getattr__(self, name):
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def step(self, closure=None):
        return self.optimizer.step(closure)

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none)


def test_train_and_eval_forwarded_by_getattr_are_not_the_wrappers_own_modes():
    base = Averaged([torch.zeros(2, requires_grad=True)])
    assert (
        has_modes(base)
        and not has_modes(Forwarding(base))
        and not has_modes(Forwarding(torch.optim.SGD(base.param_groups[0]["params"])))
    )
    OPTIMIZERS.add("t-averaged", Averaged)
    OPTIMIZERS.add("t-forwarding", Forwarding)
    alone = optbench.run("linreg", "t-averaged", lr=0.3, epochs=8)
    wrapped = optbench.run("linreg", "t-forwarding(t-averaged)", lr=0.3, epochs=8)
    assert set(wrapped["status"]) == {"ok"}, wrapped["message"].iloc[-1]
    # the base's modes switch once each time (through the composite), so it records at the mean
    assert wrapped["loss"].tolist() == alone["loss"].tolist()


def test_a_train_that_forwards_to_a_base_without_modes_is_not_schedule_free():
    # HalfStep defines train()/eval() on its class; they raise with torch-sgd inside (SAMWrapper around
    # heavyball's AdamW): the run trains and records where it steps, as a run without modes does
    OPTIMIZERS.add("t-half-step", HalfStep)
    run = optbench.run("classification", "t-half-step(torch-adam)", lr=0.02, epochs=12, seed=1)
    plain = optbench.run("classification", "torch-adam", lr=0.01, epochs=12, seed=1)
    assert set(run["status"]) == {"ok"}, run["message"].iloc[-1]
    assert run["loss"].iloc[-1] < 0.8 * run["loss"].iloc[0]
    # half of Adam's step at lr 0.02 is Adam's at lr 0.01, recorded where it steps
    assert run["loss"].tolist() == pytest.approx(plain["loss"].tolist(), rel=1e-5)


# --- create_graph: a step that differentiates the gradients ----------------------------------


class DiagonalNewton(torch.optim.Optimizer):
    """AdaHessian's shape: a Hessian-vector product of the gradients (H @ 1), so the backward must keep
    the graph; the step is lr * g / (|H @ 1| + eps)."""

    def __init__(self, params, lr=0.5, eps=1e-3):
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        with torch.enable_grad():
            hv = torch.autograd.grad(grads, params, [torch.ones_like(g) for g in grads])
        for p, g, h in zip(params, grads, hv, strict=True):
            p.sub_(self.defaults["lr"] * g.detach() / (h.abs() + self.defaults["eps"]))


def newton_by_hand(steps: int) -> list[float]:
    problem = optbench.get_problem("linreg").target(seed=0)
    losses = [float(problem.loss())]
    for _ in range(steps):
        problem.a.grad = None
        problem.loss().backward(create_graph=True)
        g = problem.a.grad
        (h,) = torch.autograd.grad(g, problem.a, torch.ones_like(g))
        with torch.no_grad():
            problem.a.sub_(0.5 * g.detach() / (h.abs() + 1e-3))
        losses.append(float(problem.loss()))
    return losses


def test_a_step_that_differentiates_the_gradients_trains_where_declared():
    OPTIMIZERS.add("t-newton", DiagonalNewton, create_graph=True)
    specs = optbench.sweep(problems="linreg", optimizers="t-newton", lr=[0.5], seeds=[0, 1], epochs=10)
    run = specs[specs["seed"] == 0]
    assert set(specs["status"]) == {"ok"} and set(specs["batch_runs"]) == {1}  # alone: no stacked graph
    assert run["loss"].tolist() == pytest.approx(newton_by_hand(10), rel=1e-5)
    assert run["loss"].iloc[-1] < 0.5 * run["loss"].iloc[0]


def test_create_graph_may_be_said_by_the_class():
    class Marked(DiagonalNewton):
        optbench_create_graph = True

    OPTIMIZERS.add("t-marked-newton", Marked)
    run = optbench.run("linreg", "t-marked-newton", lr=0.5, epochs=10)
    assert run["loss"].tolist() == pytest.approx(newton_by_hand(10), rel=1e-5)
    described = invoke("describe", "t-marked-newton")
    assert "create_graph" in described.output, described.output


def test_a_step_that_asks_for_the_graph_gets_it_undeclared():
    class Unmarked(DiagonalNewton):  # a class of its own: what is learned of one class stays with it
        pass

    OPTIMIZERS.add("t-unmarked-newton", Unmarked)
    table = optbench.sweep(problems="linreg", optimizers="t-unmarked-newton", lr=[0.5], seeds=[0, 1], epochs=10)
    assert set(table["status"]) == {"ok"}, table["message"].iloc[-1]  # its first step said what it needs
    assert table[table["seed"] == 0]["loss"].tolist() == pytest.approx(newton_by_hand(10), rel=1e-5)


# --- third-party switches through --opt -------------------------------------------------------


def test_a_third_party_switch_reaches_the_constructor_from_the_command_line(tmp_path):
    # heavyball's shape: a keyword that switches an implementation (its compile_step), not an algorithm
    plugin = tmp_path / "switched.py"
    plugin.write_text(
        "import torch, optbench\n"
        "@optbench.register_optimizer('t-switched')\n"
        "class Switched(torch.optim.SGD):\n"
        "    def __init__(self, params, lr=0.1, compile_step=True):\n"
        "        assert compile_step is False, compile_step\n"
        "        super().__init__(params, lr=lr)\n"
    )
    out = tmp_path / "runs.parquet"
    result = invoke(
        "run", "--plugin", plugin, "--problem", "linreg", "--optimizer", "t-switched", "--epochs", "3",
        "--opt", "compile_step=false", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = optbench.load_results(out)
    assert set(table["status"]) == {"ok"} and not table["compile_step"].iloc[0]
