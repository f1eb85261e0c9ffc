"""What the core needs to know about an optimizer class beyond torch.optim.Optimizer's protocol.

- :func:`step_takes_closure`: whether ``step`` accepts a closure (it is passed one if so).
- :func:`can_stack`: whether runs may be stacked at all (one optimizer per run where not elementwise).
- :func:`is_elementwise`: whether K runs stacked on one (K, ...) tensor may share one optimizer:
  only where the registration (``register_optimizer(..., elementwise=True)``) or the class declares
  it; :func:`stacked_equals_separate` checks such a declaration.
- :func:`can_share_optimizer`: whether a second setting may be a param group of the first's
  optimizer rather than an optimizer of its own.
- :func:`has_modes` and :func:`enters_train_mode`: whether ``train()``/``eval()`` are schedule-free
  modes (its own, and working).
- :func:`needs_graph`: whether its step differentiates the gradients (``backward(create_graph=True)``).
"""

from __future__ import annotations

import functools
import inspect
import itertools
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

Shapes = tuple[tuple[int, ...], ...] | None  # a run's parameter shapes, in order


@functools.cache
def _closure_parameter(cls: type) -> inspect.Parameter | None:
    try:
        params = list(inspect.signature(cls.step).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return None
    return params[0] if params else None


def can_stack(entry: Entry, hyperparameters: dict[str, Any] | None = None) -> bool:
    """May runs of ``entry`` (with these settings) be stacked at all? Unless it needs a closure or a
    gradient with its graph (:func:`needs_graph`), is declared ``elementwise=False`` (train each run
    alone), or a stack of this setting already differed from its run alone in this process
    (:func:`never_stack`). Elementwise classes share an optimizer over the stack; any other steps one
    copy per run, over that run's own tensors."""
    if entry.elementwise is False or needs_closure(entry) or needs_graph(entry):
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
    """An optimizer with ``train()`` and ``eval()`` of its own (schedule-free methods: they step at one
    point and are evaluated at another, their average): the loop steps it in train mode and records in
    eval. Its own: on its class or set on it (a composite's), not answered by a ``__getattr__`` that
    forwards every name to a base optimizer (which may have none)."""
    return all(callable(_own(opt, name)) for name in ("train", "eval"))


def _own(opt: Any, name: str) -> Any:
    try:
        return inspect.getattr_static(opt, name)
    except AttributeError:
        return None


def enters_train_mode(opt: Any) -> bool:
    """Put an optimizer with modes (:func:`has_modes`) in train mode, as the loop does before its first
    step; False, and no modes, where ``train()`` only forwards to a base that has none (heavyball's
    SAMWrapper around its AdamW raises AttributeError there): its train() is not a schedule-free mode."""
    try:
        opt.train()
    except AttributeError:
        return False
    return True


def needs_graph(entry: Entry) -> bool:
    """Whether ``entry``'s step differentiates the gradients (AdaHessian, SophiaH: a Hessian estimate),
    so the core's ``backward`` keeps the graph (``create_graph=True``): declared by its registration
    or its class (``optbench_create_graph``), or learned from a step that asked for it
    (:func:`asks_for_graph`). A composite needs it where a component does."""
    parts = getattr(entry, "parts", None)
    if parts and any(needs_graph(part) for part in parts.values()):
        return True
    return bool(entry.create_graph) or entry.target in _GRAPH


_GRAPH: set[Any] = set()  # classes whose step asked for the gradients' graph in this process
# What autograd says when a step differentiates a gradient that was computed without its graph
_NO_GRAPH = "does not require grad and does not have a grad_fn"


def asks_for_graph(entry: Entry, message: str) -> bool:
    """Whether a run of ``entry`` that ended with ``message`` failed for want of the gradients' graph;
    if so, runs of ``entry`` get it from now on in this process (its run is trained again with it)."""
    if needs_graph(entry) or _NO_GRAPH not in message:
        return False
    _GRAPH.add(entry.target)
    return True


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
        why = (
            "declared elementwise=False"
            if entry.elementwise is False
            else "its step differentiates the gradients (create_graph)"
            if needs_graph(entry)
            else "its step needs a closure"
        )
        return f"each run alone ({why})"
    if getattr(entry, "parts", None):
        return "stacked runs each step their own copy, over their own tensors (a composite)"
    if is_elementwise(entry):
        return "runs of one setting share one optimizer over stacked tensors (declared elementwise)"
    return "stacked runs each step their own copy, over their own tensors (not declared elementwise)"


_NEVER: set[tuple[Any, tuple[tuple[str, str], ...]]] = set()  # (class, setting) a spot check caught


def _setting(hyperparameters: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in hyperparameters.items()))


