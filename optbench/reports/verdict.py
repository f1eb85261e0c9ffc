"""The verdict section a bench's page opens with: the answer on the first screen, then its evidence.

Plain data in (the sentences and tables :func:`optbench.studies.bench.page_data` wrote), HTML out; the
words and numbers are the leaderboard's, so the page and leaderboard.md never disagree.

First a heat map, one row per candidate and distinct baseline and a column per problem, each cell the
verdict's colour with its ratio and interval; a sentence per candidate; then the per-problem
comparisons in words, the tally, the tuning, and how it was judged (collapsed where long).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

# A verdict's cell: background and text colour (text contrast >= 4.5:1 on each background).
COLOURS = {
    "better": ("#1a7f37", "#ffffff"),
    "worse": ("#b42318", "#ffffff"),
    "equivalent": ("#dbe4ee", "#1f2328"),
    "inconclusive": ("#f6f8fa", "#57606a"),
    "error": ("#6e5494", "#ffffff"),  # runs raised: no verdict (the reason names the error)
}
OPEN_ROWS = 12  # a comparisons table longer than this starts collapsed


def verdict_html(page: Mapping[str, Any]) -> str:
    """The section from a bench's page data (:func:`optbench.studies.bench.page_data`)."""
    esc = html.escape
    counts = page["tally"].drop(columns=["problems"], errors="ignore").to_html(index=False, border=0, classes="tally")
    rows = "".join(
        f"<tr><td class='text'>{esc(r['problem'])}</td><td class='text'>{esc(r['candidate'])}</td>"
        f"<td class='text'>{esc(r['baseline_name'])}</td><td class='text'>{esc(r['text'])}</td></tr>"
        for r in page["heat"]
    )
    opened = " open" if len(page["heat"]) <= OPEN_ROWS else ""
    return (
        '<section id="verdict">'
        + _heat_map(page["heat"], page["problems"])
        + '<ul class="answer">'
        + "".join(f"<li>{esc(line)}</li>" for line in page["sentences"])
        + "</ul>"
        + "<h2>Verdict</h2><ul>"
        + "".join(f"<li>{esc(line)}</li>" for line in page["headline"])
        + "</ul>"
        + f'<div class="wide">{counts}</div>'
        + f"<details{opened}><summary>Per problem, in words ({len(page['heat'])} comparisons)</summary>"
        + '<div class="wide"><table class="comparisons"><tr><th class="text">problem</th>'
        '<th class="text">candidate</th><th class="text">baseline</th><th class="text">verdict (effect)</th></tr>'
        + rows
        + "</table></div></details>"
        + _tuning_table(page.get("tuning"))
        + f'<p class="method">{esc(page["method"])}</p>'
        + f'<p class="meta provenance">Ran on: {esc(page["provenance"])}</p></section>'
    )


def _heat_map(heat: list[dict[str, Any]], problems: list[str]) -> str:
    """Candidate x baseline rows, problem columns: each cell the verdict (colour and word), the median
    paired ratio candidate/baseline and its interval; a problem's header wraps within the page."""
    esc = html.escape
    pairs = list(dict.fromkeys((r["candidate"], r["baseline_name"]) for r in heat))
    cells = {(r["candidate"], r["baseline_name"], r["problem"]): r for r in heat}
    head = "".join(f'<th class="problem">{esc(p)}</th>' for p in problems)
    body = []
    for candidate, baseline in pairs:
        tds = []
        for problem in problems:
            row = cells.get((candidate, baseline, problem))
            if row is None:
                tds.append("<td></td>")
                continue
            back, ink = COLOURS.get(row["verdict"], COLOURS["inconclusive"])
            ratio = f"{_g(row['ratio'])} [{_g(row['ratio_low'])}, {_g(row['ratio_high'])}]" if row["seeds"] else ""
            tds.append(
                f'<td class="verdict {esc(row["verdict"])}" style="background:{back};color:{ink}" '
                f'title="{esc(row["text"])}"><b>{esc(row["verdict"])}</b><br><small>{esc(ratio)}</small></td>'
            )
        body.append(
            f'<tr><th class="text pair">{esc(candidate)}<br><small>vs {esc(baseline)}</small></th>{"".join(tds)}</tr>'
        )
    legend = " ".join(
        f'<span class="key" style="background:{back};color:{ink}">{word}</span>'
        for word, (back, ink) in COLOURS.items()
    )
    return (
        '<div class="heat"><table class="heat"><tr><th class="text pair">candidate vs baseline</th>'
        + head
        + "</tr>"
        + "".join(body)
        + "</table></div>"
        + f'<p class="meta">Each cell: the verdict; median paired ratio candidate/baseline of the final objective '
        f"(below 1: the candidate ends lower) [95% interval, not corrected for the problems tested; the tests "
        f"are]. {legend}</p>"
    )


def _g(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def _tuning_table(tuning: pd.DataFrame | None) -> str:
    if tuning is None or not len(tuning):
        return ""
    esc = html.escape
    head = "".join(f'<th class="text">{esc(c)}</th>' for c in tuning.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td class='text'>{esc(str(v))}</td>" for v in row) + "</tr>"
        for row in tuning.itertuples(index=False)
    )
    return (
        f"<details><summary>Tuning: each study's chosen setting, trials and how its search ended "
        f'({len(tuning)} rows)</summary><div class="wide"><table class="tuning"><tr>{head}</tr>{rows}</table>'
        "</div></details>"
    )
