"""Reports: figures, a summary table and a self-contained HTML page from results tables; animations.

    >>> from optbench.reports import report               # doctest: +SKIP
    >>> report(["sweep.parquet"], "report/")              # doctest: +SKIP

Only the results table flows in: reports never run anything but :func:`animate`, which runs the
optimizers it draws.
"""

from __future__ import annotations

from optbench.reports.report import report

__all__ = ["animate", "report"]


def __getattr__(name: str):  # animate pulls in matplotlib.animation: load it on use
    if name == "animate":
        from optbench.reports.animate import animate

        return animate
    raise AttributeError(name)
