"""Reports: figures, a summary table and a self-contained HTML page from results tables; animations.

    >>> import optbench
    >>> from optbench.reports import animate, report, save
    >>> from optbench.studies.replay import race
    >>> table = optbench.sweep(problems="linreg", optimizers=["gd", "torch-adam"], lr=[0.1], epochs=20,
    ...                        seeds=range(3), out="sweep.parquet")
    >>> report(["sweep.parquet"], "report/")
    PosixPath('report/index.html')
    >>> save(animate(race("linreg", "gd", epochs=40)), "fit.gif")
    PosixPath('fit.gif')

Only the results table flows into :func:`report`; :func:`animate` draws the runs a study trained
(:mod:`optbench.studies.replay`): nothing here trains.
:func:`style` (and :func:`color`) give an optimizer's look, the same in every figure and animation.
Nothing imported here pulls in seaborn (and with it scipy, a second): only ``report()`` needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from optbench.reports.report import report
from optbench.reports.styles import color, style

# imported when first used: animations need torch, which a figure drawn in a worker process does not
_LAZY = {"animate": "optbench.reports.animation", "save": "optbench.reports.movie"}

__all__ = ["animate", "color", "report", "save", "style"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optbench.reports' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
