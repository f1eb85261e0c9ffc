"""Synthetic multi-class classification with cross-entropy: blobs, two moons or spirals."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from optbench.errors import InvalidValueError
from optbench.problems import costs, datasets
from optbench.problems.base import Problem, resolve_dtype

SHAPES = ("blobs", "moons", "spirals")
MODELS = ("softmax", "mlp")
DEFAULT_NOISE = {"blobs": 1.0, "moons": 0.1, "spirals": 0.2}


def make_data(
    shape: str, n: int, classes: int, noise: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points in 2-D with integer labels, a pure function of ``gen``'s state."""
    labels = torch.arange(n) % classes
    if shape == "blobs":  # class centres evenly spaced on a circle of radius 3
        angle = 2 * math.pi * labels / classes
        centres = 3 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        points = centres + noise * torch.randn(n, 2, generator=gen)
    elif shape == "moons":  # scikit-learn's two interleaving half circles
        t = math.pi * torch.rand(n, generator=gen)
        outer = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        inner = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
        points = torch.where((labels == 0).unsqueeze(1), outer, inner) + noise * torch.randn(n, 2, generator=gen)
    else:  # spirals: one arm per class, radius growing with the angle (CS231n)
        r = torch.rand(n, generator=gen)
        t = 4 * r + 2 * math.pi * labels / classes + noise * torch.randn(n, generator=gen)
        points = 2 * r.unsqueeze(1) * torch.stack([torch.sin(t), torch.cos(t)], dim=1)
    return points, labels


class Classification(Problem):
    """Cross-entropy on synthetic 2-D data with a held-out test split.

    Options: ``shape`` (blobs, moons, spirals), ``n`` points in all, ``classes`` (moons always has 2),
    ``noise`` (default per shape: blobs 1.0, moons 0.1, spirals 0.2), ``test_fraction``, ``model``
    (``softmax`` regression or a one-hidden-layer ``mlp`` of width ``hidden``) and ``dtype``.
    Records ``test_loss`` and ``test_accuracy``; with ``val_fraction`` > 0 that share of the training
    rows is held out as a validation split, recorded as ``val_loss`` and ``val_accuracy`` (what a
    bench's ``select = "validation"`` chooses on). The optimum is not known (``optimum`` is None).
    """

    cost = staticmethod(costs.classification)  # torch-free: read before torch loads

    def __init__(
        self,
        seed: int = 0,
        *,
        shape: str = "blobs",
        n: int = 400,
        classes: int = 3,
        noise: float | None = None,
        test_fraction: float = 0.25,
        val_fraction: float = 0.0,
        model: str = "softmax",
        hidden: int = 32,
        dtype: str = "float32",
    ):
        _choice("shape", shape, SHAPES)
        _choice("model", model, MODELS)
        classes = 2 if shape == "moons" else classes
        if not 2 <= classes <= n // 2:
            raise InvalidValueError(f"classification classes={classes!r} is out of range; expected 2 to n/2")
        if not 0 < test_fraction < 1:
            raise InvalidValueError(f"classification test_fraction={test_fraction!r}: expected a number in (0, 1)")
        n_test = round(n * test_fraction)
        if n_test < 1 or n - n_test < 1:
            raise InvalidValueError(f"classification n={n!r} leaves no training or test data")
        if hidden < 1:
            raise InvalidValueError(f"classification hidden={hidden!r}: expected a whole number >= 1")
        dt = resolve_dtype(dtype)
        gen = torch.Generator().manual_seed(seed)
        noise = DEFAULT_NOISE[shape] if noise is None else noise
        points, labels = make_data(shape, n, classes, noise, gen)
        order = torch.randperm(n, generator=gen)
        train, test = order[n_test:], order[:n_test]
        train, val = datasets.carve(train, val_fraction, "classification")
        self.data = {
            "x": points[train].to(dt),
            "y": labels[train],
            "x_test": points[test].to(dt),
            "y_test": labels[test],
        }
        if len(val):  # held out from training, for choosing settings; the test rows stay unseen
            self.data |= {"x_val": points[val].to(dt), "y_val": labels[val]}
        with torch.random.fork_rng(devices=[]):  # model initialisation from the seed, global RNG untouched
            torch.default_generator.manual_seed(seed)
            if model == "softmax":
                self.model = nn.Linear(2, classes)
            else:
                self.model = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, classes))
        self.model.to(dt)
        self.params = dict(self.model.named_parameters())  # the module's own leaves: it stays in sync
        self.n_train = len(train)
        self.classes = classes

    x = property(lambda self: self.data["x"], doc="Training points, (n_train, 2).")
    y = property(lambda self: self.data["y"], doc="Training labels, (n_train,).")
    x_test = property(lambda self: self.data["x_test"], doc="Test points.")
    y_test = property(lambda self: self.data["y_test"], doc="Test labels.")

    def loss_fn(self, params: dict[str, torch.Tensor], data: dict[str, torch.Tensor], idx=None) -> torch.Tensor:
        x, y = (data["x"], data["y"]) if idx is None else (data["x"][idx], data["y"][idx])
        return nn.functional.cross_entropy(functional_call(self.model, params, (x,)), y)

    def metrics_fn(self, params: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for split in ("val", "test") if "x_val" in data else ("test",):
            logits = functional_call(self.model, params, (data[f"x_{split}"],))
            out[f"{split}_loss"] = nn.functional.cross_entropy(logits, data[f"y_{split}"])
            out[f"{split}_accuracy"] = (logits.argmax(dim=-1) == data[f"y_{split}"]).to(logits.dtype).mean()
        return out

    def predict(self, points: torch.Tensor) -> torch.Tensor:
        """Class predictions at ``points`` with the current parameters (for decision-region plots)."""
        return functional_call(self.model, self.params, (points.to(self.data["x"]),)).argmax(dim=-1)


def _choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        from optbench.errors import did_you_mean

        raise InvalidValueError(
            f"classification {option}={value!r} is not valid{did_you_mean(value, valid)}; valid: {', '.join(valid)}"
        )
