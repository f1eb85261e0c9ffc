"""Linear regression with mean squared error: the fast.ai lesson 2 set-up."""

from __future__ import annotations

import math

import torch

from optbench.errors import InvalidValueError
from optbench.problems import costs
from optbench.problems.base import Problem, resolve_dtype


class LinearRegression(Problem):
    """Fit ``a`` in ``y = x @ a + noise * U(0, 1)`` by mean squared error.

    Defaults reproduce fast.ai's lesson 2: ``n = 100`` points, ``x = [u, 1]`` with ``u ~ U(-1, 1)``,
    true ``a = (3, 2)``, noise ``U(0, 1)`` and the start ``a = (-1, 1)``. The optimum ``f*`` is the
    least-squares loss, computed in closed form (float64).

    >>> p = LinearRegression(seed=0)
    >>> round(p.loss().item(), 2), round(p.optimum, 4)
    (6.64, 0.0812)
    """

    cost = staticmethod(costs.linreg)  # torch-free: read before torch loads

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
        x, y = make_data(seed, n, noise, self.true_a)
        self.solution, optimum = least_squares(x, y)
        self.optimum = float(optimum)
        self.data = {"x": x.to(dt), "y": y.to(dt)}
        self.params = {"a": torch.tensor(start, dtype=dt, requires_grad=True)}
        self.n_train = n

    x = property(lambda self: self.data["x"], doc="The inputs [u, 1], (n, 2).")
    y = property(lambda self: self.data["y"], doc="The targets, (n,).")

    @property
    def a(self) -> torch.Tensor:
        """The fitted (slope, intercept): what the lesson's animation draws."""
        return self.params["a"]

    def loss_fn(self, params: dict[str, torch.Tensor], data: dict[str, torch.Tensor], idx=None) -> torch.Tensor:
        x, y = (data["x"], data["y"]) if idx is None else (data["x"][idx], data["y"][idx])
        return ((x @ params["a"] - y) ** 2).mean()


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
    """The least-squares solution of ``x @ a = y`` (``x`` of shape (n, d), d small) and its mean
    squared error, in float64.

    From the normal equations with exactly rounded sums (:func:`math.fsum`), so that f* is the same
    bits in every call: LAPACK's ``lstsq`` (MKL on x86) changes its last bit with the memory layout
    of its input on some CPUs, and a seed's f* must not depend on where its tensors happen to lie.
    """
    rows = x.to(torch.float64).numpy()
    target = y.to(torch.float64).numpy()
    d = rows.shape[1]
    gram = [[math.fsum(rows[:, i] * rows[:, j]) for j in range(d)] for i in range(d)]
    moment = [math.fsum(rows[:, i] * target) for i in range(d)]
    solution = _solve(gram, moment)
    residual = sum((rows[:, i] * solution[i] for i in range(1, d)), rows[:, 0] * solution[0]) - target
    error = math.fsum(residual * residual) / len(target)
    return torch.tensor(solution, dtype=torch.float64), torch.tensor(error, dtype=torch.float64)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting on a small system, in plain floats (the same bits
    on every machine)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            m[r] = [v - f * p for v, p in zip(m[r], m[col], strict=True)]
    out = [0.0] * n
    for r in reversed(range(n)):
        out[r] = (m[r][n] - sum(m[r][c] * out[c] for c in range(r + 1, n))) / m[r][r]
    return out
