"""The conformance suite every optimizer passes, built-in or plugin.

Use it in your own tests::

    from optbench.quality.conformance import check_optimizer

    def test_my_optimizer():
        check_optimizer("my-optimizer", lr=0.01)  # a registered name, an import path or the class

or from the shell: ``optbench test-plugin my-optimizer --lr 0.01``, or through the ``optbench_check``
pytest fixture (installed with optbench). The checks, at the optimizer's default batch size:

- ``constructs``: builds from its defaults (plus what you pass) on the problem's parameters;
- ``lowers-loss[linreg]``, ``lowers-loss[classification]``: after ``epochs`` epochs the loss is below
  99% of the first (an optimizer that declares roles, like Muon, is checked as it is used: as the first
  part of a hybrid with torch-adamw, on matrix-factorization and classification);
- ``deterministic``: the same seed gives bit-identical losses;
- ``state-dict`` (full batch, MLP): stopping half-way, saving ``state_dict()`` and loading it into a fresh optimizer on
  a fresh copy of the parameters continues the same trajectory, bit for bit;
- ``own-params-only``: given only the last layer of an MLP, it leaves the other layer and the data alone;
- ``stacking``: whether runs stacked into one tensor may share it (``stacked equals separate``); fails
  when a registration declares ``elementwise=True`` and the probe disagrees.

Gradients reach the optimizer as the core gives them: ``backward()`` first, then ``step(closure)``
(or ``step()``), so an optimizer that reads ``p.grad`` and one that calls the closure both train.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from optbench.core.engine import optimizer_for
from optbench.core.runner import RunSpec, prepare, run
from optbench.core.spec import build
from optbench.registry import OPTIMIZERS
from optbench.results.schema import stable_text

PARTNER = "torch-adamw"  # takes the parameters an optimizer that declares roles does not (torch's docs for Muon)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


class ConformanceError(AssertionError):
    """Raised by :func:`check_optimizer` with the table of checks when one fails."""


def check_optimizer(
    optimizer: str | type,
    *,
    lr: float | None = None,
    epochs: int = 100,
    hyperparameters: Mapping[str, Any] | None = None,
    raise_on_failure: bool = True,
) -> list[Check]:
    """Run every conformance check on ``optimizer``; raise :class:`ConformanceError` if one fails.

    ``optimizer`` is a registered name, an import path (``pkg.mod:Class``) or a class. ``lr`` and
    ``hyperparameters`` override its defaults; ``epochs`` is the budget of the loss checks.
    """
    name = optimizer if isinstance(optimizer, str) else _register_class(optimizer)
    settings = dict(hyperparameters or {})
    on = {"linreg": (name, settings), "classification": (name, settings)}
    if OPTIMIZERS.get(name).roles:  # Muon-like, checked as it is used: alone where every parameter is a
        # matrix, and elsewhere on the matrices, with AdamW on the rest (its settings addressed by part)
        hybrid = f"{name}+{PARTNER}"
        parted = {k if k == "lr" else f"{name}.{k}": v for k, v in settings.items()}
        on = {"matrix-factorization": (name, settings), "classification": (hybrid, parted)}
    problems = list(on)
    checks = [_constructs(name, lr, settings, problems[0])]
    mlp, mlp_settings = on["classification"]  # the checks below train MLPs
    if checks[0].passed:  # the rest need an optimizer that builds
        checks += [_lowers_loss(*on[problem], problem, lr, epochs) for problem in problems]
        checks += [_deterministic(mlp, lr, mlp_settings), _state_dict(mlp, lr, mlp_settings)]
        checks += [_own_params(mlp, lr, mlp_settings), _stacking(name, lr, settings)]
    if raise_on_failure and not all(c.passed for c in checks):
        raise ConformanceError(f"optimizer {name!r} fails conformance:\n{format_checks(checks)}")
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"  {'PASS' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in checks)


def _register_class(cls: type) -> str:
    name = f"{cls.__module__}:{cls.__qualname__}"
    OPTIMIZERS.add(name, cls, source=f"class {name}")
    return name


def _check(name: str, body: Callable[[], str]) -> Check:
    """Run one check: its detail on success; the assertion's or exception's text on failure."""
    try:
        return Check(name, True, body())
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return Check(name, False, f"{type(exc).__name__}: {text[0] if text else ''}")


def _spec(name: str, problem: str, lr: float | None, settings: dict[str, Any], **options: Any) -> RunSpec:
    return prepare(problem, name, lr=lr, hyperparameters=settings, problem_options=options)


def _constructs(name: str, lr: float | None, settings: dict[str, Any], on: str) -> Check:
    def body() -> str:
        spec = _spec(name, on, lr, settings)
        problem = build(spec.problem, {"seed": 0})
        opt = optimizer_for(spec, list(problem.parameters()), problem)
        assert callable(getattr(opt, "step", None)) and callable(getattr(opt, "zero_grad", None)), (
            "no step()/zero_grad()"
        )
        shown = {
            k: v if isinstance(v, bool | int | float | str | tuple) else stable_text(v)
            for k, v in spec.hyperparameters.items()
        }
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no hyperparameters"

    return _check("constructs", body)


def _lowers_loss(name: str, settings: dict[str, Any], problem: str, lr: float | None, epochs: int) -> Check:
    def body() -> str:
        df = run(problem, name, lr=lr, epochs=epochs, batch_size=None, **settings)
        first, last = df["loss"].iloc[0], df["loss"].iloc[-1]
        assert df["status"].iloc[-1] == "ok", f"status {df['status'].iloc[-1]}: {df['message'].iloc[-1]}"
        assert (df["loss"] != first).any(), (
            f"the parameters never moved in {epochs} epochs (loss {first:.4g} throughout): step() changed "
            "nothing; it must update each p in place from p.grad (or from the closure's gradients)"
        )
        assert last < 0.99 * first, f"loss {first:.4g} -> {last:.4g} in {epochs} epochs: not lowered by 1%"
        return f"loss {first:.4g} -> {last:.4g} in {epochs} epochs"

    return _check(f"lowers-loss[{problem}]", body)


def _deterministic(name: str, lr: float | None, settings: dict[str, Any]) -> Check:
    def body() -> str:
        a, b = (run("classification", name, lr=lr, epochs=10, seed=1, **settings) for _ in range(2))
        for table in (a, b):  # two runs that both fail are the same, and prove nothing
            assert table["status"].iloc[-1] == "ok", f"status {table['status'].iloc[-1]}: {table['message'].iloc[-1]}"
        assert a["loss"].tolist() == b["loss"].tolist(), "two runs with seed 1 differ"
        return "two runs with seed 1 are bit-identical"

    return _check("deterministic", body)


def _steps(problem: Any, opt: Any, n: int) -> list[float]:
    """``n`` steps the way the core takes them: gradients first, then step(closure) or step()."""
    from optbench.optimizers.protocol import step_takes_closure

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss

    losses = []
    for _ in range(n):
        with torch.enable_grad():
            closure()
        opt.step(closure) if step_takes_closure(opt) else opt.step()
        with torch.no_grad():
            losses.append(problem.loss().item())
    return losses


def _fresh(spec: RunSpec) -> tuple[Any, Any]:
    problem = build(spec.problem, {"seed": 0, **spec.problem_options})
    return problem, optimizer_for(spec, list(problem.parameters()), problem)


def _state_dict(name: str, lr: float | None, settings: dict[str, Any], half: int = 10) -> Check:
    def body() -> str:
        spec = _spec(name, "classification", lr, settings, model="mlp")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            reference = _steps(*_fresh(spec), 2 * half)
            torch.manual_seed(0)
            problem, opt = _fresh(spec)
            _steps(problem, opt, half)
            state = copy.deepcopy(opt.state_dict())
            values = [p.detach().clone() for p in problem.parameters()]
            resumed_problem, resumed = _fresh(spec)
            with torch.no_grad():
                for p, v in zip(resumed_problem.parameters(), values, strict=True):
                    p.copy_(v)
            resumed.load_state_dict(state)
            continued = _steps(resumed_problem, resumed, half)
        assert continued == reference[half:], "resuming from state_dict() changes the trajectory"
        return f"resumed after {half} steps: the next {half} losses are identical"

    return _check("state-dict", body)


def _own_params(name: str, lr: float | None, settings: dict[str, Any]) -> Check:
    def body() -> str:
        spec = _spec(name, "classification", lr, settings, model="mlp")
        problem = build(spec.problem, {"seed": 0, **spec.problem_options})
        first, last = problem.model[0], problem.model[2]
        untouched = [t.detach().clone() for t in (first.weight, first.bias, problem.x, problem.x_test)]
        opt = optimizer_for(spec, list(last.parameters()), last)
        before = last.weight.detach().clone()
        _steps(problem, opt, 5)
        after = [first.weight, first.bias, problem.x, problem.x_test]
        assert all(torch.equal(a.detach(), b) for a, b in zip(after, untouched, strict=True)), "changed other tensors"
        assert not torch.equal(last.weight.detach(), before), "did not update the parameters it was given"
        return "updated only the parameters it was given"

    return _check("own-params-only", body)


def _stacking(name: str, lr: float | None, settings: dict[str, Any]) -> Check:
    def body() -> str:
        from optbench.optimizers.protocol import can_stack, stacked_equals_separate

        spec = _spec(name, "linreg", lr, settings)
        probed = stacked_equals_separate(spec.optimizer.target, dict(spec.hyperparameters))
        declared = spec.optimizer.elementwise
        assert not (declared and not probed), (
            "declared elementwise=True, but 3 runs stacked in one tensor differ from the same runs apart: "
            "it mixes elements (a norm, a mean); declare elementwise=False"
        )
        if probed:
            return "stacked equals separate: runs of one setting share one optimizer"
        if not can_stack(spec.optimizer):
            return "needs a closure (or declared elementwise=False): each run trains alone"
        return "stacked differs from separate: stacked runs each step their own copy, over their own tensors"

    return _check("stacking", body)
