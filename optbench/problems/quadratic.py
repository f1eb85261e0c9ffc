"""The quadratic f(x) = 1/2 x^T A x - b^T x: the problem every optimizer theorem is first proved on.

Its Hessian ``A`` is fixed, so the convergence theory is exact: gradient descent with step size
``1/L`` shrinks the error's component along an eigenvector of eigenvalue ``lam`` by ``1 - lam/L``
per step, so the slowest one (``lam = mu``) by ``1 - 1/condition``, and the suboptimality
``f - f*`` by ``(1 - 1/condition)^2`` per step once that component dominates.
"""

from __future__ import annotations

import math

import torch

from optbench.problems import checks, costs
from optbench.problems.base import Problem, Tensor, resolve_dtype


class Quadratic(Problem):
    """A strongly convex quadratic in ``dim`` dimensions with condition number ``condition``.

    **Spectrum** (fixed by the options): the eigenvalues of ``A`` are log-spaced from
    ``1/condition`` to 1, so ``L = 1`` (the theory's step size ``1/L`` is ``lr=1``) and
    ``mu = 1/condition``. **The seed** draws the rest: a random orthogonal eigenbasis ``Q`` (Haar,
    from the QR factorisation of a Gaussian matrix), the minimizer ``x* ~ N(0, I)`` (so
    ``b = A x*``) and the start ``x0 ~ N(0, I)``.

    **Gradient noise** (the noisy quadratic model): the data are ``n`` rows of noise vectors
    ``z_i = noise * (g_i - mean_j g_j)``, ``g_i ~ N(0, I)``, centred so that they sum to zero. The
    loss over rows ``idx`` is ``1/2 x^T A x - (b + mean_{i in idx} z_i)^T x``, so a minibatch
    gradient is the true gradient plus isotropic noise of scale about ``noise / sqrt(batch)``,
    while the full-batch loss (``idx=None``) is the exact quadratic. With ``noise=0`` every batch
    sees the exact objective.

    **f*** in closed form: ``-1/2 b^T A^{-1} b``, with ``A^{-1}`` from the known eigenbasis, in
    float64.

    >>> p = Quadratic(seed=0, dim=3, condition=100.0)
    >>> p.eigenvalues.tolist()
    [0.01, 0.1, 1.0]
    >>> round(p.optimum, 4), p.n_train
    (-0.0187, 100)
    """

    cost = staticmethod(costs.quadratic)  # torch-free: read before torch loads

    def __init__(
        self,
        seed: int = 0,
        *,
        dim: int = 10,
        condition: float = 100.0,
        noise: float = 0.0,
        n: int = 100,
        dtype: str = "float32",
    ):
        checks.whole("quadratic", "dim", dim, 2)  # two eigenvalues at least: 1/condition and 1
        checks.real("quadratic", "condition", condition, 1.0)
        checks.real("quadratic", "noise", noise, 0.0)
        checks.whole("quadratic", "n", n, 1)
        dt = resolve_dtype(dtype)
        self.eigenvalues = torch.logspace(-math.log10(condition), 0, dim, dtype=torch.float64)
        self.smoothness, self.strong_convexity = 1.0, 1.0 / condition  # L and mu
        gen = torch.Generator().manual_seed(seed)
        basis = random_orthogonal(dim, gen)
        self.solution = torch.randn(dim, generator=gen, dtype=torch.float64)  # x*
        start = torch.randn(dim, generator=gen, dtype=torch.float64)
        g = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        hessian = basis @ torch.diag(self.eigenvalues) @ basis.T
        hessian = (hessian + hessian.T) / 2  # exactly symmetric after rounding
        b = hessian @ self.solution
        inverse_b = basis @ ((basis.T @ b) / self.eigenvalues)  # A^{-1} b through the eigenbasis
        self.optimum = float(-0.5 * b @ inverse_b)
        self.data = {"A": hessian.to(dt), "b": b.to(dt), "z": (noise * (g - g.mean(0))).to(dt)}
        self.params = {"x": start.to(dt).requires_grad_()}
        self.n_train = n

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        x, b = params["x"], data["b"]
        if idx is not None:  # the rows' noise: zero on average over all rows, so skipped for the full loss
            b = b + data["z"][idx].mean(0)
        return 0.5 * x @ (data["A"] @ x) - b @ x


def random_orthogonal(dim: int, gen: torch.Generator) -> Tensor:
    """A Haar-distributed orthogonal matrix (float64): QR of a Gaussian matrix, column signs fixed."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))
