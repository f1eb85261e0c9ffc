"""optbench: compare optimizers on problems people understand.

    >>> import optbench
    >>> df = optbench.run(problem="linreg", optimizer="gd", lr=0.1, epochs=100, seed=0)

The public API is imported lazily so that ``import optbench`` (and ``optbench --help``) does not
pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the one version source: pyproject reads it, `optbench --version` prints it
DOCS_URL = "https://optbench.readthedocs.io/"  # pyproject's Documentation URL says the same (a test checks)

_EXPORTS = {
    "run": "optbench.core.runner",
    "prepare": "optbench.core.runner",
    "execute": "optbench.core.runner",
    "load_results": "optbench.results.io",
    "save_results": "optbench.results.io",
    "register_problem": "optbench.registry",
    "register_optimizer": "optbench.registry",
    "list_problems": "optbench.registry",
    "list_optimizers": "optbench.registry",
    "get_problem": "optbench.registry",
    "get_optimizer": "optbench.registry",
    "OptbenchError": "optbench.errors",
    "sweep": "optbench.studies.sweeps",
    "tune": "optbench.studies.search",
    "bench": "optbench.verdicts",
    "Verdict": "optbench.verdicts",
    "Grid": "optbench.settings.grid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'optbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
