"""One self-contained index.html: every image embedded, inline CSS, no script, no network.

The page is ordered by what a reader came for: each optimizer's best setting and final value, the
main figure, then the other figures, then the long tables (collapsed when long). A wide table
scrolls inside its own box; the page itself never scrolls sideways.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from optbench.reports.movie import description
from optbench.reports.styles import color
from optbench.results.outcomes import shown

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif", ".mp4": "video/mp4"}
OPEN_ROWS = 25  # a summary longer than this starts collapsed
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin: 0 0 0.2rem; } h2 { margin: 1.6rem 0 0.4rem; } #best h2 { margin-top: 0.8rem; }
.meta { color: #666; margin-top: 0; overflow-wrap: anywhere; } nav a { margin-right: 1rem; }
figure { margin: 1.2rem 0; } figure img, figure video { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92rem; max-width: 62rem; }
.wide { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: #f5f5f5; } td.text, th.text { text-align: left; }
.cards { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
.card { flex: 0 1 auto; max-width: 100%; }
.card h3 { font-size: 0.95rem; margin: 0.6rem 0 0; } .card table { margin: 0.3rem 0; }
.card th { white-space: normal; vertical-align: bottom; } .card th:nth-child(n+3) { max-width: 6.5rem; }
.card td:nth-child(2) { white-space: normal; min-width: 8rem; max-width: 17rem; }
.card td:nth-child(4) { white-space: normal; }
#best p { margin: 0.3rem 0; }
.nowrap { white-space: nowrap; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em; border-radius: 2px; }
table.settings td, table.settings th { text-align: left; }
table.settings td:last-child { white-space: normal; min-width: 20rem; }
table.summary td:nth-child(-n+3) { text-align: left; }
table.summary { width: 100%; } table.summary th, table.summary td { white-space: normal; overflow-wrap: anywhere; }
table.comparisons td:last-child { white-space: normal; min-width: 24rem; }
table.tuning { width: 100%; } table.tuning td, table.tuning th { white-space: normal; overflow-wrap: anywhere; }
details > summary { cursor: pointer; color: #0a58ca; margin: 0.4rem 0; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5rem 0.8rem; }
.heat { max-width: 100%; overflow-x: auto; } table.heat { table-layout: fixed; width: 100%; margin-top: 0.8rem; }
table.heat th, table.heat td { white-space: normal; text-align: center; overflow-wrap: anywhere; font-size: 0.8rem; }
table.heat th.pair { text-align: left; width: 11rem; } table.heat td { padding: 0.3rem 0.2rem; }
ul.answer { font-size: 1.05rem; margin: 0.6rem 0; } ul.answer li { margin: 0.2rem 0; }
.key { padding: 0 0.4rem; border-radius: 3px; margin-right: 0.3rem; }
"""


def _number(value: float) -> str:
    return "never" if value == math.inf else f"{value:.4g}"


def data_uri(path: Path) -> str:
    return f"data:{MIME[path.suffix.lower()]};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _best_block(best: pd.DataFrame, target_text: str, curse: str, judged: bool = False) -> str:
    """A card per problem, each as wide as its table (side by side where two fit, else stacked, so no
    column is ever cut off): a row per optimizer with its best
    setting, final value (median, and min to max over seeds) and how many runs reached the target."""
    cards = []
    spread_head = "95% interval (bootstrap)" if judged else "min &ndash; max over seeds"
    for problem, part in best.groupby("problem", sort=not judged):
        measure = "<span class=nowrap>loss - f*</span>" if part["has_optimum"].iloc[0] else "loss"
        rows = [
            "<tr><th class='text'>optimizer</th><th class='text'>best setting</th>"
            f"<th>final {measure} (median)</th><th>{spread_head}</th><th>reached target</th></tr>"
        ]
        for r in part.itertuples():
            final = html.escape(shown(r.final, r.resolution))
            if r.diverged:  # in the cell itself: a column of its own was cut off at 1,280 px
                final += f" ({r.diverged}/{r.seeds} diverged)"
            spread = (
                "-"
                if r.seeds < 2 or (r.low == math.inf and not judged)
                else f"{html.escape(shown(r.low, r.resolution))} &ndash; {html.escape(shown(r.high, r.resolution))}"
            )
            setting = html.escape(r.setting)
            if r.edge:
                setting += f' <span class="edge">({html.escape(r.edge)}: grid edge)</span>'
            rows.append(
                "<tr>"
                f"<td class='text'><span class='swatch' style='background:{color(r.optimizer)}'></span>"
                f"{html.escape(r.optimizer)}</td><td class='text'>{setting}</td>"
                f"<td>{final}</td><td>{spread}</td><td>{r.reached} of {r.seeds}</td></tr>"
            )
        table = f'<div class="wide"><table>{"".join(rows)}</table></div>'
        goal = f'<p class="target">target: {html.escape(str(part["target"].iloc[0]))}</p>'
        cards.append(f'<div class="card"><h3>{html.escape(problem)}</h3>{goal}{table}</div>')
    ranking = (
        "The leaderboard's numbers: each optimizer at the settings its tuning studies chose, its median final "
        "value over every study's evaluation runs with a 95% bootstrap interval (a diverged run counting as "
        "inf), lowest first. The order is no ranking: the verdict above is the comparison."
        if judged
        else "Each optimizer at its setting with the lowest median final value, lowest first; lower is better. "
        "The order is no ranking: a report tests nothing (optbench bench compares optimizers with paired tests, "
        "margins and tuning studies)."
    )
    return (
        f'<section id="best"><h2>{"Final values" if judged else "Best setting per optimizer"}</h2>'
        f"<p>{ranking} A value below the problem's float resolution (its dtype's epsilon x the starting loss) "
        f"is rounding noise and shown as such. Target: {html.escape(target_text)}.</p>"
        + (f'<p class="note">{html.escape(curse)}</p>' if curse else "")
        + (
            '<p class="note">A setting marked "grid edge" is the smallest or largest value tried: the best '
            "may lie beyond it; widen the grid to be sure.</p>"
            if best["edge"].astype(bool).any()
            else ""
        )
        + f'<div class="cards">{"".join(cards)}</div></section>'
    )


