"""f* of ``logreg`` for its common options, computed once and shipped (so no run waits for it).

Keyed by ``(dataset, l2, test_fraction)``; ``logreg`` trains on the same rows for every seed, so
the seed is not part of the key. Each value is the minimum of the full training loss in float64,
found by :func:`optbench.problems.linear_models.logreg_optimum` (Newton's method to a gradient
norm below 1e-10). The tests check every entry against an independent bracket (an L-BFGS point
and strong convexity). Regenerate with
``python -c "from optbench.problems.linear_models import tabulate_logreg_optima as t; print(t())"``.
"""

from __future__ import annotations

OPTIMA: dict[tuple[str, float, float], float] = {
    ("digits", 0.01, 0.2): 0.26746061961143014,
    ("digits", 0.001, 0.2): 0.0840963337521516,
    ("digits", 0.0001, 0.2): 0.02211357788162112,
    ("breast_cancer", 0.01, 0.2): 0.07335397008484534,
    ("breast_cancer", 0.001, 0.2): 0.038226013951892186,
    ("breast_cancer", 0.0001, 0.2): 0.01848989010614793,
}
