"""What the core needs to know about an optimizer class beyond torch.optim.Optimizer's protocol.

- :func:`step_takes_closure`: whether ``step`` accepts a closure (it is passed one if so).
- :func:`can_stack`: whether runs may be stacked at all (one optimizer per run where not elementwise).
- :func:`is_elementwise`: whether K runs stacked on one (K, ...) tensor under one optimizer give
  exactly the K runs alone, so that runs may share an optimizer. Declared by the registration
  (``register_optimizer(..., elementwise=True)``), else found by :func:`stacked_equals_separate`.
- :func:`can_share_optimizer`: whether a second setting may be a param group of the first's
  optimizer rather than an optimizer of its own.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from optbench.registry import REQUIRED, Entry

# Instance attributes that torch.optim.Optimizer itself sets; anything else a constructor stores
# may hold a setting outside the param groups.
_BASE_ATTRIBUTES = frozenset(
    {
        "defaults",
        "state",
        "param_groups",
        "_warned_capturable_if_run_uncaptured",
        "_zero_grad_profile_name",
        "_optimizer_step_pre_hooks",
        "_optimizer_step_post_hooks",
        "_optimizer_state_dict_pre_hooks",
        "_optimizer_state_dict_post_hooks",
        "_optimizer_load_state_dict_pre_hooks",
        "_optimizer_load_state_dict_post_hooks",
    }
)


@functools.cache
def _closure_parameter(cls: type) -> inspect.Parameter | None:
    try:
        params = list(inspect.signature(cls.step).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return None
    return params[0] if params else None


def can_stack(entry: Entry, hyperparameters: dict[str, Any] | None = None) -> bool:
    """May runs of ``entry`` (with these settings) be stacked at all? Unless it needs a closure, is
    declared ``elementwise=False`` (train each run alone), or a stack of this setting already
    differed from its run alone in this process (:func:`never_stack`). Elementwise classes share
    an optimizer over the stack; any other steps one copy per run, over that run's own tensors."""
    if entry.elementwise is False or needs_closure(entry):
        return False
    try:
        return hyperparameters is None or (entry.target, _setting(hyperparameters)) not in _NEVER
    except TypeError:  # an unhashable setting
        return True


def needs_closure(entry: Entry) -> bool:
    """True when ``entry``'s class must be given a closure (LBFGS): its runs cannot be stacked. A
    composite needs one where one of its components does (a SAM wrapper)."""
    parts = getattr(entry, "parts", None)
    if parts:
        return any(needs_closure(part) for part in parts.values())
    return isinstance(entry.target, type) and class_needs_closure(entry.target)


def class_needs_closure(cls: type) -> bool:
    """True when ``cls.step`` has a closure argument without a default."""
    param = _closure_parameter(cls)
    return param is not None and param.default is inspect.Parameter.empty


def has_modes(opt: Any) -> bool:
    """An optimizer with ``train()`` and ``eval()`` (schedule-free methods: they step at one point
    and are evaluated at another, their average): the loop steps it in train mode and records in eval."""
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


def step_takes_closure(opt: Any) -> bool:
    """True when ``opt.step`` has an argument (the closure)."""
    return _closure_parameter(type(opt)) is not None


def gradient_protocol(cls: type) -> str:
    """How the core feeds gradients to ``cls``, in words (for ``optbench describe``)."""
    if not isinstance(cls, type):  # a composite's builder
        return "backward() then step(closure): once a step for every part (a wrapper alone gets the closure)"
    param = _closure_parameter(cls)
    if param is None:
        return "backward() then step(): it reads p.grad"
    if param.default is inspect.Parameter.empty:
        return "backward() then step(closure): the closure re-evaluates the loss when the optimizer has moved"
    return "backward() then step(closure): it may read p.grad or call the closure (which re-evaluates if moved)"


def stacking(entry: Entry) -> str:
    """Whether runs of ``entry`` share one optimizer over stacked parameters, in words (for ``describe``)."""
    if not can_stack(entry):
        why = "declared elementwise=False" if entry.elementwise is False else "its step needs a closure"
        return f"each run alone ({why})"
    if getattr(entry, "parts", None):
        return "stacked runs each step their own copy, over their own tensors (a composite)"
    if entry.elementwise is not None:
        together, how = entry.elementwise, "declared"
    else:
        together = is_elementwise(entry, entry.hyperparameters())
        how = f"probed with its defaults: stacked {'equals' if together else 'differs from'} separate"
    if together:
        return f"runs of one setting share one optimizer over stacked tensors ({how})"
    return f"stacked runs each step their own copy, over their own tensors ({how})"


@functools.cache
def _probe(cls: Any, setting: tuple[tuple[str, str], ...], values: tuple[Any, ...]) -> bool:
    return stacked_equals_separate(cls, dict(zip((k for k, _ in setting), values, strict=True)))


_NEVER: set[tuple[Any, tuple[tuple[str, str], ...]]] = set()  # (class, setting) a spot check caught


