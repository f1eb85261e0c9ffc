"""Hand-written gradient descent, the lesson's ``a.sub_(lr * a.grad)``, as a torch.optim.Optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optbench.optimizers.rows import StackedDescent
from optbench.private_apis import add_param_group_unguarded


class GradientDescent(torch.optim.Optimizer):
    """Gradient descent: ``p <- p - lr * p.grad`` for every parameter, under ``no_grad``.

    Full-batch or minibatch is decided by the run's batch size, not here: registered as ``gd``
    (full batch) and ``sgd`` (batches of 10, reshuffled every epoch). Default ``lr = 0.1``. When the
    parameters are row blocks of a few stacked tensors (a sweep's settings, one param group each),
    each stacked tensor is updated in one operation with a per-row lr
    (:class:`~optbench.optimizers.rows.StackedDescent`), to the same bits.

    >>> a = torch.tensor([-1.0, 1.0], requires_grad=True)
    >>> opt = GradientDescent([a], lr=0.1)
    >>> (a**2).sum().backward(); opt.step()
    >>> a
    tensor([-0.8000,  0.8000], requires_grad=True)
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 0.1):
        if not lr > 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, {"lr": lr})
        self._stacked = StackedDescent()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        add_param_group_unguarded(self, param_group)  # the lesson's optimizer starts at once

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._stacked(self.param_groups):  # a sweep's settings, rows of a few stacked tensors: done
            return loss
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * p.grad
        return loss
