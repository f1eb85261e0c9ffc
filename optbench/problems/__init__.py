"""Problems: data, parameters and a loss. The built-ins are registered by import string in
:mod:`optbench.registry.builtins`; importing this package registers nothing and imports no torch
(what their options cost is torch-free: :mod:`optbench.problems.costs`), so each submodule, and
:class:`~optbench.problems.base.Problem`, is imported the first time it is asked for."""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("classification", "digits", "landscapes", "linear_models", "linreg", "matrix_factorization", "quadratic")

__all__ = ["Problem", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name == "Problem":
        from optbench.problems.base import Problem

        return Problem
    if name in _SUBMODULES:
        return importlib.import_module(f"optbench.problems.{name}")
    raise AttributeError(f"module 'optbench.problems' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
