"""Classic test functions: a point to move across a landscape whose minima are known.

No data: ``n_train = 1`` (every batch is the whole problem) and ``data = {}``. The parameters are
one tensor, ``params["xy"]``, starting at the function's classic start (option ``start``). The
seed moves the start only when ``jitter > 0``: ``start + jitter * N(0, I)`` drawn from the seed;
with the default ``jitter=0`` every seed starts at the very same point. Each class knows its plot
window (``bounds``, for contour plots and animations), its global minimizers (``minimizers``) and
``optimum = 0``. ``value(xy)`` evaluates the function over the last dimension of any tensor, so a
``(rows, cols, 2)`` grid gives a ``(rows, cols)`` surface to draw.
"""

from __future__ import annotations

import math

import torch

from optbench.problems import checks, costs
from optbench.problems.base import Problem, Tensor, resolve_dtype

Bounds = tuple[tuple[float, float], tuple[float, float]]


class Landscape(Problem):
    """Shared by the test functions: subclasses give ``name``, ``bounds``, ``minimizers`` and ``value``."""

    name: str
    bounds: Bounds
    minimizers: tuple[tuple[float, ...], ...]
    optimum = 0.0
    n_train = 1

    cost = staticmethod(costs.landscape)  # torch-free: read before torch loads

    def _start(self, seed: int, start: tuple[float, ...], jitter: float, dtype: str) -> None:
        checks.real(self.name, "jitter", jitter, 0.0)
        dt = resolve_dtype(dtype)
        gen = torch.Generator().manual_seed(seed)
        point = torch.tensor(start, dtype=torch.float64)
        point = point + jitter * torch.randn(len(start), generator=gen, dtype=torch.float64)
        self.data: dict[str, Tensor] = {}
        self.params = {"xy": point.to(dt).requires_grad_()}

    @staticmethod
    def value(xy: Tensor) -> Tensor:
        raise NotImplementedError

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        return self.value(params["xy"])


class Rosenbrock(Landscape):
    """Rosenbrock's banana valley ``(1 - x)^2 + 100 (y - x^2)^2``; minimum 0 at (1, 1).

    A narrow curved valley: easy to reach, slow to follow. The classic start (-1.2, 1) is
    Rosenbrock's own (1960), as in Moré, Garbow and Hillstrom's test set (1981).

    >>> p = Rosenbrock()
    >>> round(p.loss().item(), 2), p.bounds
    (24.2, ((-2.0, 2.0), (-1.0, 3.0)))
    """

    name, bounds, minimizers = "rosenbrock", ((-2.0, 2.0), (-1.0, 3.0)), ((1.0, 1.0),)

    def __init__(
        self, seed: int = 0, *, start: tuple[float, float] = (-1.2, 1.0), jitter: float = 0.0, dtype: str = "float32"
    ):
        self._start(seed, checks.point(self.name, "start", start, 2), jitter, dtype)

    @staticmethod
    def value(xy: Tensor) -> Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2


class Beale(Landscape):
    """Beale's function ``sum_i (c_i - x + x y^i)^2`` with ``c = (1.5, 2.25, 2.625)``; minimum 0 at (3, 0.5).

    Flat plateaus and steep walls. The classic start is (1, 1) (Moré, Garbow and Hillstrom, 1981).

    >>> Beale().loss().item()
    14.203125
    """

    name, bounds, minimizers = "beale", ((-4.5, 4.5), (-4.5, 4.5)), ((3.0, 0.5),)

    def __init__(
        self, seed: int = 0, *, start: tuple[float, float] = (1.0, 1.0), jitter: float = 0.0, dtype: str = "float32"
    ):
        self._start(seed, checks.point(self.name, "start", start, 2), jitter, dtype)

    @staticmethod
    def value(xy: Tensor) -> Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


class Himmelblau(Landscape):
    """Himmelblau's function ``(x^2 + y - 11)^2 + (x + y^2 - 7)^2``: four global minima, all 0.

    Which one an optimizer reaches depends on where it starts and how it moves; the default start
    is the origin (Himmelblau, 1972). The minimizers besides (3, 2) are irrational; ``minimizers``
    holds them to 15 digits (Newton's method in float64).

    >>> Himmelblau().loss().item()
    170.0
    """

    name, bounds = "himmelblau", ((-5.0, 5.0), (-5.0, 5.0))
    minimizers = (
        (3.0, 2.0),
        (-2.805118086952745, 3.131312518250573),
        (-3.779310253377747, -3.283185991286170),
        (3.584428340330492, -1.848126526964404),
    )

    def __init__(
        self, seed: int = 0, *, start: tuple[float, float] = (0.0, 0.0), jitter: float = 0.0, dtype: str = "float32"
    ):
        self._start(seed, checks.point(self.name, "start", start, 2), jitter, dtype)

    @staticmethod
    def value(xy: Tensor) -> Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


class Rastrigin(Landscape):
    """Rastrigin's function ``10 d + sum_i (x_i^2 - 10 cos(2 pi x_i))``; minimum 0 at the origin.

    A bowl covered in local minima near every integer point: local methods get trapped. ``dim``
    coordinates (``bounds`` is the window of the first two), all starting at ``start``.

    >>> round(Rastrigin().loss().item(), 4), Rastrigin(dim=5).params["xy"].shape
    (52.5, torch.Size([5]))
    """

    name, bounds = "rastrigin", ((-5.12, 5.12), (-5.12, 5.12))

    def __init__(self, seed: int = 0, *, dim: int = 2, start: float = 2.5, jitter: float = 0.0, dtype: str = "float32"):
        checks.whole(self.name, "dim", dim, 1)
        self.minimizers = ((0.0,) * dim,)
        self._start(seed, (checks.real(self.name, "start", start),) * dim, jitter, dtype)

    @staticmethod
    def value(xy: Tensor) -> Tensor:
        return 10 * xy.shape[-1] + (xy**2 - 10 * torch.cos(2 * math.pi * xy)).sum(-1)