def never_stack(spec: Any) -> None:
    """Runs of this spec's optimizer and setting train alone from now on in this process: a stacked
    group's spot check (:mod:`optbench.core.engine`) found them differing from a run alone."""
    _NEVER.add((spec.optimizer.target, _setting(dict(spec.hyperparameters))))


PROBE_SHAPES = ((4, 5), (5,), ())  # per run: a matrix, a vector (a bias), a scalar
PROBE_RUNS = 3  # runs stacked by the probe
PROBE_STEPS = 16  # more than the warm-up of methods that adapt only after their first steps
PROBE_NOISE = 1.0  # scale of a random term in each step's gradients: they point every way, not only home


def is_elementwise(entry: Entry) -> bool:
    """May runs of ``entry`` share one optimizer over stacked (K, ...) tensors? Only where its
    registration or its class declares ``elementwise=True`` (torch.optim's built-ins are): an update
    known to treat every element on its own. No probe can prove it: a branch on a per-tensor
    statistic (AdamP's projection, on a cosine against its ``delta``) that did not fire in the probe's
    steps pools the stack's runs once it fires in a real run. Any other class steps one copy per run,
    over that run's own tensors (:mod:`optbench.core.engine`), so it sees exactly what it sees alone.
    :func:`stacked_equals_separate` checks a declaration (``optbench check``)."""
    return entry.elementwise is True


def stacked_equals_separate(
    cls: Any,
    hyperparameters: dict[str, Any],
    runs: int = PROBE_RUNS,
    steps: int = PROBE_STEPS,
    shapes: Shapes = None,
) -> bool:
    """The check of a declaration ``elementwise=True`` (:func:`is_elementwise`), run as the core would
    run the class shared over a stack: ``runs`` runs of a
    problem with parameters of ``shapes`` (a run's shapes; default a matrix, a vector and a scalar),
    tensors that require grad, stacked on a leading axis under one optimizer, stepped as a stack is
    (``step()``, no closure), against each run under its own optimizer, stepped as a run alone is
    (``step(closure)`` where ``step`` takes one).

    Two tests, both must pass:

    - **What it keeps.** Everything the stacked optimizer writes into its param groups, its state and
      its own attributes while it steps is a tensor shaped like its parameters (per element), a step
      counter (one more every step), a number of a parameter's state that is the same in every run
      (a schedule of the step), or not a number (a flag). A number in its param groups or of its own
      (D-Adaptation's ``d``) is one number for the whole stack: it would pool the stack's runs, however
      equal it stays for these steps, so the class is refused whatever the values say
      (:meth:`_Kept.per_element`).
    - **What it does.** The runs' losses differ in scale by 10x from run to run and each step's
      gradient has a random term, so a norm, a maximum, a cosine or a learning rate taken over the
      whole tensor shows; so does a method that reads the closure's loss, switches on a parameter's
      ``ndim``, or adapts after a few steps. Equal to rtol 1e-6 (float64): stacking is exact.

    A class that needs a closure, or any exception, counts as not elementwise."""
    if any(v is REQUIRED for v in hyperparameters.values()):
        return False
    shapes = PROBE_SHAPES if shapes is None else shapes
    gen = torch.Generator().manual_seed(0)
    starts = [torch.randn(runs, *shape, generator=gen, dtype=torch.float64) for shape in shapes]
    targets = [torch.randn(runs, *shape, generator=gen, dtype=torch.float64) for shape in shapes]
    weight = 10.0 ** torch.arange(runs, dtype=torch.float64)
    noise = [torch.zeros_like(t) for t in targets]  # this step's random term, the same for both sides

    def loss_of(params: list[torch.Tensor], i: int | None) -> torch.Tensor:
        """Run i's loss (params of one run), or the sum of every run's (stacked params)."""
        total = torch.zeros((), dtype=torch.float64)
        for p, target, r in zip(params, targets, noise, strict=True):
            if i is None:
                w = weight.view(-1, *([1] * (p.dim() - 1)))
                total = total + (w * ((p - target) ** 2 / 2 + r * p)).sum()
            else:
                total = total + weight[i] * ((p - target[i]) ** 2 / 2 + r[i] * p).sum()
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
        kept, apart = _Kept(opt), [_Kept(o) for o in opts]
        for _ in range(steps):
            for r in noise:
                r.normal_(0.0, PROBE_NOISE, generator=gen)
            gradients(stacked, None)
            opt.step()
            kept.after_step()
            for i, (params, o) in enumerate(zip(separate, opts, strict=True)):
                gradients(params, i)
                if _closure_parameter(type(o)) is not None:
                    o.step(lambda params=params, i=i: gradients(params, i))
                else:
                    o.step()
                apart[i].after_step()
    except Exception:
        return False
    if not kept.per_element(apart):
        return False
    for p, parts in zip(stacked, zip(*separate, strict=True), strict=True):
        together = torch.stack([q.detach() for q in parts])
        if not (bool(torch.isfinite(p).all()) and torch.allclose(p.detach(), together, rtol=1e-6, atol=1e-12)):
            return False
    return True


