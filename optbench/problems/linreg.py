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
        _validate(n, noise, a, start)
        dt = resolve_dtype(dtype)
        self.true_a = torch.tensor(a, dtype=torch.float64)
        self.x, self.y = make_data(seed, n, noise, self.true_a)
        self.solution, optimum = least_squares(self.x, self.y)
        self.optimum = float(optimum)
        self.x, self.y = self.x.to(dt), self.y.to(dt)
        self.a = torch.tensor(start, dtype=dt, requires_grad=True)
        self.n_train = n

    def parameters(self) -> Iterator[torch.Tensor]:
        yield self.a

    def loss(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        return ((x @ self.a - y) ** 2).mean()

    @classmethod
    def stack(
        cls,
        seeds: list[int],
        *,
        n: int = 100,
        noise: float = 1.0,
        a: tuple[float, float] = (3.0, 2.0),
        start: tuple[float, float] = (-1.0, 1.0),
        dtype: str = "float32",
    ) -> StackedLinearRegression:
        """K instances (one per seed, the same data as each alone) as one batched problem."""
        _validate(n, noise, a, start)
        true_a = torch.tensor(a, dtype=torch.float64)
        pairs = [make_data(seed, n, noise, true_a) for seed in seeds]
        x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        _, optimum = least_squares(x, y)
        dt = resolve_dtype(dtype)
        return StackedLinearRegression(x.to(dt), y.to(dt), torch.tensor(start, dtype=dt), optimum.tolist())


def _validate(n: int, noise: float, a: tuple[float, float], start: tuple[float, float]) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise InvalidValueError(f"linreg n={n!r} is out of range; expected a whole number >= 2")
    if noise < 0:
        raise InvalidValueError(f"linreg noise={noise!r} is out of range; expected a number >= 0")
    for label, pair in (("a", a), ("start", start)):
        if len(pair) != 2:
            raise InvalidValueError(f"linreg {label}={pair!r}: expected two numbers (slope, intercept)")


def make_data(seed: int, n: int, noise: float, true_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x = [u, 1] with u ~ U(-1, 1), y = x @ a + noise * U(0, 1), float64, from the seed alone."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
    x = torch.stack([u, torch.ones(n, dtype=torch.float64)], dim=1)
    return x, x @ true_a + noise * torch.rand(n, generator=gen, dtype=torch.float64)


def least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The least-squares solution and its mean squared error; batched over leading dimensions."""
    solution = torch.linalg.lstsq(x, y.unsqueeze(-1)).solution
    return solution.squeeze(-1), ((x @ solution).squeeze(-1) - y).pow(2).mean(-1)


class StackedLinearRegression:
    """K linear regressions side by side: data (K, n, 2), parameters (K, 2), per-run losses (K,).

    Each run's loss is computed from its own rows only, so the runs never mix: the gradient of the
    summed losses with respect to run k's parameters is run k's own gradient.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor, optimum: list[float]):
        self.x, self.y, self.optimum = x, y, optimum
        self.a = start.expand(len(x), 2).clone().requires_grad_(True)
        self.n_train = x.shape[1]

    def parameters(self) -> list[torch.Tensor]:
        return [self.a]

    def losses(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Per-run mean squared error over rows ``idx`` ((K, b) indices, one row of them per run) or all."""
        if idx is None:
            x, y = self.x, self.y
        else:
            x = torch.gather(self.x, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
            y = torch.gather(self.y, 1, idx)
        return ((torch.bmm(x, self.a.unsqueeze(-1)).squeeze(-1) - y) ** 2).mean(dim=1)

    def metrics(self) -> dict[str, torch.Tensor]:
        return {}
