"""Problems: data, parameters and a loss. The built-ins are registered by import string in
:mod:`optbench.registry.builtins`; importing this package registers nothing."""

from optbench.problems import (
    classification,
    digits,
    landscapes,
    linear_models,
    linreg,
    matrix_factorization,
    quadratic,
)
from optbench.problems.base import Problem

__all__ = [
    "Problem",
    "classification",
    "digits",
    "landscapes",
    "linear_models",
    "linreg",
    "matrix_factorization",
    "quadratic",
]