class _Watched(dict):
    """A param group that remembers which keys were written (a value written back unchanged too)."""

    def __init__(self, group: dict[str, Any]):
        super().__init__(group)
        self.written: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        self.written.add(key)
        super().__setitem__(key, value)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.written.add(key)
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        other = dict(*args, **kwargs)
        self.written.update(other)
        super().update(other)


class _Kept:
    """What an optimizer keeps while it steps: its param groups (watched for writes), its state and
    its own attributes, as a series of numbers per place, read after every step."""

    def __init__(self, opt: Any):
        self.opt = opt
        opt.param_groups[:] = [_Watched(g) for g in opt.param_groups]  # in place: a wrapper may share the list
        self.position = {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}
        self.shapes = {p.shape for g in opt.param_groups for p in g["params"]}
        self.before = {k: _numbers(v) for k, v in vars(opt).items() if k not in _BASE_ATTRIBUTES}
        self.series: dict[tuple[Any, ...], list[tuple[float, ...]]] = {}
        self.pooled = False  # a tensor it keeps is neither shaped like a parameter nor one number

    def after_step(self) -> None:
        for i, group in enumerate(self.opt.param_groups):
            for key in getattr(group, "written", ()):
                if key != "params":
                    self._add(("group", i, key), group[key], None)
        for p, state in self.opt.state.items():
            self._add(("state", self.position.get(id(p), -1)), state, getattr(p, "shape", None))
        for key, value in vars(self.opt).items():
            if key not in _BASE_ATTRIBUTES and key != "param_groups" and _numbers(value) != self.before.get(key):
                self._add(("attribute", key), value, None)

    def _add(self, where: tuple[Any, ...], value: Any, shape: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._add((*where, k), v, shape)
            return
        if isinstance(value, torch.Tensor) and value.numel() > 1:
            # per element where shaped like its parameter (or, outside the state, like one of them)
            self.pooled |= value.shape != shape if shape is not None else value.shape not in self.shapes
            return
        numbers = _numbers(value)
        if numbers:
            self.series.setdefault(where, []).append(numbers)

    def per_element(self, separate: list[_Kept]) -> bool:
        """Whether every number it keeps is a step counter (one more at every step), or, in a
        parameter's state, a schedule of the step: the same series in every run kept ``separate``
        (ASGD's ``eta``, NAdam's ``mu_product``). A number of its param groups or its own that is
        neither (D-Adaptation's ``d``) is one number for every run of a stack, so it is refused even
        while its series agree; so is a number of a parameter's state that differs from run to run
        (a per-tensor statistic) and any tensor shaped otherwise than its parameter."""
        if self.pooled:
            return False
        for where, values in self.series.items():
            if _counts_steps(values):
                continue
            if where[0] != "state" or any(other.series.get(where) != values for other in separate):
                return False
        return True


def _counts_steps(values: list[tuple[float, ...]]) -> bool:
    """Whether a series read after every step goes up by one at every step (in each of its numbers)."""
    return all(
        len(a) == len(b) and all(y - x == 1 for x, y in zip(a, b, strict=True)) for a, b in itertools.pairwise(values)
    )


def _numbers(value: Any) -> tuple[float, ...]:
    """The numbers in a value (a number, a one-element tensor, a tuple of them); () for anything else."""
    if isinstance(value, bool) or value is None:
        return ()
    if isinstance(value, int | float):
        return (float(value),)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        return (float(value.detach()),)
    if isinstance(value, tuple | list) and len(value) < 8:
        return tuple(x for v in value for x in _numbers(v))
    return ()


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
