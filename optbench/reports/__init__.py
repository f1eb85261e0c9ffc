"""Reports: figures, a summary table and a self-contained HTML page from results tables; animations.

    >>> from optbench.reports import animate, report
    >>> report(["sweep.parquet"], "report/")                       # doctest: +SKIP
    >>> from optbench.studies.replay import race
    >>> anim = animate(race("linreg", "gd", epochs=40))             # doctest: +SKIP

Only the results table flows into :func:`report`; :func:`animate` draws the runs a study trained
(:mod:`optbench.studies.replay`): nothing here trains.
:func:`style` (and :func:`color`) give an optimizer's look, the same in every figure and animation.
Nothing imported here pulls in seaborn (and with it scipy, a second): only ``report()`` needs it.
"""

from optbench.reports.animation import animate
from optbench.reports.movie import save
from optbench.reports.report import report
from optbench.reports.styles import color, style

__all__ = ["animate", "color", "report", "save", "style"]
