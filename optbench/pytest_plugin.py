"""pytest plugin (entry point ``pytest11``): the ``optbench_check`` fixture for your own test suite.

    def test_lion_conforms(optbench_check):
        optbench_check("lion", lr=1e-3)

Importing this module imports nothing heavy: torch loads when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def optbench_check() -> Callable[..., Any]:
    """:func:`optbench.testing.check_optimizer`: runs the conformance checks, fails the test on any failure."""
    from optbench.testing import check_optimizer

    return check_optimizer
