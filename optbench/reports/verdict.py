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
) -> str:
    """``headline``: one sentence per candidate and baseline; ``tally``: wins / ties / losses;
    ``comparisons``: (problem, candidate, baseline, the comparison in words); ``provenance``: where it ran."""
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
        + f'<p class="method">{esc(method)}</p>'
        + f'<p class="meta provenance">Ran on: {esc(provenance)}</p></section>'
    )
