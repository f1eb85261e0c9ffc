"""Real data sets that scikit-learn ships inside its wheel: read from disk, never downloaded.

scikit-learn is imported on first use (it takes a second), and each data set is read once per
process. The seed never changes the data themselves: it only chooses which rows are held out
(:func:`split`), so the training rows of every seed are rows of the same matrix.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from optbench.errors import InvalidValueError

Tensor = torch.Tensor
LOADERS = {"digits": "load_digits", "breast_cancer": "load_breast_cancer", "diabetes": "load_diabetes"}


@functools.cache
def _arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets  # lazily: scikit-learn is only needed by the problems on real data

    x, y = getattr(datasets, LOADERS[name])(return_X_y=True)
    return x, y


def load(name: str) -> tuple[Tensor, Tensor]:
    """Fresh float64 features ``(n, d)`` and targets (int64 labels, or float64 for ``diabetes``).

    >>> x, y = load("digits")
    >>> tuple(x.shape), x.dtype, y.dtype, int(y.max()) + 1
    ((1797, 64), torch.float64, torch.int64, 10)
    """
    x, y = _arrays(name)
    return torch.tensor(x, dtype=torch.float64), torch.tensor(y)  # copies: callers may not touch the cache


def standardize(x: Tensor) -> Tensor:
    """Each column to mean 0 and standard deviation 1 (a constant column stays at 0).

    The statistics are those of the whole data set, not of one seed's training rows, so that every
    seed sees the same numbers; the held-out rows' share in the scaling is the usual benchmark
    shortcut, harmless for comparing optimizers.
    """
    std = x.std(0)
    return (x - x.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))


def split(n: int, test_fraction: float, gen: torch.Generator, problem: str) -> tuple[Tensor, Tensor]:
    """Training and test row indices: a permutation of ``range(n)`` drawn from ``gen``, its first
    ``round(n * test_fraction)`` rows held out. The sizes depend on ``n`` and ``test_fraction`` only."""
    number = isinstance(test_fraction, int | float) and not isinstance(test_fraction, bool)
    n_test = round(n * test_fraction) if number and 0 < test_fraction < 1 else 0
    if not 1 <= n_test < n:
        raise InvalidValueError(
            f"{problem} test_fraction={test_fraction!r} is out of range; expected a number in (0, 1) "
            f"that leaves rows on both sides of the {n} rows"
        )
    order = torch.randperm(n, generator=gen)
    return order[n_test:], order[:n_test]


def carve(train: Tensor, val_fraction: float, problem: str) -> tuple[Tensor, Tensor]:
    """A validation split out of the training rows: the last ``round(len(train) * val_fraction)`` of
    them (``train`` is already a random order), so the test rows are never touched and
    ``val_fraction = 0`` leaves the training rows as they were. Returns (train, validation)."""
    number = isinstance(val_fraction, int | float) and not isinstance(val_fraction, bool)
    if not number or not 0 <= val_fraction < 1:
        raise InvalidValueError(f"{problem} val_fraction={val_fraction!r} is out of range; expected a number in [0, 1)")
    n_val = round(len(train) * val_fraction)
    if n_val >= len(train) or (val_fraction > 0 and n_val < 1):
        raise InvalidValueError(f"{problem} val_fraction={val_fraction!r} leaves no training or validation rows")
    return (train[: len(train) - n_val], train[len(train) - n_val :]) if n_val else (train, train[:0])
