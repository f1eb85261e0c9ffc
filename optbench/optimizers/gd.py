"""Hand-written gradient descent, the lesson's ``a.sub_(lr * a.grad)``, as a torch.optim.Optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optbench.optimizers.rows import Rows


class GradientDescent(torch.optim.Optimizer):
    """Gradient descent: ``p <- p - lr * p.grad`` for every parameter, under ``no_grad``.

    Full-batch or minibatch is decided by the run's batch size, not here: registered as ``gd``
    (full batch) and ``sgd`` (batches of 10, reshuffled every epoch). Default ``lr = 0.1``. When the
    parameters are row blocks of a few stacked tensors (a sweep's settings, one param group each),
    each stacked tensor is updated in one operation with a per-row lr (:mod:`optbench.optimizers.rows`).

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

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # torch's own method without its dynamo guard, whose first call imports torch._dynamo (about
        # 1 s): the lesson's optimizer should start at once.
        torch.optim.Optimizer.add_param_group.__wrapped__(self, param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        grads = [p.grad for p in params]
        lrs = [group["lr"] for group in self.param_groups for _ in group["params"]]
        rows = self._rows(params, grads, lrs)
        if rows is not None:  # views of a few stacked tensors (a sweep's settings): one update per tensor
            for whole, grad, lr in rows.per_row(lrs):
                whole.sub_(grad.mul(lr))
        else:
            pairs = [(p, g, lr) for p, g, lr in zip(params, grads, lrs, strict=True) if g is not None]
            if pairs:  # every group at once: one fused foreach update on a GPU
                params, grads, lrs = zip(*pairs, strict=True)
                torch._foreach_sub_(params, torch._foreach_mul(grads, list(lrs)))
        return loss

    def _rows(self, params: list[torch.Tensor], grads: list[Any], lrs: list[Any]) -> Rows | None:
        """The stacked tensors these parameters are rows of, when that saves work (kept between steps)."""
        if len(params) < 2 or not set(map(type, lrs)) <= {float, int}:
            return None
        rows = getattr(self, "_stacked", None)
        if rows is None or not rows.holds(params):
            rows = self._stacked = Rows(params)
        return rows if rows.useful and rows.attach(grads) else None
