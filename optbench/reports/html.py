"""One self-contained index.html: every image embedded, inline CSS, no script, no network."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif", ".mp4": "video/mp4"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5rem 0.8rem; }
figure { margin: 1.5rem 0; } figure img, figure video { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92rem; max-width: 60rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f5f5f5; } .wide { overflow-x: auto; }
td:first-child, td:nth-child(2), td:nth-child(3) { text-align: left; }
"""


def _number(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.4g}"


def data_uri(path: Path) -> str:
    return f"data:{MIME[path.suffix.lower()]};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render(
    figures: Sequence[tuple[Path, str]],
    summary: pd.DataFrame,
    settings: pd.DataFrame,
    animations: Sequence[Path],
    sources: Sequence[str],
    target_text: str,
    notes: Sequence[str] = (),
) -> str:
    """The page: notes (what could not be drawn), summary table, figures (file, caption), run settings,
    animations."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>optbench report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>optbench report</h1>",
        f'<p class="meta">{html.escape(", ".join(sources))} · generated {dt.datetime.now():%Y-%m-%d %H:%M} · '
        f"target: {html.escape(target_text)}</p>",
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
        "<h2>Summary</h2>",
        '<div class="wide">' + summary.to_html(index=False, float_format=_number, na_rep="-", border=0) + "</div>",
        "<h2>Figures</h2>" if figures else "",
    ]
    for path, caption in figures:
        parts.append(
            f'<figure id="{html.escape(path.stem)}"><img src="{data_uri(path)}" alt="{html.escape(path.stem)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if animations:
        parts.append("<h2>Animations</h2>")
        for path in animations:
            if path.suffix.lower() == ".mp4":
                media = f'<video src="{data_uri(path)}" controls loop muted></video>'
            else:
                media = f'<img src="{data_uri(path)}" alt="{html.escape(path.name)}">'
            parts.append(f"<figure>{media}<figcaption>{html.escape(path.name)}</figcaption></figure>")
    if len(settings):
        parts += ["<h2>Run settings</h2>", settings.to_html(index=False, border=0)]
    parts.append("</body></html>")
    return "\n".join(parts)
