"""The statistics behind a verdict: bootstrap intervals, a paired test over seeds, Holm's correction.

Everything is deterministic (the bootstrap draws from a fixed seed), so the same results give the
same leaderboard.

>>> round(median_interval([1.0, 2.0, 3.0, 4.0, 100.0])[0], 3)
3.0
>>> holm([0.01, 0.04, 0.03])
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optbench.results.bands import BOOTSTRAP_SEED, median_bands  # noqa: F401 (re-exported)

BOOTSTRAP_DRAWS = 10_000
ALPHA = 0.05


def median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Median and its percentile-bootstrap interval (``BOOTSTRAP_DRAWS`` resamples, fixed seed).

    Non-finite values (a diverged run: inf) are kept: they sort last, so the median of a set with
    a few diverged runs stays finite while the interval's top end may become inf.
    """
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = np.median(x[rng.integers(0, len(x), size=(BOOTSTRAP_DRAWS, len(x)))], axis=1)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], method="lower")
    return float(np.median(x)), float(low), float(high)


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value for paired samples (same seeds); 1.0 when a == b.

    Exact where scipy can be (small samples, no ties); infinite values (diverged runs) are ranked as
    the largest differences by replacing them with a value beyond every finite one.
    """
    from scipy.stats import wilcoxon

    x, y = _finite_ranked(np.asarray(a, float), np.asarray(b, float))
    diff = x - y
    if not np.any(diff != 0):
        return 1.0
    if np.count_nonzero(diff) <= EXACT_SEEDS:
        return signed_rank_p(diff, "two-sided")
    return float(wilcoxon(x, y, zero_method="wilcox", alternative="two-sided").pvalue)


EXACT_SEEDS = 16  # up to this many non-zero differences, the signed-rank null is enumerated (2^16 sign patterns)


def signed_rank_p(d: Sequence[float], alternative: str) -> float:
    """The exact Wilcoxon signed-rank p of differences ``d`` (zeros dropped, ties at their average rank)
    by enumerating every sign pattern: what scipy computes exactly or by its exact permutation test,
    at a fraction of the cost (a bench runs hundreds of them).

    >>> signed_rank_p([1.0] * 10, "greater"), signed_rank_p([1.0, -2.0, 3.0], "two-sided")
    (0.0009765625, 0.75)
    """
    from scipy.stats import rankdata

    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    ranks = rankdata(np.abs(d))
    observed = float(ranks[d > 0].sum())
    null = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) @ ranks
    tol = 1e-9 * max(1.0, observed)
    greater, less = float(np.mean(null >= observed - tol)), float(np.mean(null <= observed + tol))
    if alternative == "greater":
        return greater
    if alternative == "less":
        return less
    return min(1.0, 2 * min(greater, less))


def log_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """:func:`paired_p_value` on log objectives: the ratio scale the effect size uses. Objectives span
    decades, so on raw differences one seed's large gap outweighs nine seeds' consistent 3x; on logs
    every seed's ratio counts alike. Objectives are floored (> 0); a diverged run (inf) stays largest."""
    return paired_p_value(_log(a), _log(b))


def _log(values: Sequence[float]) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(values, dtype=float))


def smallest_p(seeds: int, comparisons: int) -> float:
    """The smallest Holm-adjusted p a paired signed-rank test can give: every seed the same way has
    exact p = 2 / 2^seeds, and Holm multiplies the smallest of ``comparisons`` p-values by their count.

    >>> smallest_p(10, 5), smallest_p(6, 2)
    (0.009765625, 0.0625)
    """
    return min(1.0, comparisons * 2.0 / 2.0**seeds)


def minimum_seeds(comparisons: int, alpha: float = ALPHA) -> int:
    """The fewest paired seeds whose smallest adjusted p (:func:`smallest_p`) is below ``alpha``.

    >>> minimum_seeds(5), minimum_seeds(2)
    (8, 7)
    """
    seeds = 1
    while smallest_p(seeds, comparisons) >= alpha:
        seeds += 1
    return seeds


@dataclass(frozen=True)
class Effect:
    """How much and how often: the median over seeds of candidate/baseline (< 1: the candidate's final
    is lower) with its 95% bootstrap interval, and on how many of the paired seeds the candidate was better."""

    ratio: float
    low: float
    high: float
    better_seeds: int
    seeds: int


def paired_ratio(candidate: Sequence[float], baseline: Sequence[float]) -> Effect:
    """The :class:`Effect` of paired final objectives (floored, so > 0; a diverged run is inf).

    Per seed the ratio is candidate / baseline; both diverged counts as 1, only the candidate as
    inf, only the baseline as 0, so a diverged run is a loss, never a missing seed.

    >>> e = paired_ratio([1.0, 2.0, 3.0, float("inf")], [2.0, 2.0, 1.0, float("inf")])
    >>> e.ratio, e.better_seeds, e.seeds
    (1.0, 1, 4)
    """
    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    median, low, high = median_interval(paired_ratios(c, b).tolist())
    return Effect(median, low, high, int(np.sum(c < b)), len(c))


