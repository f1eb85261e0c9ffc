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
    ``element_bytes`` (its dtype's: 4 or 8), ``evaluated``: the most rows its metrics pass over at
    once (a forward over every held-out row), where that can exceed a training batch, and
    ``building``: the elements (8 bytes each) that building its data holds for a while besides the
    data it keeps (the draws it samples from, an index it gathers with), freed before the first step."""

    parameters: int
    data: int
    n_train: int
    per_example: int = 0
    other: int = 0
    element_bytes: int = 4
    evaluated: int = 0
    building: int = 0

    def bytes(self, batch_size: int | None = None) -> int:
        """The most bytes one run holds, building it or at a step of ``batch_size`` rows (None: full
        batch; 0: what it keeps, before any step): every data element at 8 bytes (int64 tokens and
        labels, float64), parameters four times (the values, their gradient and two slots of optimizer
        state), and the larger of what building holds for a while and a step's activations at the
        dtype's size (they never coexist)."""
        kept = 8 * self.data + self.element_bytes * (4 * self.parameters + self.other)
        return kept + max(self.step_bytes(batch_size), 8 * self.building)

    def step_bytes(self, batch_size: int | None = None) -> int:
        """A step's activations at ``batch_size`` rows (None: full batch; 0: no step)."""
        batch = self.n_train if batch_size is None else min(batch_size, self.n_train)
        batch = max(batch, self.evaluated) if batch else 0
        return self.element_bytes * self.per_example * batch


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
    parameters, each block's causal mask, the Markov source's tables (float64 whatever the dtype), a
    step's activations (the widths the forward keeps per token, and each head's block_size x
    block_size attention), and what drawing the sequences holds for a while (:func:`lm_building`)."""
    vocab = TEXT_VOCAB if corpus == "pydoc" else vocab
    e, t = n_embd, block_size
    parameters = vocab * e + t * e + n_layer * (12 * e * e + 13 * e) + 2 * e + e * vocab
    sequences = n_train + (2 if corpus == "pydoc" else 1) * n_val
    states = vocab**order if order * math.log2(max(vocab, 2)) < 62 else 2**62  # never a huge power
    tables = states * vocab if corpus == "markov" else 0  # the table and its cumulative sums
    per_example = t * (n_layer * 16 * e + 3 * vocab) + 3 * n_layer * n_head * t * t
    other = n_layer * t * t + 2 * tables * 8 // element_bytes(dtype)
    building = lm_building(corpus, vocab, states, order, n_train, n_val, t)
    return Cost(parameters, sequences * (t + 1), n_train, per_example, other, element_bytes(dtype), n_val, building)


def lm_building(corpus: str, vocab: int, states: int, order: int, n_train: int, n_val: int, block_size: int) -> int:
    """The elements (8 bytes each) that drawing lm's sequences holds besides the sequences it keeps
    (``states``: the Markov source's, ``vocab ** order``).

    The Markov source (:meth:`optbench.problems.lm.MarkovSource.sample`) draws every sequence at
    once: a float64 uniform per token and one more (``length + 1``) and its int64 output (``length``,
    at least ``order``: the kept sequences are a view of it); then, for a while each, the start
    states' comparison with the stationary CDF (a byte per state) or, at each position, a float64 row
    of the cumulative table (``vocab``), its comparison (a byte per symbol) and about five int64
    counts and states. pydoc windows (:func:`optbench.problems.text.windows`) gather with an int64
    index as large as the windows, plus their offsets; reading the text holds about three words a
    character. Besides, :data:`BUILD_OVERHEAD`: torch's and numpy's first operations.

    Measured peak RSS of building lm above torch imported (``tests/unit/problems/test_lm_memory.py``
    measures it again): markov at its defaults 376 bytes a sequence (1.51 GB at ``n_train=4000000``,
    379 MB at 1,000,000, 8.6 MB at 1), counted here 392 (the 17 kept and 32 more elements); with
    ``vocab=64, order=2`` 4,190 bytes a sequence (the start states' comparison: 432 MB at 100,000),
    counted 4,390; pydoc 279 (15 MB at 1: the text), counted 280.
    """
    length = block_size + 1
    if corpus == "markov":
        total = max(length, order)
        at_once = max(-(-states // 8) + 2, vocab + -(-vocab // 8) + 5)  # the start, or one position
        return (n_train + n_val) * ((total + 1) + (total - length) + at_once) + BUILD_OVERHEAD
    return n_train * (length + 1) + 3 * TEXT_CHARS + BUILD_OVERHEAD


TEXT_CHARS = 500_000  # at least the pydoc text's characters (465,048 on CPython 3.11.7)
BUILD_OVERHEAD = 3 * 2**19  # 12 MiB in elements: what building the smallest lm grows by (8.6 MB measured)
