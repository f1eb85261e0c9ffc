"""What the built-in problems' options cost, from the options alone: torch-free, so a command refuses
an oversized request before it imports anything heavy.

Each function here is one built-in problem's ``cost(**options)`` (the problem contract:
:mod:`optbench.problems.base`): its class says ``cost = staticmethod(costs.NAME)``, and its entry in
:mod:`optbench.registry.builtins` names the same function, so the check before torch
(:mod:`optbench.cli.preflight`) and the one before a run is built
(:func:`optbench.settings.validate.memory`) read one estimate. ``tests/unit/problems`` checks each
against the tensors its problem then builds, counted exactly.

The facts a cost needs that the data would otherwise tell (the shapes of the data sets scikit-learn
ships, the size of the pydoc text's alphabet) live here, and the modules that load the data read
them from here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

SHAPES = {"digits": (1797, 64), "breast_cancer": (569, 30), "diabetes": (442, 10)}  # rows, features
CLASSES = {"digits": 10, "breast_cancer": 2}
TEXT_VOCAB = 97  # the pydoc text's tokens: newline, ' ' to '~', and one for every other character
DIGITS_ROWS = SHAPES["digits"][0]


@dataclass(frozen=True)
class Cost:
    """What a problem's options cost, known before it is built: ``parameters`` and ``data`` elements
    (``params`` and ``data`` as built), ``n_train`` rows, ``per_example`` elements a forward and
    backward pass hold for one row (activations), ``other`` elements it builds besides (buffers),
    ``element_bytes`` (its dtype's: 4 or 8), and ``evaluated``: the most rows its metrics pass over at
    once (a forward over every held-out row), where that can exceed a training batch."""

    parameters: int
    data: int
    n_train: int
    per_example: int = 0
    other: int = 0
    element_bytes: int = 4
    evaluated: int = 0

    def bytes(self, batch_size: int | None = None) -> int:
        """Bytes one run holds at a step of ``batch_size`` rows (None: full batch): every data element
        at 8 bytes (int64 tokens and labels, float64), parameters four times (the values, their
        gradient and two slots of optimizer state) and a step's activations at the dtype's size."""
        batch = self.n_train if batch_size is None else min(batch_size, self.n_train)
        batch = max(batch, self.evaluated) if batch else 0  # 0: what is held before any step
        return 8 * self.data + self.element_bytes * (4 * self.parameters + self.other + self.per_example * batch)


def element_bytes(dtype: str) -> int:
    return 8 if dtype == "float64" else 4


def linreg(*, n: int, dtype: str, **_: object) -> Cost:
    return Cost(parameters=2, data=3 * n, n_train=n, per_example=4, element_bytes=element_bytes(dtype))


def quadratic(*, dim: int, n: int, dtype: str, **_: object) -> Cost:
    return Cost(
        dim, dim * dim + dim + n * dim, n, per_example=2 * dim, other=dim * dim, element_bytes=element_bytes(dtype)
    )


def classification(*, shape: str, n: int, classes: int, model: str, hidden: int, dtype: str, **_: object) -> Cost:
    classes = 2 if shape == "moons" else classes
    widths = [2, classes] if model == "softmax" else [2, hidden, classes]
    parameters = sum(a * b + b for a, b in itertools.pairwise(widths))
    return Cost(parameters, 3 * n, n, per_example=2 * sum(widths), element_bytes=element_bytes(dtype))


def digits_mlp(*, hidden: int, dtype: str, **_: object) -> Cost:
    parameters = 64 * hidden + hidden + hidden * 10 + 10
    return Cost(parameters, DIGITS_ROWS * 65, DIGITS_ROWS, 2 * (hidden + 10), element_bytes=element_bytes(dtype))


def digits_cnn(*, channels: int, dtype: str, **_: object) -> Cost:
    c = channels
    parameters = (9 * c + c) + (9 * c * 2 * c + 2 * c) + (2 * c * 4 * 10 + 10)
    per_example = 2 * (64 + 3 * 64 * c + 3 * 16 * 2 * c + 10)  # the images, each layer's outputs
    return Cost(parameters, DIGITS_ROWS * 65, DIGITS_ROWS, per_example, element_bytes=element_bytes(dtype))


def logreg(*, dataset: str, dtype: str, **_: object) -> Cost:
    rows, features = SHAPES[dataset]
    classes = CLASSES[dataset]
    return Cost(
        features * classes + classes, rows * (features + 1), rows, 2 * classes, element_bytes=element_bytes(dtype)
    )


def ridge(*, dtype: str, **_: object) -> Cost:
    rows, features = SHAPES["diabetes"]
    return Cost(features + 1, rows * (features + 1), rows, 2, element_bytes=element_bytes(dtype))


def matrix_factorization(*, rows: int, cols: int, true_rank: int, rank: int, dtype: str, **_: object) -> Cost:
    built = (rows + cols) * true_rank  # the factors of Y, drawn in float64
    return Cost((rows + cols) * rank, rows * cols, rows, 2 * cols, other=2 * built, element_bytes=element_bytes(dtype))


def landscape(*, dtype: str, dim: int = 2, **_: object) -> Cost:
    """The test functions (Rosenbrock, Beale, Himmelblau: two dimensions; Rastrigin: ``dim``)."""
    return Cost(parameters=dim, data=0, n_train=1, per_example=2 * dim, element_bytes=element_bytes(dtype))


def lm(
    *,
    corpus: str,
    vocab: int,
    order: int,
    n_train: int,
    n_val: int,
    block_size: int,
    n_layer: int,
    n_head: int,
    n_embd: int,
    dtype: str,
    **_: object,
) -> Cost:
    """What these options build and train: sequences of ``block_size + 1`` tokens, the GPT's
    parameters, each block's causal mask, and a step's activations (the widths the forward keeps
    per token, and each head's block_size x block_size attention)."""
    vocab = TEXT_VOCAB if corpus == "pydoc" else vocab
    e, t = n_embd, block_size
    parameters = vocab * e + t * e + n_layer * (12 * e * e + 13 * e) + 2 * e + e * vocab
    sequences = n_train + (2 if corpus == "pydoc" else 1) * n_val
    states = vocab**order if order * math.log2(max(vocab, 2)) < 62 else 2**62  # never a huge power
    tables = states * vocab if corpus == "markov" else 0  # the source's, in float64
    per_example = t * (n_layer * 16 * e + 3 * vocab) + 3 * n_layer * n_head * t * t
    other = n_layer * t * t + 2 * tables
    return Cost(parameters, sequences * (t + 1), n_train, per_example, other, element_bytes(dtype), n_val)