def _setting(hyperparameters: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in hyperparameters.items()))


def never_stack(spec: Any) -> None:
    """Runs of this spec's optimizer and setting train alone from now on in this process: a stacked
    group's spot check (:mod:`optbench.core.engine`) found them differing from a run alone."""
    _NEVER.add((spec.optimizer.target, _setting(dict(spec.hyperparameters))))


def is_elementwise(entry: Entry, hyperparameters: dict[str, Any]) -> bool:
    """May runs of ``entry`` with these settings share one optimizer over stacked parameters?"""
    if entry.elementwise is not None:
        return entry.elementwise
    key = _setting(hyperparameters)
    try:
        if (entry.target, key) in _NEVER:
            return False
        values = tuple(hyperparameters[k] for k, _ in key)
        return _probe(entry.target, key, values)
    except TypeError:  # an unhashable setting: probe without the cache
        return stacked_equals_separate(entry.target, hyperparameters)


PROBE_SHAPES = ((4, 5), (5,), ())  # per run: a matrix, a vector (a bias) and a scalar
PROBE_STEPS = 16  # more than the warm-up of methods that adapt only after their first steps


def stacked_equals_separate(cls: Any, hyperparameters: dict[str, Any], runs: int = 3, steps: int = PROBE_STEPS) -> bool:
    """The check behind :func:`is_elementwise`, run as the core will run the class: ``runs`` runs of a
    small problem (a matrix, a vector and a scalar parameter each, tensors that require grad) stacked
    on a leading axis under one optimizer, stepped as a stack is (``step()``, no closure), against
    each run under its own optimizer, stepped as a run alone is (``step(closure)`` where ``step`` takes
    one). The runs' losses differ in scale by 10x from run to run, so a norm, a maximum or a learning
    rate taken over the whole tensor shows; so does a method that reads the closure's loss, switches
    on a parameter's ``ndim``, or adapts after a few steps. Equal to rtol 1e-6 (float64): stacking is
    exact. A class that needs a closure, or any exception, counts as not elementwise."""
    if any(v is REQUIRED for v in hyperparameters.values()):
        return False
    gen = torch.Generator().manual_seed(0)
    starts = [torch.randn(runs, *shape, generator=gen, dtype=torch.float64) for shape in PROBE_SHAPES]
    targets = [torch.randn(runs, *shape, generator=gen, dtype=torch.float64) for shape in PROBE_SHAPES]
    weight = 10.0 ** torch.arange(runs, dtype=torch.float64)

    def loss_of(params: list[torch.Tensor], i: int | None) -> torch.Tensor:
        """Run i's loss (params of one run), or the sum of every run's (stacked params)."""
        total = torch.zeros((), dtype=torch.float64)
        for p, target in zip(params, targets, strict=True):
            if i is None:
                w = weight.view(-1, *([1] * (p.dim() - 1)))
                total = total + (w * (p - target) ** 2).sum() / 2
            else:
                total = total + weight[i] * ((p - target[i]) ** 2).sum() / 2
        return total

    def gradients(params: list[torch.Tensor], i: int | None) -> torch.Tensor:
        for p in params:
            p.grad = None
        with torch.enable_grad():
            loss = loss_of(params, i)
            loss.backward()
        return loss.detach()

    try:
        stacked = [s.clone().requires_grad_() for s in starts]
        separate = [[s[i].clone().requires_grad_() for s in starts] for i in range(runs)]
        opt = cls(stacked, **hyperparameters)
        opts = [cls(params, **hyperparameters) for params in separate]
        for _ in range(steps):
            gradients(stacked, None)
            opt.step()
            for i, (params, o) in enumerate(zip(separate, opts, strict=True)):
                gradients(params, i)
                if _closure_parameter(type(o)) is not None:
                    o.step(lambda params=params, i=i: gradients(params, i))
                else:
                    o.step()
    except Exception:
        return False
    for p, parts in zip(stacked, zip(*separate, strict=True), strict=True):
        together = torch.stack([q.detach() for q in parts])
        if not (bool(torch.isfinite(p).all()) and torch.allclose(p.detach(), together, rtol=1e-6, atol=1e-12)):
            return False
    return True


def can_share_optimizer(first: Any, other: Any, hyperparameters: Any) -> bool:
    """``other`` (a second setting) may become a param group of ``first``: same class, every
    hyperparameter held in its param group, and no other constructor state that differs."""
    if type(first) is not type(other) or len(other.param_groups) != 1:
        return False
    group = other.param_groups[0]
    if not all(k in other.defaults and _same(group.get(k), v) for k, v in hyperparameters.items()):
        return False
    extra = set(vars(first)) | set(vars(other))
    return all(_same(getattr(first, a, None), getattr(other, a, None)) for a in extra - _BASE_ATTRIBUTES)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) if not isinstance(a, torch.Tensor) else torch.equal(a, b)
    except Exception:
        return a is b
