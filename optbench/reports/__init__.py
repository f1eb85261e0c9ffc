"""Reports: figures, a summary table and a self-contained HTML page from results tables; animations.

    >>> from optbench.reports import animate, report
    >>> report(["sweep.parquet"], "report/")                       # doctest: +SKIP
    >>> anim = animate("linreg", "gd", epochs=40)                   # doctest: +SKIP

Only the results table flows into :func:`report`; :func:`animate` runs the optimizers it draws.
"""

from optbench.reports.animation import animate, save
from optbench.reports.report import report

__all__ = ["animate", "report", "save"]
