"""Small neural networks on the 8x8 handwritten digits: non-convex, fast, with a test accuracy to read.

The data are scikit-learn's copy of the UCI digits (1,797 images of 8x8 pixels, 10 classes),
pixel values scaled from 0..16 to 0..1, with a seeded test split (``test_fraction``, 0.2: 1,438
training and 359 test images). The network is a ``torch.nn`` module, a skeleton shared by every
seed; its weights are ``params``, initialised by torch's defaults under the seed and evaluated
with ``torch.func.functional_call``, so K seeds vmap together. Records ``test_loss`` and
``test_accuracy``; the optimum is not known.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from optbench.problems import checks, costs, datasets
from optbench.problems.base import Problem, Tensor, resolve_dtype

ROWS = costs.DIGITS_ROWS


class DigitsNet(Problem):
    """Cross-entropy of a network on the digits; subclasses choose the network."""

    name: str
    records_run_by_run = True  # stacked: the full-data loss and test metrics a run at a time (3x faster than vmap)

    def _setup(self, seed: int, test_fraction: float, dtype: str, network: Callable[[], nn.Module]) -> None:
        dt = resolve_dtype(dtype)
        x, y = datasets.load("digits")
        train, test = datasets.split(len(y), test_fraction, torch.Generator().manual_seed(seed), self.name)
        x = x / 16  # pixels from 0..16 to 0..1
        self.data = {"x": x[train].to(dt), "y": y[train], "x_test": x[test].to(dt), "y_test": y[test]}
        with torch.random.fork_rng(devices=[]):  # initialisation from the seed, global RNG untouched
            torch.manual_seed(seed)
            self.model = network().to(dt)
        self.params = dict(self.model.named_parameters())  # the module's own leaves: it stays in sync
        self.n_train = len(train)

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        x, y = (data["x"], data["y"]) if idx is None else (data["x"][idx], data["y"][idx])
        return F.cross_entropy(functional_call(self.model, params, (x,)), y)

    def metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = functional_call(self.model, params, (data["x_test"],))
        return {
            "test_loss": F.cross_entropy(logits, data["y_test"]),
            "test_accuracy": (logits.argmax(-1) == data["y_test"]).to(logits.dtype).mean(),
        }


class DigitsMLP(DigitsNet):
    """64 pixels -> ``hidden`` ReLU units -> 10 classes (4,810 weights with ``hidden=64``).

    >>> p = DigitsMLP(seed=0)
    >>> p.n_train, sum(t.numel() for t in p.parameters())
    (1438, 4810)
    """

    name = "digits-mlp"

    cost = staticmethod(costs.digits_mlp)  # torch-free: read before torch loads

    def __init__(self, seed: int = 0, *, hidden: int = 64, test_fraction: float = 0.2, dtype: str = "float32"):
        checks.whole(self.name, "hidden", hidden, 1)
        self._setup(
            seed, test_fraction, dtype, lambda: nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        )


class DigitsCNN(DigitsNet):
    """Two 3x3 convolutions of ``channels`` and ``2 * channels`` filters, each ReLU then 2x2 max-pooling
    (8x8 -> 4x4 -> 2x2), then a linear layer to 10 classes (1,898 weights with ``channels=8``).

    >>> p = DigitsCNN(seed=0)
    >>> sum(t.numel() for t in p.parameters())
    1898
    """

    name = "digits-cnn"

    cost = staticmethod(costs.digits_cnn)  # torch-free: read before torch loads

    def __init__(self, seed: int = 0, *, channels: int = 8, test_fraction: float = 0.2, dtype: str = "float32"):
        checks.whole(self.name, "channels", channels, 1)
        self._setup(seed, test_fraction, dtype, lambda: cnn(channels))


def cnn(channels: int) -> nn.Module:
    """The digits CNN; it takes rows of 64 pixels and unflattens them to 1x8x8 images itself."""
    return nn.Sequential(
        nn.Unflatten(-1, (1, 8, 8)),
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * 4, 10),
    )
