"""Problems: data, parameters and a loss. Importing this package registers the built-ins."""

from optbench.registry import registering_from

with registering_from("built-in"):  # whichever import reaches this package first
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
