"""The verdict section a bench's page opens with, above the first figure: the answer, then its evidence.

Plain data in (sentences and tables a study wrote), HTML out; the words are the leaderboard's
(:mod:`optbench.studies.verdict`), so the page and leaderboard.md never disagree.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd


def verdict_html(
    headline: Sequence[str],
    method: str,
    tally: pd.DataFrame,
    comparisons: Sequence[tuple[str, str, str, str]],
    provenance: str,
    tuning: pd.DataFrame | None = None,
) -> str:
    """``headline``: one sentence per candidate and baseline; ``tally``: wins / ties / losses;
    ``comparisons``: (problem, candidate, baseline, the comparison in words); ``provenance``: where it ran;
    ``tuning``: per problem and optimizer, each study's chosen setting, trials and how its search ended."""
    esc = html.escape
    counts = tally.drop(columns=["problems"], errors="ignore").to_html(index=False, border=0, classes="tally")
    rows = "".join(
        f"<tr><td class='text'>{esc(p)}</td><td class='text'>{esc(c)}</td><td class='text'>{esc(b)}</td>"
        f"<td class='text'>{esc(text)}</td></tr>"
        for p, c, b, text in comparisons
    )
    return (
        '<section id="verdict"><h2>Verdict</h2>'
        + "<ul>"
        + "".join(f"<li>{esc(line)}</li>" for line in headline)
        + "</ul>"
        + f'<div class="wide">{counts}</div>'
        + '<h3>Per problem</h3><div class="wide"><table class="comparisons"><tr><th class="text">problem</th>'
        '<th class="text">candidate</th><th class="text">baseline</th><th class="text">verdict (effect)</th></tr>'
        + rows
        + "</table></div>"
        + _tuning_table(tuning)
        + f'<p class="method">{esc(method)}</p>'
        + f'<p class="meta provenance">Ran on: {esc(provenance)}</p></section>'
    )


def _tuning_table(tuning: pd.DataFrame | None) -> str:
    if tuning is None or not len(tuning):
        return ""
    esc = html.escape
    head = "".join(f'<th class="text">{esc(c)}</th>' for c in tuning.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td class='text'>{esc(str(v))}</td>" for v in row) + "</tr>"
        for row in tuning.itertuples(index=False)
    )
    return f'<h3>Tuning</h3><div class="wide"><table class="tuning"><tr>{head}</tr>{rows}</table></div>'
