"""Low-rank matrix factorization: non-convex, yet every local minimum is global, and f* is known."""

from __future__ import annotations

import torch

from optbench.problems import checks, costs
from optbench.problems.base import Problem, Tensor, resolve_dtype


class MatrixFactorization(Problem):
    """Fit ``Y`` (``rows x cols``, of rank ``true_rank``) by ``U V^T`` with ``U: rows x rank``, ``V: cols x rank``.

    The loss over rows ``idx`` is ``1/2 mean_{i in idx, j} ((U V^T)_ij - Y_ij)^2``: a batch is a
    set of rows of ``Y``, and only those rows of ``U`` get a gradient. The seed draws
    ``Y = A B^T / sqrt(true_rank)`` (``A``, ``B`` standard normal, so entries are about N(0, 1)) and
    the start ``U, V ~ N(0, init^2)``; a small ``init`` starts near the saddle point at zero.

    f* by Eckart and Young: the best approximation of rank ``rank`` keeps the largest singular
    values, so ``f* = sum_{k > rank} sigma_k^2 / (2 rows cols)``; 0 when ``rank >= true_rank``.

    >>> p = MatrixFactorization(seed=0, rank=2)
    >>> p.n_train, p.optimum > 0, MatrixFactorization(seed=0).optimum
    (50, True, 0.0)
    """

    cost = staticmethod(costs.matrix_factorization)  # torch-free: read before torch loads

    def __init__(
        self,
        seed: int = 0,
        *,
        rows: int = 50,
        cols: int = 40,
        true_rank: int = 5,
        rank: int = 5,
        init: float = 0.1,
        dtype: str = "float32",
    ):
        name = "matrix-factorization"
        checks.whole(name, "rows", rows, 1)
        checks.whole(name, "cols", cols, 1)
        checks.whole(name, "true_rank", true_rank, 1, min(rows, cols))
        checks.whole(name, "rank", rank, 1)
        checks.real(name, "init", init, 0.0, above=True)
        dt = resolve_dtype(dtype)
        gen = torch.Generator().manual_seed(seed)
        a = torch.randn(rows, true_rank, generator=gen, dtype=torch.float64)
        b = torch.randn(cols, true_rank, generator=gen, dtype=torch.float64)
        target = a @ b.T / true_rank**0.5
        u = init * torch.randn(rows, rank, generator=gen, dtype=torch.float64)
        v = init * torch.randn(cols, rank, generator=gen, dtype=torch.float64)
        if rank >= true_rank:  # exact: the singular values past true_rank are zero, not rounding noise
            self.optimum = 0.0
        else:
            dropped = torch.linalg.svdvals(target)[rank:]
            self.optimum = float(dropped.pow(2).sum() / (2 * rows * cols))
        self.data = {"Y": target.to(dt)}
        self.params = {"U": u.to(dt).requires_grad_(), "V": v.to(dt).requires_grad_()}
        self.n_train = rows

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        u, y = (params["U"], data["Y"]) if idx is None else (params["U"][idx], data["Y"][idx])
        return (u @ params["V"].T - y).pow(2).mean() / 2
