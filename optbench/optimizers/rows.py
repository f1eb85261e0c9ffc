"""Many parameters as a few tensors: param groups whose tensors are row slices of one stacked tensor.

The core stacks K runs' parameters into (K, ...) tensors and gives each setting's param group views
of its rows (:mod:`optbench.core.forms`); 1,000 learning rates are then 1,000 param groups, and an
elementwise update of them is 1,000 small tensor operations, each paying the host's dispatch cost.
:class:`Rows` finds the stacked tensors those views cover (and the ones their gradients cover), so
the update can be one operation on each, with the hyperparameter as a per-row tensor. Element by
element that is the same IEEE arithmetic on the same operands, so the bits are the same.

Only float32 and float64: for half precision torch rounds a Python scalar differently from a tensor.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch

Tensor = torch.Tensor
_EXACT = (torch.float32, torch.float64)
_PLAIN = (torch.Tensor, torch.nn.Parameter)


class Rows:
    """The stacked tensors that ``params`` are row slices of, and those their gradients are rows of."""

    def __init__(self, params: list[Tensor]):
        self.params = params
        self.positions: list[list[int]] = []  # the parameters in each stacked tensor
        self.wholes: list[Tensor] = []  # the stacked tensors; empty when there are none, or they save nothing
        self._addresses: list[int] = []
        self._counts: list[Tensor] = []
        self._grads: list[Tensor | None] = []
        self._grad_addresses: list[int] = []
        self._grad_wholes: list[Tensor] = []
        self._values: tuple[Any, ...] = ()
        self._rates: list[Tensor] = []
        if not all(map(_plain, params)):  # a scalar, a sparse or subclassed tensor: the plain update
            return
        by_storage: dict[tuple[Any, ...], list[int]] = {}
        for i, p in enumerate(params):
            by_storage.setdefault((p.device, p.dtype, p.untyped_storage().data_ptr()), []).append(i)
        wholes = [tile([params[i] for i in pos]) for pos in by_storage.values()]
        if len(wholes) == len(params) or any(w is None for w in wholes):  # a model's own parameters: no gain
            return
        self.positions, self.wholes = list(by_storage.values()), wholes
        self._addresses = _addresses(params)
        self._counts = [torch.tensor([params[i].shape[0] for i in pos]) for pos in self.positions]

    @property
    def useful(self) -> bool:
        """One operation per stacked tensor instead of one per parameter."""
        return bool(self.wholes)

    def holds(self, params: list[Tensor]) -> bool:
        """Whether ``params`` are the tensors this was built on, each where it was (a ``.data =`` that
        moved one is noticed; one that kept its address and changed its layout would not be)."""
        return _same(params, self.params) and (not self.useful or _addresses(params) == self._addresses)

    def attach(self, grads: list[Tensor | None]) -> bool:
        """Find the stacked tensors of this step's gradients (the last step's, if the same); False if none."""
        if _same(grads, self._grads) and (not self._grad_wholes or _addresses(grads) == self._grad_addresses):
            return bool(self._grad_wholes)
        self._grads, self._grad_addresses, self._grad_wholes = grads, [], []
        if not all(map(_plain, grads)):  # a missing gradient, or a sparse one
            return False
        wholes = [tile([grads[i] for i in pos]) for pos in self.positions]
        if any(g is None or g.shape != w.shape for g, w in zip(wholes, self.wholes, strict=True)):
            return False
        self._grad_addresses, self._grad_wholes = _addresses(grads), wholes
        return True

    def per_row(self, values: Sequence[float]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(parameters' tensor, gradients' tensor, ``values[i]`` on the rows of parameter i) per stacked tensor."""
        key = tuple(values)
        if key != self._values:
            self._rates = []
            for whole, pos, counts in zip(self.wholes, self.positions, self._counts, strict=True):
                rows = torch.tensor([values[i] for i in pos], dtype=whole.dtype).repeat_interleave(counts)
                self._rates.append(rows.reshape(-1, *[1] * (whole.dim() - 1)).to(whole.device))
            self._values = key
        return list(zip(self.wholes, self._grad_wholes, self._rates, strict=True))


class StackedDescent:
    """Gradient descent's update, ``p -= lr * p.grad``, on a sweep's stacked tensors: one operation each.

    Call it with an optimizer's ``param_groups`` at each step. When their parameters are row views of
    a few stacked tensors (and so are their gradients), it updates each stacked tensor at once with the
    groups' learning rates as a per-row tensor and returns True; otherwise it does nothing and returns
    False, and the caller does the plain update. The stacked tensors found are kept between steps and
    checked at each one (:meth:`Rows.holds`, :meth:`Rows.attach`). Element by element the arithmetic is
    the plain update's (multiply, then subtract), so the bits are the same.

    >>> whole, grads = torch.zeros(4, 2), torch.ones(4, 2)  # two runs' parameters and gradients, stacked
    >>> views = [whole[:2], whole[2:]]
    >>> views[0].grad, views[1].grad = grads[:2], grads[2:]
    >>> StackedDescent()([{"params": [views[0]], "lr": 0.1}, {"params": [views[1]], "lr": 0.5}])
    True
    >>> whole[:, 0].tolist()
    [-0.10000000149011612, -0.10000000149011612, -0.5, -0.5]
    """

    def __init__(self) -> None:
        self.rows: Rows | None = None

    @torch.no_grad()
    def __call__(self, param_groups: Sequence[dict[str, Any]]) -> bool:
        params = [p for group in param_groups for p in group["params"]]
        lrs = [group["lr"] for group in param_groups for _ in group["params"]]
        if len(params) < 2 or not set(map(type, lrs)) <= {float, int}:  # a tensor lr: the plain update
            return False
        if self.rows is None or not self.rows.holds(params):
            self.rows = Rows(params)
        if not (self.rows.useful and self.rows.attach([p.grad for p in params])):
            return False
        for whole, grad, lr in self.rows.per_row(lrs):
            whole.sub_(grad.mul(lr))
        return True


def _plain(t: Tensor | None) -> bool:
    """A dense tensor of rows in float32 or float64, of no subclass but Parameter."""
    return type(t) in _PLAIN and t.layout == torch.strided and t.dim() >= 1 and t.dtype in _EXACT


def _same(tensors: list[Tensor | None], before: list[Tensor | None]) -> bool:
    return len(tensors) == len(before) and all(map(operator.is_, tensors, before))


def _addresses(tensors: list[Tensor]) -> list[int]:
    return [t.data_ptr() for t in tensors]


def tile(tensors: list[Tensor]) -> Tensor | None:
    """The one tensor that ``tensors`` make up, one after another, or None if they don't.

    They must be contiguous, of one storage, dtype (float32 or float64) and shape past the first
    dimension, and lie back to back in memory in the order given.
    """
    first = tensors[0]
    if not _plain(first):
        return None
    storage, trailing, itemsize = first.untyped_storage().data_ptr(), first.shape[1:], first.element_size()
    address, rows = first.data_ptr(), 0
    for t in tensors:
        same_kind = t.dtype == first.dtype and t.device == first.device and t.dim() == first.dim()
        same_kind = same_kind and t.shape[1:] == trailing and _plain(t)
        if not (same_kind and t.is_contiguous() and t.untyped_storage().data_ptr() == storage):
            return None
        if t.data_ptr() != address:
            return None
        address += t.numel() * itemsize
        rows += t.shape[0]
    shape = (rows, *trailing)
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    return first.as_strided(shape, strides, first.storage_offset())