def paired_ratios(candidate: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    """Per seed, candidate / baseline of paired final objectives; both diverged (inf) is 1, only the
    candidate inf, only the baseline 0 (what :func:`paired_ratio` summarizes and the paired figure draws).

    >>> paired_ratios([1.0, float("inf"), float("inf")], [2.0, 1.0, float("inf")]).tolist()
    [0.5, inf, 1.0]
    """
    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isinf(c) & np.isinf(b), 1.0, c / b)


def log_ratios(candidate: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    """Per seed, log(candidate / baseline) (:func:`paired_ratios`): both diverged is 0, only the candidate
    +inf, only the baseline -inf."""
    with np.errstate(divide="ignore"):
        return np.log(paired_ratios(candidate, baseline))


def equivalence_p(candidate: Sequence[float], baseline: Sequence[float], margin: float) -> float:
    """Two one-sided Wilcoxon signed-rank tests (TOST) that the paired log ratio lies within
    (-log margin, log margin): the larger one-sided p. Small p: equivalent within ``margin`` (a ratio
    >= 1). Identical runs on 10 seeds give 2^-10; a diverged side counts as beyond any margin.

    >>> equivalence_p([1.0] * 10, [1.0] * 10, 1.1)
    0.0009765625
    >>> equivalence_p([2.0] * 10, [1.0] * 10, 1.1)
    1.0
    """
    from scipy.stats import wilcoxon

    d = log_ratios(candidate, baseline)
    if not len(d) or margin <= 1:
        return 1.0
    delta = math.log(margin)
    finite = d[np.isfinite(d)]
    big = (float(np.abs(finite).max()) if len(finite) else 0.0) * 10 + 10 * delta + 1
    d = np.clip(d, -big, big)
    ps = []
    for shifted, side in ((d + delta, "greater"), (d - delta, "less")):
        if np.all(shifted == 0):
            return 1.0
        if np.count_nonzero(shifted) <= EXACT_SEEDS:
            ps.append(signed_rank_p(shifted, side))
        else:
            ps.append(float(wilcoxon(shifted, zero_method="wilcox", alternative=side).pvalue))
    return max(ps)


def study_interval(groups: Sequence[Sequence[float]], level: float = 0.95, draws: int = 4000) -> tuple[float, ...]:
    """The median over studies of each study's median, and its percentile interval from a two-level
    bootstrap (studies resampled, then each one's values): the interval includes how much the answer
    moves from one tuning study to the next. One study: :func:`median_interval` of its values.

    >>> [round(v, 3) for v in study_interval([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]])]
    [3.0, 1.0, 5.0]
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return math.nan, math.nan, math.nan
    if len(groups) == 1:
        return median_interval(groups[0].tolist(), level)
    point = float(np.median([np.median(g) for g in groups]))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    pick = rng.integers(0, len(groups), size=(draws, len(groups)))
    medians = np.empty((len(groups), draws))
    for i, g in enumerate(groups):  # each study's bootstrap medians, drawn once
        medians[i] = np.median(g[rng.integers(0, len(g), size=(draws, len(g)))], axis=1)
    boot = np.median(medians[pick, np.arange(draws)[:, None]], axis=1)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method="lower")
    return point, float(low), float(high)


def _finite_ranked(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate([x, y])
    finite = both[np.isfinite(both)]
    big = (np.abs(finite).max() if len(finite) else 1.0) * 10 + 1
    return np.where(np.isfinite(x), x, big), np.where(np.isfinite(y), y, big)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return [round(float(v), 12) for v in adjusted]


@dataclass(frozen=True)
class Verdict:
    word: str  # "better", "worse" or "no significant difference"
    p_value: float  # Holm-adjusted
    median_difference: float  # candidate minus baseline, paired by seed


def verdict(candidate: Sequence[float], baseline: Sequence[float], adjusted_p: float, lower_is_better: bool) -> Verdict:
    """The word for a paired comparison, given its adjusted p-value."""
    with np.errstate(invalid="ignore"):  # both diverged: inf - inf is nan, a tie below (no warning printed)
        diff = np.asarray(candidate, float) - np.asarray(baseline, float)
    finite = diff[np.isfinite(diff)]
    median = float(np.median(finite)) if len(finite) else math.nan
    if adjusted_p >= ALPHA or not np.any(diff != 0):
        return Verdict("no significant difference", adjusted_p, median)
    # the direction as the test sees it: the sign of the signed-rank sum (diverged runs ranked largest)
    from scipy.stats import rankdata

    x, y = _finite_ranked(np.asarray(candidate, float), np.asarray(baseline, float))
    d = (x - y)[x != y]
    lower = float(np.sum(np.sign(d) * rankdata(np.abs(d)))) < 0
    better = lower if lower_is_better else not lower
    return Verdict("better" if better else "worse", adjusted_p, median)


def log_verdict(candidate: Sequence[float], baseline: Sequence[float], adjusted_p: float) -> Verdict:
    """:func:`verdict` on log objectives (lower is better), the scale :func:`log_p_value` tests on."""
    return verdict(_log(candidate), _log(baseline), adjusted_p, lower_is_better=True)
