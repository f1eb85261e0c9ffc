"""A bench's page: the view of its verdict (:func:`optbench.studies.bench.page_data`), drawn as it was
handed over; nothing here computes a statistic, so the page cannot disagree with leaderboard.md or the CSVs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any


def write_page(folder: str | Path, page: Mapping[str, Any], jobs: int = 1) -> Path:
    """Write ``folder/report/`` (index.html, its figures and summary.csv) for the bench whose outputs are in
    ``folder`` (its results.parquet), from ``page`` (a leaderboard's ``attrs["bench"]["page"]``), its figures drawn in
    up to ``jobs`` processes (``optbench bench`` passes its ``--jobs``). Returns index.html."""
    from optbench.reports import scaling
    from optbench.reports.figures import paired
    from optbench.reports.report import report
    from optbench.reports.tunability import best_of_k
    from optbench.reports.verdict import verdict_html

    folder = Path(folder)
    preface = verdict_html(page)
    ladder = None
    if scaling.ladders(page["entries"]):  # each candidate's advantage against model size
        sizes = scaling.parameter_counts(page["entries"])
        ladder = partial(scaling.advantage, page["comparisons"], page["entries"], sizes, page["distinct"])
    figures = [partial(paired, page["paired"]), ladder, partial(best_of_k, page["tunability"], page["problems"])]
    return report(
        [folder / "results.parquet"],
        folder / "report",
        problems=page["targets"],
        preface=preface,
        extra=figures,
        title=page["title"],
        cards=page["cards"],
        summary=page["summary"],
        jobs=jobs,
    )
