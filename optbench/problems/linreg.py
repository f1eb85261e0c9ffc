"""Linear regression with mean squared error: the fast.ai lesson 2 set-up."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from optbench.errors import InvalidValueError
from optbench.problems.base import Problem, resolve_dtype
from optbench.registry import register_problem


@register_problem("linreg", description="Fit a line y = x@a + noise by mean squared error (fast.ai lesson 2)")
class LinearRegression(Problem):
    """Fit ``a`` in ``y = x @ a + noise * U(0, 1)`` by mean squared error.

    Defaults reproduce fast.ai's lesson 2: ``n = 100`` points, ``x = [u, 1]`` with ``u ~ U(-1, 1)``,
    true ``a = (3, 2)``, noise ``U(0, 1)`` and the start ``a = (-1, 1)``. The optimum ``f*`` is the
    least-squares loss, computed in closed form (float64).

    >>> p = LinearRegression(seed=0)
    >>> round(p.loss().item(), 2), round(p.optimum, 4)
    (6.64, 0.0812)
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        n: int = 100,
        noise: float = 1.0,
        a: tuple[float, float] = (3.0, 2.0),
        start: tuple[float, float] = (-1.0, 1.0),
        dtype: str = "float32",
    ):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise InvalidValueError(f"linreg n={n!r} is out of range; expected a whole number >= 2")
        if noise < 0:
            raise InvalidValueError(f"linreg noise={noise!r} is out of range; expected a number >= 0")
        for label, pair in (("a", a), ("start", start)):
            if len(pair) != 2:
                raise InvalidValueError(f"linreg {label}={pair!r}: expected two numbers (slope, intercept)")
        dt = resolve_dtype(dtype)
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
        self.x = torch.stack([u, torch.ones(n, dtype=torch.float64)], dim=1)
        self.true_a = torch.tensor(a, dtype=torch.float64)
        self.y = self.x @ self.true_a + noise * torch.rand(n, generator=gen, dtype=torch.float64)
        solution = torch.linalg.lstsq(self.x, self.y.unsqueeze(1)).solution.squeeze(1)
        self.solution = solution
        self.optimum = float(((self.x @ solution - self.y) ** 2).mean())
        self.x, self.y = self.x.to(dt), self.y.to(dt)
        self.a = torch.tensor(start, dtype=dt, requires_grad=True)
        self.n_train = n

    def parameters(self) -> Iterator[torch.Tensor]:
        yield self.a

    def loss(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        return ((x @ self.a - y) ** 2).mean()
