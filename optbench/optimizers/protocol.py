"""What the core needs to know about an optimizer class beyond torch.optim.Optimizer's protocol.

- :func:`step_takes_closure`: whether ``step`` accepts a closure (it is passed one if so).
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


def step_takes_closure(opt: Any) -> bool:
    """True when ``opt.step`` has an argument (the closure)."""
    return _closure_parameter(type(opt)) is not None


def gradient_protocol(cls: type) -> str:
    """How the core feeds gradients to ``cls``, in words (for ``optbench describe``)."""
    param = _closure_parameter(cls)
    if param is None:
        return "backward() then step(): it reads p.grad"
    if param.default is inspect.Parameter.empty:
        return "backward() then step(closure): the closure re-evaluates the loss when the optimizer has moved"
    return "backward() then step(closure): it may read p.grad or call the closure (which re-evaluates if moved)"


def stacking(entry: Entry) -> str:
    """Whether runs of ``entry`` share one optimizer over stacked parameters, in words (for ``describe``)."""
    if entry.elementwise is not None:
        together, how = entry.elementwise, "declared"
    else:
        together = is_elementwise(entry, entry.hyperparameters())
        how = f"probed with its defaults: stacked {'equals' if together else 'differs from'} separate"
    verdict = "runs of one setting share one optimizer over stacked tensors" if together else "each run alone"
    return f"{verdict} ({how})"


@functools.cache
def _probe(cls: Any, setting: tuple[tuple[str, str], ...], values: tuple[Any, ...]) -> bool:
    return stacked_equals_separate(cls, dict(zip((k for k, _ in setting), values, strict=True)))


def is_elementwise(entry: Entry, hyperparameters: dict[str, Any]) -> bool:
    """May runs of ``entry`` with these settings share one optimizer over stacked parameters?"""
    if entry.elementwise is not None:
        return entry.elementwise
    key = tuple(sorted((k, repr(v)) for k, v in hyperparameters.items()))
    values = tuple(hyperparameters[k] for k, _ in key)
    try:
        return _probe(entry.target, key, values)
    except TypeError:  # an unhashable setting: probe without the cache
        return stacked_equals_separate(entry.target, hyperparameters)


def stacked_equals_separate(cls: Any, hyperparameters: dict[str, Any], runs: int = 3, steps: int = 4) -> bool:
    """The conformance check behind :func:`is_elementwise`: ``runs`` rows of one (runs, 4, 5) float64
    tensor under one optimizer against each row under its own, for ``steps`` steps of seeded gradients
    whose scale differs by 10x between rows (so a norm or a mean over the tensor shows). Equal to
    rtol 1e-6: the optimizer treats every element on its own, so stacking is exact. A step that needs
    a closure, or any exception, counts as not elementwise."""
    if any(v is REQUIRED for v in hyperparameters.values()):
        return False
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(runs, 4, 5, generator=gen, dtype=torch.float64)
    scale = (10.0 ** torch.arange(runs, dtype=torch.float64)).view(-1, 1, 1)
    grads = [torch.randn(runs, 4, 5, generator=gen, dtype=torch.float64) * scale for _ in range(steps)]
    try:
        stacked = start.clone()
        separate = [start[i].clone() for i in range(runs)]
        opt = cls([stacked], **hyperparameters)
        opts = [cls([p], **hyperparameters) for p in separate]
        for g in grads:
            stacked.grad = g.clone()
            opt.step()
            for i, (p, o) in enumerate(zip(separate, opts, strict=True)):
                p.grad = g[i].clone()
                o.step()
    except Exception:
        return False
    together = torch.stack(separate)
    return bool(torch.isfinite(stacked).all()) and torch.allclose(stacked, together, rtol=1e-6, atol=1e-12)


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
