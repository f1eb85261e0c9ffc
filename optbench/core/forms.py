"""The two forms of a group of runs, and what the training loop asks of each.

- :class:`Alone`: one run on the problem's own tensors and ``loss()`` (any problem, any optimizer).
- :class:`Stacked`: K runs of a problem with the functional form, their parameters and data stacked
  on a leading axis and the loss ``vmap(loss_fn)`` (or the problem's own ``stacked_loss_fn``);
  optimizers own (K_s, ...) views of the stack, or one run's views each.

Both offer ``gradients(idx)`` (zero, loss on the batch, backward; the per-run losses), ``losses()``
and ``metrics()`` (the full training loss and the problem's metrics, per run) and ``versions()``
(what changes when an optimizer moves the parameters or touches their gradients). A problem that
trains on fresh data (its ``draw``: :mod:`optbench.problems.base`) makes the form ``fresh``; then
``draw(step, seeds, size)`` puts each run's batch for that step in place of its training data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from optbench.private_apis import version
from optbench.problems.base import Problem

Tensor = torch.Tensor


class Alone:
    """One run on the problem's own tensors."""

    k = 1
    passes_closure = True  # to a step that takes one; it costs nothing unless the optimizer moved first

    def __init__(self, problem: Any, create_graph: bool = False):
        self.problem = problem
        self.create_graph = create_graph  # for a step that differentiates the gradients (a Hessian estimate)
        self.leaves = [p for p in problem.parameters()]
        self.n_train = problem.n_train
        self.loss: Tensor | None = None
        self.fresh = callable(getattr(problem, "draw", None))

    def draw(self, step: int, seeds: list[int], size: int) -> None:
        """The problem's data for ``step`` (its ``draw``), on the device its data are on."""
        data = self.problem.data
        data.update({k: v.to(data[k].device) for k, v in self.problem.draw(seeds[0], step, size).items()})

    def gradients(self, idx: Tensor | None) -> Tensor:
        """Zero the gradients, compute the batch loss and backward; return the loss, shape (1,)."""
        for p in self.leaves:
            p.grad = None
        loss = self.problem.loss(None if idx is None else idx[0])
        loss.backward(create_graph=self.create_graph)
        return loss.detach().reshape(1)

    def losses(self) -> Tensor:
        return self.problem.loss().reshape(1)

    def metrics(self) -> dict[str, Tensor]:
        metrics = self.problem.metrics() if hasattr(self.problem, "metrics") else {}  # optional in the contract
        return {k: v.reshape(1) for k, v in metrics.items()}

    def versions(self) -> tuple[int, ...]:
        return tuple(version(t) for p in self.leaves for t in (p, p.grad) if t is not None)