def chosen_note(best: pd.DataFrame, evaluated: bool) -> str:
    """Where the best settings were chosen: on the seeds shown (the winner's curse: optimistic), or on
    tuning seeds and shown on fresh ones (``evaluated``); nothing where no optimizer had a choice."""
    if evaluated:
        return (
            "Each setting was chosen on the tuning seeds and is shown here on fresh evaluation seeds, so its "
            "value is not flattered by the choice."
        )
    if (best["configs"] > 1).any():
        return (
            "Each best setting was chosen on the same seeds shown here, so its value is optimistic (the "
            "winner's curse: the best of several noisy settings is partly luck). optbench tune reruns the "
            "chosen settings on fresh seeds."
        )
    return ""


def _figure(path: Path, caption: str) -> str:
    return (
        f'<figure id="{html.escape(path.stem)}"><img src="{data_uri(path)}" alt="{html.escape(path.stem)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render(
    figures: Sequence[tuple[Path, str]],
    best: pd.DataFrame,
    summary: pd.DataFrame,
    settings: pd.DataFrame,
    animations: Sequence[Path],
    sources: Sequence[str],
    target_text: str,
    notes: Sequence[str] = (),
    preface: str = "",
    evaluated: bool = False,
    title: str = "",
    judged: bool = False,
) -> str:
    """The page: ``preface`` (a bench's verdict), notes (what could not be drawn), best settings and the
    main (first) figure, the other
    figures, animations, then the tables."""
    main, *rest = figures or [None]
    table = summary.to_html(index=False, float_format=_number, na_rep="-", border=0, classes="summary")
    listing = settings.to_html(index=False, border=0, classes="settings")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title or 'optbench report')}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title or 'optbench report')}</h1>",
        f'<p class="meta">{html.escape(", ".join(sources))} · generated {dt.datetime.now():%Y-%m-%d %H:%M} · '
        f"target: {html.escape(target_text)}</p>",
        "<nav>"
        + ('<a href="#verdict">Verdict</a>' if preface else "")
        + '<a href="#best">Best settings</a><a href="#figures">Figures</a>'
        + ('<a href="#animations">Animations</a>' if animations else "")
        + '<a href="#summary">Every setting</a><a href="#settings">Run settings</a></nav>',
        preface,
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
        _best_block(best, target_text, chosen_note(best, evaluated), judged) if len(best) else "",
        _figure(*main) if main else "",
        '<h2 id="figures">Figures</h2>' if rest else "",
        *(_figure(path, caption) for path, caption in rest),
    ]
    if animations:
        parts.append('<h2 id="animations">Animations</h2>')
        for path in animations:
            if path.suffix.lower() == ".mp4":
                media = f'<video src="{data_uri(path)}" controls loop muted></video>'
            else:
                media = f'<img src="{data_uri(path)}" alt="{html.escape(path.name)}">'
            said = description(path)
            caption = f"{said} ({path.name})" if said else path.name
            parts.append(f"<figure>{media}<figcaption>{html.escape(caption)}</figcaption></figure>")
    opened = " open" if len(summary) <= OPEN_ROWS else ""
    parts += [
        '<h2 id="summary">Every setting</h2>',
        f"<details{opened}><summary>The summary table: {len(summary)} rows, one per problem, optimizer"
        + (" (the leaderboard's" if judged else " and setting (")
        + " numbers; also in summary.csv)</summary>",
        f'<div class="wide">{table}</div></details>',
        '<h2 id="settings">Run settings</h2>' if len(settings) else "",
        f'<div class="wide">{listing}</div>' if len(settings) else "",
        "</body></html>",
    ]
    return "\n".join(parts)
