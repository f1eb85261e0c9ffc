"""pytest plugin (entry point ``pytest11``), active wherever optbench is installed. Two fixtures:

``optbench_check``: the conformance suite for an optimizer::

    def test_lion_conforms(optbench_check):
        optbench_check("lion", lr=1e-3)

``optbench_regression``: "these cells must stay within this baseline" (made with ``optbench baseline``)::

    def test_lion_has_not_regressed(optbench_regression):
        optbench_regression("benchmarks/lion-baseline.json")

Importing this module imports nothing heavy: torch loads when a fixture is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def optbench_check() -> Callable[..., Any]:
    """:func:`optbench.quality.conformance.check_optimizer`: the conformance checks; fails the test on any failure."""
    from optbench.quality.conformance import check_optimizer

    return check_optimizer


@pytest.fixture
def optbench_regression() -> Callable[..., Any]:
    """Rerun a baseline file's matrix; fail the test with the table of cells if one regressed."""

    def check(path: str | os.PathLike[str]) -> list[Any]:
        from optbench.quality.regression import check_baseline, format_table

        verdicts = check_baseline(path)
        if any(v.failed for v in verdicts):
            pytest.fail(format_table(verdicts), pytrace=False)
        return verdicts

    return check
