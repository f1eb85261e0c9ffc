"""The built-in problems and optimizers, registered by import string: the one place they are named.

Nothing here imports torch or the classes: a name, its ``module:attribute`` and what the listing
shows are all the registry needs until an entry is first used, when its class is imported (as an
entry point's is). So ``optbench list``, a misspelt name and a misspelt ``--opt`` key of a built-in
(read from the class's source, :mod:`optbench.registry.signatures`) are answered before torch loads.
Adding a built-in is one line here; the module that defines the class registers nothing itself. A
problem's entry also names its cost function (:mod:`optbench.problems.costs`), which is torch-free, so
an oversized request is refused before torch loads too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Builtin:
    """A registration by import string; the fields are :meth:`~optbench.registry.Registry.add`'s."""

    target: str  # "package.module:Class"
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    elementwise: bool | None = None
    space: Mapping[str, str] | None = None  # what a bench tunes: optbench.studies.spaces
    roles: tuple[str, ...] | None = None  # the parameter roles it takes (optbench.problems.base); None: all
    cost: str | None = None  # a problem's "module:function", torch-free: its class's cost (optbench.problems.costs)


def _problem(target: str, cost: str, description: str, **fields: Any) -> Builtin:
    """``optbench.problems.<target>``, whose options cost ``optbench.problems.costs.<cost>`` (torch-free)."""
    return Builtin(f"optbench.problems.{target}", description, cost=f"optbench.problems.costs:{cost}", **fields)


PROBLEMS = {
    "beale": _problem("landscapes:Beale", "landscape", "Beale's function, minimum 0 at (3, 0.5)"),
    "classification": _problem(
        "classification:Classification",
        "classification",
        "Synthetic 2-D multi-class data (blobs, moons, spirals), softmax regression or MLP, cross-entropy",
    ),
    "digits-cnn": _problem(
        "digits:DigitsCNN", "digits_cnn", "A two-layer CNN on the 8x8 digits; records test accuracy"
    ),
    "digits-mlp": _problem(
        "digits:DigitsMLP", "digits_mlp", "A one-hidden-layer ReLU MLP on the 8x8 digits; records test accuracy"
    ),
    "himmelblau": _problem("landscapes:Himmelblau", "landscape", "Himmelblau's function, four minima of value 0"),
    "linreg": _problem(
        "linreg:LinearRegression", "linreg", "Fit a line y = x@a + noise by mean squared error (fast.ai lesson 2)"
    ),
    "lm": _problem(
        "lm:LanguageModel",
        "lm",
        "A small decoder-only transformer on fresh text of a Markov source: next-token cross-entropy, f* known",
        batch_size=32,  # sequences a step (optbench.problems.lm.BATCH_SIZE)
    ),
    "logreg": _problem(
        "linear_models:LogisticRegression",
        "logreg",
        "L2-regularized multinomial logistic regression on the 8x8 digits (or breast cancer); knows f*",
    ),
    "matrix-factorization": _problem(
        "matrix_factorization:MatrixFactorization",
        "matrix_factorization",
        "Fit a low-rank matrix Y by U V^T (non-convex); f* = 0 when rank >= true_rank",
    ),
    "quadratic": _problem(
        "quadratic:Quadratic",
        "quadratic",
        "f(x) = 1/2 x^T A x - b^T x with a chosen condition number and optional gradient noise",
    ),
    "rastrigin": _problem(
        "landscapes:Rastrigin", "landscape", "Rastrigin's function in dim dimensions: a bowl of local minima, 0 at 0"
    ),
    "ridge": _problem("linear_models:Ridge", "ridge", "Ridge regression on the diabetes data; f* in closed form"),
    "rosenbrock": _problem("landscapes:Rosenbrock", "landscape", "Rosenbrock's banana valley, minimum 0 at (1, 1)"),
}


def _torch(cls: str, description: str) -> Builtin:
    """``torch.optim.<cls>`` with torch's own defaults, full batch. Every one updates each element on
    its own (so stacked runs may share it) except LBFGS (dot products, a line search)."""
    return Builtin(f"torch.optim:{cls}", f"torch.optim.{cls}: {description}", elementwise=cls != "LBFGS")


# No built-in declares a search space: each follows optbench.studies.spaces.CONVENTIONAL from its defaults
# (SGD-momentum: lr, momentum; Adam: lr, beta1; AdamW: also weight decay), the rule every plugin gets, so a
# copy of a baseline under another name searches exactly what the baseline does.


# SparseAdam (sparse gradients only) is left out: it cannot run on the built-in problems. Muon takes
# the hidden weight matrices only: alone on problems whose parameters all are, else as a hybrid's
# first part (torch-muon+torch-adamw), as torch's documentation and modded-nanogpt use it.
OPTIMIZERS = {
    "gd": Builtin(
        "optbench.optimizers.gd:GradientDescent",
        "Hand-written full-batch gradient descent, p -= lr * grad (lr 0.1)",
        elementwise=True,
    ),
    "sgd": Builtin(
        "optbench.optimizers.gd:GradientDescent",
        "Hand-written minibatch SGD, p -= lr * grad; batches of 10 reshuffled every epoch (lr 0.1)",
        batch_size=10,
        elementwise=True,
    ),
    "torch-sgd": _torch("SGD", "gradient descent with optional momentum, nesterov, weight decay"),
    "torch-sgd-momentum": Builtin(
        "torch.optim:SGD",
        "torch.optim.SGD with Nesterov momentum 0.9: the strong first-order baseline of careful comparisons",
        defaults={"momentum": 0.9, "nesterov": True},
        elementwise=True,
    ),
    "torch-adam": _torch("Adam", "adaptive moments (Kingma & Ba, 2014)"),
    "torch-adamw": _torch("AdamW", "Adam with decoupled weight decay"),
    "torch-adamax": _torch("Adamax", "Adam with the infinity norm"),
    "torch-nadam": _torch("NAdam", "Adam with Nesterov momentum"),
    "torch-radam": _torch("RAdam", "rectified Adam"),
    "torch-rmsprop": _torch("RMSprop", "scale by a running mean of squared gradients"),
    "torch-adagrad": _torch("Adagrad", "scale by accumulated squared gradients"),
    "torch-adadelta": _torch("Adadelta", "Adagrad with a running window"),
    "torch-rprop": _torch("Rprop", "resilient backpropagation, sign-based steps"),
    "torch-asgd": _torch("ASGD", "averaged stochastic gradient descent"),
    "torch-lbfgs": _torch("LBFGS", "limited-memory BFGS (one step = up to max_iter evaluations)"),
    "torch-muon": Builtin(
        "torch.optim:Muon",
        "torch.optim.Muon: momentum orthogonalised by Newton-Schulz, for hidden 2-D weight matrices "
        "(with another optimizer for the rest: torch-muon+torch-adamw)",
        roles=("matrix",),
    ),
    "torch-adafactor": Builtin(
        "torch.optim:Adafactor",
        "torch.optim.Adafactor: factored second moments for matrices (Shazeer & Stern, 2018)",
    ),
}
