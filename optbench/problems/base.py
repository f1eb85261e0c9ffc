"""The problem contract: what the runner needs from a problem.

A problem is a class registered with :func:`optbench.register_problem`. The runner builds it as
``ProblemClass(seed=seed, **options)``; its keyword-only arguments with defaults are its options
(settable with ``--problem-opt KEY=VALUE``). The instance provides:

- ``n_train`` (int): the number of training examples; batches index ``range(n_train)``.
- ``parameters()``: the tensors to optimize (``requires_grad=True``), initialised from the seed.
- ``loss(idx=None)``: the mean training loss over the rows ``idx`` (a LongTensor), or over the whole
  training set when ``idx`` is None. This is the objective the runner records.
- ``optimum`` (float or None): the minimum of ``loss()`` when it is known in closed form.
- ``metrics()``: extra evaluation numbers as 0-d tensors, e.g. ``{"test_accuracy": ...}``; the
  runner calls it under ``torch.no_grad()`` at each recorded point. Optional.

Data must be a pure function of the seed: build them with a ``torch.Generator`` seeded from it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(name: str) -> torch.dtype:
    from optbench.errors import InvalidValueError

    try:
        return DTYPES[name]
    except KeyError:
        raise InvalidValueError(f"dtype {name!r} is not supported; valid: {', '.join(DTYPES)}") from None


class Problem:
    """Base class with the contract's defaults; subclassing it is optional."""

    n_train: int
    optimum: float | None = None

    def parameters(self) -> Iterator[torch.Tensor]:
        raise NotImplementedError

    def loss(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> dict[str, torch.Tensor]:
        return {}
