"""A local-file plugin: `optbench run --plugin examples/my_plugins.py --problem my-rosenbrock --optimizer heavy-ball`.

It adds one problem and one optimizer with optbench's decorators. Nothing else is needed: the
file is imported for that command and its names work like built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

import optbench


@optbench.register_problem("my-rosenbrock")
class Rosenbrock:
    """Rosenbrock's banana valley f(x, y) = (a - x)^2 + b (y - x^2)^2, minimum 0 at (a, a^2).

    The problem contract in full: ``n_train`` (here 1: there is no data, every batch is the whole
    problem), ``parameters()``, ``loss(idx=None)`` and the known optimum ``optimum = 0``. optbench
    has a built-in ``rosenbrock``; this one is written by hand, with no base class, so it needs a
    name of its own.
    """

    n_train = 1
    optimum = 0.0

    def __init__(self, seed: int = 0, *, a: float = 1.0, b: float = 100.0, start: tuple[float, float] = (-1.5, 2.0)):
        # No data, so nothing to draw: the seed is part of the contract and unused here.
        self.a, self.b = a, b
        self.point = torch.tensor(start, dtype=torch.float64, requires_grad=True)

    def parameters(self) -> Iterator[torch.Tensor]:
        yield self.point

    def loss(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        x, y = self.point
        return (self.a - x) ** 2 + self.b * (y - x**2) ** 2


@optbench.register_optimizer("heavy-ball", description="Polyak's heavy ball: v = mu v + g; p -= lr v (lr 1e-3, mu 0.9)")
class HeavyBall(torch.optim.Optimizer):
    """Polyak's heavy-ball momentum (1964): ``v <- momentum * v + grad``, ``p <- p - lr * v``."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, momentum: float = 0.9):
        if not lr > 0 or not 0 <= momentum < 1:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                v = self.state[p].setdefault("velocity", torch.zeros_like(p))
                v.mul_(group["momentum"]).add_(p.grad)
                p.sub_(group["lr"] * v)
        return loss
