"""``optbench.bench(...)``: a bench's verdict in Python, as tables, with no file written unless asked.

A thin skin over :func:`optbench.studies.bench.bench`, the protocol that ``optbench bench`` runs, and
(with ``out`` and ``report``) :func:`optbench.reports.bench_page.write_page`, the page that views its
verdict: like the CLI, it sits above the studies and the reports. It only names what the study returns,
so a notebook reads ``verdict.comparisons`` rather than ``board.attrs["bench"]["comparisons"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.studies.suite import Suite, load_suite


@dataclass(frozen=True)
class Verdict:
    """What a bench answers: every run, the leaderboard and the comparisons, and their Markdown.

    ``results`` holds every run (the tidy table of :func:`optbench.run`, one row per recorded point);
    ``leaderboard`` one row per problem x optimizer (``leaderboard.csv``); ``comparisons`` one row per
    candidate x baseline x problem with its verdict (``comparisons.csv``); ``markdown`` is
    ``leaderboard.md``, the answer first, as ``optbench bench`` prints it. ``str(verdict)`` is that text.
    """

    results: pd.DataFrame
    leaderboard: pd.DataFrame
    comparisons: pd.DataFrame
    markdown: str

    def __str__(self) -> str:
        return self.markdown


def bench(
    optimizers: str | Sequence[str],
    *,
    baselines: str | Sequence[str] | None = None,
    suite: str | Path | Suite = "quick",
    out: str | Path | None = None,
    report: bool = True,
    allow_import_paths: bool = False,
    **options: Any,
) -> Verdict:
    """Judge ``optimizers`` against ``baselines`` over ``suite`` by the fair protocol of ``optbench bench``.

    ``optimizers`` and ``baselines`` are registered names, import paths or hybrids (a string or a
    list); ``baselines`` defaults to the suite's own, else ``torch-sgd-momentum``, ``torch-adam`` and
    ``torch-adamw``. ``suite`` is ``"quick"``, ``"standard"``, ``"lm"``, a suite ``.toml`` file or a
    :class:`~optbench.studies.suite.Suite`. Nothing is written unless ``out`` names a folder: then it
    receives what ``optbench bench --out`` writes (``leaderboard.md``, the CSVs, ``results.parquet``,
    ``runs/`` to resume from and, with ``report``, ``report/index.html``). ``options`` are those of
    :func:`optbench.sweep`: ``device``, ``jobs``, ``executor``, ``scheduler``, ``progress``.

    In a notebook::

        verdict = optbench.bench("torch-nadam", suite="quick")
        verdict.comparisons[["candidate", "baseline", "problem", "verdict", "ratio"]]
    """
    from optbench.registry import canonical_name
    from optbench.studies.bench import DEFAULT_BASELINES, to_markdown
    from optbench.studies.bench import bench as run_bench
    from optbench.studies.board import attached

    if not isinstance(suite, Suite):
        suite = load_suite(str(suite), allow_import_paths=allow_import_paths)
    candidates = [canonical_name(n) for n in _names(optimizers)]
    against = [canonical_name(n) for n in _names(baselines) or suite.baselines or DEFAULT_BASELINES]
    results, board = run_bench(candidates, against, suite, out, **options)
    if out is not None and report:  # the page: a view of the verdict the study handed over
        from optbench.reports.bench_page import write_page

        write_page(out, attached(board)["page"], jobs=int(options.get("jobs", 1) or 1))
    return Verdict(results, board, attached(board)["comparisons"], to_markdown(board, suite, candidates, against))


def _names(names: str | Sequence[str] | None) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or None as a list of names."""
    if names is None:
        return []
    listed = names.split(",") if isinstance(names, str) else list(names)
    return [n.strip() for n in listed if n.strip()]
