"""Regularized linear models on real data: strongly convex, so f* exists and is computed, not guessed.

- ``logreg``: multinomial logistic regression on the 8x8 digits (or the binary breast cancer data);
- ``ridge``: ridge regression on the diabetes data.

Both standardize the features (:func:`optbench.problems.datasets.standardize`), hold out a test
split and record ``test_loss`` (and ``test_accuracy`` for ``logreg``). The parameters are a
``weight`` and a ``bias`` initialised like ``torch.nn.Linear`` (uniform in ``+-1/sqrt(features)``)
from the seed.

f* is exact (float64) for both, but costs differ, and so do the splits:

- ``ridge`` splits by seed and solves its normal equations per instance (a millisecond);
- ``logreg`` holds out the same rows for every seed (a split drawn once, from generator seed 0),
  so f* is a constant of the options: computed once by Newton's method and shipped in
  :mod:`optbench.problems.logreg_optima` for the common options; other options compute it on
  first use (about a second for the digits) and the process caches it. Its seed moves the
  initialisation (and the runner's shuffling), not the training set.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.nn import functional as F

from optbench.problems import checks, costs, datasets
from optbench.problems.base import Problem, Tensor, resolve_dtype
from optbench.problems.logreg_optima import OPTIMA

CLASSIFICATION_SETS = ("digits", "breast_cancer")


def _linear_init(gen: torch.Generator, inputs: int, outputs: int, dt: torch.dtype) -> dict[str, Tensor]:
    """``torch.nn.Linear``'s initialisation, drawn from ``gen``; a weight (outputs, inputs) and a bias."""
    bound = 1 / math.sqrt(inputs)
    weight = torch.empty(outputs, inputs, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
    bias = torch.empty(outputs, dtype=torch.float64).uniform_(-bound, bound, generator=gen)
    return {"weight": weight.to(dt).requires_grad_(), "bias": bias.to(dt).requires_grad_()}


def _rows(x: Tensor, y: Tensor, train: Tensor, test: Tensor, dt: torch.dtype) -> dict[str, Tensor]:
    floating = y.dtype.is_floating_point
    return {
        "x": x[train].to(dt),
        "y": y[train].to(dt) if floating else y[train],
        "x_test": x[test].to(dt),
        "y_test": y[test].to(dt) if floating else y[test],
    }


def _squared_norm(params: dict[str, Tensor]) -> Tensor:
    return sum(p.pow(2).sum() for p in params.values())


# --- logistic regression


LOGREG_SPLIT_SEED = 0  # every seed of logreg trains on the same rows, so f* depends on the options only


def _logreg_rows(
    dataset: str, test_fraction: float, val_fraction: float = 0.0
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Standardized features, labels and the fixed split's training, test and validation rows."""
    x, y = datasets.load(dataset)
    train, test = datasets.split(len(y), test_fraction, torch.Generator().manual_seed(LOGREG_SPLIT_SEED), "logreg")
    train, val = datasets.carve(train, val_fraction, "logreg")
    return datasets.standardize(x), y, train, test, val


class LogisticRegression(Problem):
    """Softmax regression: ``mean cross-entropy(x @ weight.T + bias, y) + l2/2 (|weight|^2 + |bias|^2)``.

    Options: ``dataset`` (``digits``: 1,797 images, 64 features, 10 classes; ``breast_cancer``:
    569 tumours, 30 features, 2 classes, the same softmax model), ``l2`` > 0, ``test_fraction``
    (0.2), ``dtype``. The bias is regularized too: softmax is unchanged when the same number is
    added to every class's bias, and the penalty is what makes the minimizer unique.

    The training rows are the same for every seed (a fixed split); the seed draws the
    initialisation. f*: Newton's method in float64 (:func:`logreg_optimum`), tabulated for
    ``l2`` in {1e-2, 1e-3, 1e-4} at ``test_fraction=0.2`` (:mod:`optbench.problems.logreg_optima`).

    >>> p = LogisticRegression(seed=0)
    >>> p.n_train, p.classes, round(p.optimum, 6)
    (1438, 10, 0.084096)
    """

    cost = staticmethod(costs.logreg)  # torch-free: read before torch loads

    def __init__(
        self,
        seed: int = 0,
        *,
        dataset: str = "digits",
        l2: float = 1e-3,
        test_fraction: float = 0.2,
        val_fraction: float = 0.0,
        dtype: str = "float32",
    ):
        checks.choice("logreg", "dataset", dataset, CLASSIFICATION_SETS)
        self.l2 = checks.real("logreg", "l2", l2, 0.0, above=True)  # > 0: strong convexity
        dt = resolve_dtype(dtype)
        x, y, train, test, val = _logreg_rows(dataset, test_fraction, val_fraction)
        self.classes = int(y.max()) + 1
        self.data = _rows(x, y, train, test, dt)
        if len(val):  # held out from training for choosing settings (f* is over the rows left)
            self.data |= {"x_val": x[val].to(dt), "y_val": y[val]}
        self.params = _linear_init(torch.Generator().manual_seed(seed), x.shape[1], self.classes, dt)
        self.n_train = len(train)
        self._key = (dataset, self.l2, test_fraction, val_fraction)

    @property
    def optimum(self) -> float:
        """f*, from the shipped table, else computed now (and cached for the process)."""
        tabulated = OPTIMA.get(self._key[:3]) if not self._key[3] else None
        return tabulated if tabulated is not None else logreg_optimum(*self._key)

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        x, y = (data["x"], data["y"]) if idx is None else (data["x"][idx], data["y"][idx])
        logits = F.linear(x, params["weight"], params["bias"])
        return F.cross_entropy(logits, y) + self.l2 / 2 * _squared_norm(params)

    def metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for split in ("val", "test") if "x_val" in data else ("test",):
            logits = F.linear(data[f"x_{split}"], params["weight"], params["bias"])
            out[f"{split}_loss"] = F.cross_entropy(logits, data[f"y_{split}"])
            out[f"{split}_accuracy"] = (logits.argmax(-1) == data[f"y_{split}"]).to(logits.dtype).mean()
        return out


@functools.cache
def logreg_optimum(dataset: str, l2: float, test_fraction: float, val_fraction: float = 0.0) -> float:
    """f* of ``logreg`` for these options, computed: Newton's method in float64.

    The weights and biases are one matrix ``W`` (classes, features + 1) acting on ``[x, 1]``. Its
    gradient is ``(P - Y)^T X / n + l2 W`` and its Hessian, over the flattened ``W``, is
    ``(1/n) sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T + l2 I``: (features + 1) x classes = 650
    unknowns for the digits, one 650 x 650 solve per step. From ``W = 0`` a backtracking (Armijo)
    line search keeps every step a descent; near the minimum the full Newton step converges
    quadratically, to a gradient norm below 1e-10 in about ten steps (a second for the digits).
    """
    x, y, train, _, _ = _logreg_rows(dataset, test_fraction, val_fraction)
    x = torch.cat([x[train], torch.ones(len(train), 1, dtype=torch.float64)], dim=1)
    n, d = x.shape
    classes = int(y.max()) + 1
    onehot = F.one_hot(y[train], classes).to(torch.float64)

    def loss(w: Tensor) -> Tensor:
        return F.cross_entropy(x @ w.T, y[train]) + l2 / 2 * w.pow(2).sum()

    w = torch.zeros(classes, d, dtype=torch.float64)
    for _ in range(100):
        p = torch.softmax(x @ w.T, dim=1)
        grad = (p - onehot).T @ x / n + l2 * w
        if grad.norm() < 1e-10:
            break
        z = (p.unsqueeze(2) * x.unsqueeze(1)).reshape(n, classes * d)
        hessian = -(z.T @ z) / n
        blocks = (x.T.unsqueeze(0) * p.T.unsqueeze(1)) @ x / n  # (classes, d, d): X^T diag(p_k) X / n
        hessian.view(classes, d, classes, d).diagonal(dim1=0, dim2=2).add_(blocks.permute(1, 2, 0))
        hessian.diagonal().add_(l2)
        step = torch.cholesky_solve(grad.reshape(-1, 1), torch.linalg.cholesky(hessian)).reshape(classes, d)
        size, before, slope = 1.0, loss(w), (grad * step).sum()
        while loss(w - size * step) > before - 1e-4 * size * slope and size > 1e-10:
            size /= 2
        w = w - size * step
    return float(loss(w))


def tabulate_logreg_optima() -> str:
    """The entries of :data:`optbench.problems.logreg_optima.OPTIMA`, computed afresh, as Python lines."""
    keys = [(dataset, l2, 0.2) for dataset in CLASSIFICATION_SETS for l2 in (1e-2, 1e-3, 1e-4)]
    return "\n".join(f"    {key!r}: {logreg_optimum(*key)!r}," for key in keys)


# --- ridge regression


class Ridge(Problem):
    """Ridge regression: ``1/2 mean (x @ weight.T + bias - y)^2 + l2/2 |weight|^2`` on the diabetes data.

    442 patients, 10 standardized features, the target (disease progression after a year)
    standardized too (so the loss at zero weights is about 1/2). Options: ``l2`` >= 0 (the bias is not
    penalized, as usual for ridge), ``test_fraction`` (0.2), ``dtype``. Records ``test_loss`` (the
    same half mean squared error on the held-out rows, without the penalty).

    f* in closed form: the normal equations ``(X^T X / n + l2 D) theta = X^T y / n`` over
    ``theta = (weight, bias)`` and ``X = [x, 1]``, ``D = diag(1, ..., 1, 0)``, solved in float64.
    """

    cost = staticmethod(costs.ridge)  # torch-free: read before torch loads

    def __init__(self, seed: int = 0, *, l2: float = 1e-2, test_fraction: float = 0.2, dtype: str = "float32"):
        self.l2 = checks.real("ridge", "l2", l2, 0.0)
        dt = resolve_dtype(dtype)
        x, y = datasets.load("diabetes")
        x, y = datasets.standardize(x), datasets.standardize(y.unsqueeze(1)).squeeze(1)
        gen = torch.Generator().manual_seed(seed)
        train, test = datasets.split(len(y), test_fraction, gen, "ridge")
        self.data = _rows(x, y, train, test, dt)
        self.params = _linear_init(gen, x.shape[1], 1, dt)
        self.n_train = len(train)
        self.solution, self.optimum = ridge_solution(x[train], y[train], self.l2)

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        x, y = (data["x"], data["y"]) if idx is None else (data["x"][idx], data["y"][idx])
        residual = F.linear(x, params["weight"], params["bias"]).squeeze(-1) - y
        return residual.pow(2).mean() / 2 + self.l2 / 2 * params["weight"].pow(2).sum()

    def metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        residual = F.linear(data["x_test"], params["weight"], params["bias"]).squeeze(-1) - data["y_test"]
        return {"test_loss": residual.pow(2).mean() / 2}


def ridge_solution(x: Tensor, y: Tensor, l2: float) -> tuple[Tensor, float]:
    """The minimizer ``(weight..., bias)`` and the minimum of the ridge loss, from the normal equations."""
    n, d = x.shape
    design = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], dim=1)
    penalty = torch.diag(torch.cat([torch.full((d,), l2, dtype=x.dtype), torch.zeros(1, dtype=x.dtype)]))
    theta = torch.linalg.solve(design.T @ design / n + penalty, design.T @ y / n)
    return theta, float((design @ theta - y).pow(2).mean() / 2 + l2 / 2 * theta[:d].pow(2).sum())
