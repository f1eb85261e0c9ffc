"""The band a curve is drawn with: per x, the median over runs and its bootstrap interval.

Descriptive, for figures: no test and no verdict is computed here (those are :mod:`optbench.results.stats`,
which a report never imports: a page shows the verdict a study computed). The resampling seed is the one
every bootstrap of optbench uses, so a figure drawn twice is the same figure.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SEED = 0


def median_bands(values: np.ndarray, level: float = 0.95, draws: int = 1000) -> tuple[np.ndarray, ...]:
    """Per row of ``values`` (a row per x point, a column per run; NaN where a run has no point): the
    median over the row and its percentile-bootstrap interval, for curves drawn with a band.

    Runs are resampled as whole curves (the same ``draws`` resamples of the columns at every x, fixed
    seed), vectorised over the rows, where seaborn bootstraps each point on its own (far slower for a
    report of a few thousand points). Rows with fewer runs (runs that stopped early) are resampled among
    the runs they have.

    >>> m, lo, hi = median_bands(np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]))
    >>> m.tolist(), bool((lo <= m).all() and (m <= hi).all()), float(hi[1] - lo[1])
    ([2.0, 4.0], True, 0.0)
    """
    values = np.asarray(values, dtype=float)
    median, low, high = (np.full(len(values), np.nan) for _ in range(3))
    counts = np.sum(~np.isnan(values), axis=1)
    ordered = np.sort(values, axis=1)  # NaN last: a row's first `count` entries are its values
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for m in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == m)
        median[rows] = np.median(ordered[rows, :m], axis=1)
        pick = rng.integers(0, m, size=(draws, m))
        chunk = max(1, 4_000_000 // (draws * m))  # about 32 MB of resamples at a time
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            boot = np.median(ordered[part][:, pick], axis=2)
            low[part], high[part] = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=1, method="lower")
    return median, low, high