class Stacked:
    """K runs as one program: parameters and data stacked on a leading axis, ``vmap(loss_fn)``."""

    # Stacked optimizers step without a closure: several optimizers
    # share one stack, so a closure could not tell whose parameters moved.
    passes_closure = False

    def __init__(self, problems: list[Any]):
        first = problems[0]
        self.k = len(problems)
        self.n_train = first.n_train
        self.params = {k: torch.stack([p.params[k].detach() for p in problems]).requires_grad_() for k in first.params}
        self.device = next(iter(self.params.values()), torch.empty(0)).device
        self.data = {k: torch.stack([p.data[k] for p in problems]) for k in first.data}
        self.problems = problems
        self.fresh = callable(getattr(first, "draw", None))
        native = getattr(first, "stacked_loss_fn", None)  # a problem that stacks its runs itself
        if callable(native):
            self._loss = native
            self._full_loss = lambda p, d: native(p, d, None)
            own = getattr(first, "stacked_metrics_fn", None)
            self._metrics = own if callable(own) else torch.func.vmap(first.metrics_fn) if _has_metrics(first) else None
        else:
            self._loss = torch.func.vmap(first.loss_fn, in_dims=(0, 0, 0))
            self._full_loss = torch.func.vmap(lambda p, d: first.loss_fn(p, d, None))
            self._metrics = torch.func.vmap(first.metrics_fn) if _has_metrics(first) else None
            if getattr(first, "records_run_by_run", False):  # over all rows: a loop beats vmap (see the word)
                self._full_loss = _run_by_run(lambda p, d: first.loss_fn(p, d, None))
                self._metrics = _run_by_run(first.metrics_fn) if _has_metrics(first) else None
        self.views: list[tuple[Tensor, str, int | slice]] = []  # (view of a stacked parameter, its name, its rows)
        self._grads: dict[str, Tensor | None] = {}  # the gradients the views were last attached to

    def draw(self, step: int, seeds: list[int], size: int) -> None:
        """Each run's data for ``step``, drawn by its own problem from its own seed, stacked."""
        batches = [p.draw(seed, step, size) for p, seed in zip(self.problems, seeds, strict=True)]
        self.data.update({k: torch.stack([b[k] for b in batches]).to(self.device) for k in batches[0]})

    def views_of(self, start: int, stop: int | None = None) -> list[Tensor]:
        """The parameters of runs ``start:stop`` as leaf views an optimizer can own (shape (stop-start, ...));
        without ``stop``, run ``start``'s own, of the shape it has alone."""
        rows: int | slice = start if stop is None else slice(start, stop)
        out = []
        for name, p in self.params.items():
            # shares storage and version counter with the stacked leaf; requires grad as a run's own
            # parameter does, so a method that filters on it sees what it sees alone
            view = p.detach()[rows].requires_grad_(p.requires_grad)
            self.views.append((view, name, rows))
            out.append(view)
        return out

    def gradients(self, idx: Tensor | None) -> Tensor:
        for p in self.params.values():
            if p.grad is not None:
                p.grad.zero_()  # in place, so the views' gradients stay views of it
        losses = self._full_loss(self.params, self.data) if idx is None else self._loss(self.params, self.data, idx)
        losses.sum().backward()
        self._attach_grads()
        return losses.detach()

    def _attach_grads(self) -> None:
        """Give each view its rows of the stacked gradient (again only if that tensor or a view's grad changed)."""
        fresh = any(self._grads.get(name) is not p.grad for name, p in self.params.items())
        if fresh or any(view.grad is None for view, _, _ in self.views):  # e.g. a step that calls zero_grad()
            for view, name, rows in self.views:
                view.grad = self.params[name].grad[rows]
            self._grads = {name: p.grad for name, p in self.params.items()}

    def losses(self, idx: Tensor | None = None) -> Tensor:
        """Each run's training loss, over every row or over rows ``idx`` (K, b)."""
        return self._full_loss(self.params, self.data) if idx is None else self._loss(self.params, self.data, idx)

    def metrics(self) -> dict[str, Tensor]:
        return self._metrics(self.params, self.data) if self._metrics is not None else {}

    def versions(self) -> tuple[int, ...]:
        return tuple(version(t) for p in self.params.values() for t in (p, p.grad) if t is not None)


def _run_by_run(fn: Callable[[dict[str, Tensor], dict[str, Tensor]], Any]) -> Callable[..., Any]:
    """``fn`` over K stacked runs, one run's slices at a time, its (K,) results (or a dict of them) stacked."""

    def each(params: dict[str, Tensor], data: dict[str, Tensor]) -> Any:
        k = len(next(iter(params.values())))
        out = [fn({n: t[i] for n, t in params.items()}, {n: t[i] for n, t in data.items()}) for i in range(k)]
        if isinstance(out[0], dict):
            return {key: torch.stack([o[key] for o in out]) for key in out[0]}
        return torch.stack(out)

    return each


def _has_metrics(problem: Any) -> bool:
    """Whether ``metrics_fn`` is the problem's own (the base class's returns {}: no vmap call for nothing)."""
    own = getattr(type(problem), "metrics_fn", None)
    return callable(own) and own is not Problem.metrics_fn
