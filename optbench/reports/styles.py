"""One look per optimizer name, the same in every figure, animation and notebook.

A reader who learns on one page that gd is the solid blue line with dots must find it so on the
next page and in next week's report. So the look depends on the name alone: the built-in
optimizers have fixed entries, any other name is hashed (stably: not Python's salted ``hash``) into
the same palette. Colours alone cannot tell two coinciding lines apart (gd and full-batch torch-sgd
draw the same curve), so each name also gets a line style, a marker and a marker phase.

Sixteen colours and any number of names: two names can hash to one colour. Inside
:func:`distinct` (a report draws its page in one), no two of the names it is given share a colour:
the built-ins keep theirs, and a later name (in sorted order) whose colour is taken moves on to a
free one, so the same set of optimizers gets the same colours on every page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# seaborn's "colorblind" palette without its yellow (unreadable on white), then Paul Tol's muted
# colours: 16 hues a reader can tell apart on a white page, each darkened where needed to a contrast of at
# least 3:1 against it (WCAG's floor for lines and marks; the pink that ended the list had 1.7:1).
PALETTE = (
    "#0173b2",
    "#c78004",
    "#029e73",
    "#d55e00",
    "#c574b6",
    "#b98559",
    "#4897c3",
    "#8f8f8f",
    "#332288",
    "#882255",
    "#117733",
    "#949431",
    "#3f9e8e",
    "#aa4499",
    "#661100",
    "#d6338f",
)
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# The built-in optimizers (and the example plugin) in a fixed order: entry i gets colour i. gd and
# torch-sgd (identical full-batch runs) get different colours, dashes and markers.
KNOWN = (
    "gd",
    "sgd",
    "torch-adam",
    "torch-sgd",
    "torch-adamw",
    "torch-rmsprop",
    "torch-adagrad",
    "torch-lbfgs",
    "torch-nadam",
    "torch-radam",
    "torch-adamax",
    "torch-adadelta",
    "torch-asgd",
    "torch-rprop",
    "lion",
    "torch-sgd-momentum",
)


@dataclass(frozen=True)
class Style:
    """How an optimizer is drawn: ``color``, ``linestyle``, ``marker`` and ``phase`` (0-1: where along
    a line its markers start, so that the markers of two coinciding lines do not cover each other)."""

    color: str
    linestyle: Any
    marker: str
    phase: float

    def line(self, n_points: int, markers: int = 8) -> dict[str, Any]:
        """Keyword arguments for ``ax.plot`` of a line of ``n_points``: about ``markers`` markers on it."""
        every = max(1, n_points // markers)
        return {
            "color": self.color,
            "linestyle": self.linestyle,
            "marker": self.marker,
            "markevery": (int(self.phase * every), every),
            "markersize": 5,
            "linewidth": 1.8,
        }


def _index(name: str) -> int:
    if name in KNOWN:
        return KNOWN.index(name)
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


_COLOURS: dict[str, int] = {}  # a palette index per name while a :func:`distinct` block is open


@contextmanager
def distinct(names: Iterable[str]) -> Iterator[None]:
    """Within the block, each of ``names`` has a colour of its own (where there are 16 names or fewer)."""
    order = sorted(set(names), key=lambda n: (n not in KNOWN, KNOWN.index(n) if n in KNOWN else 0, n))
    taken: dict[str, int] = {}
    for name in order:
        i = _index(name) % len(PALETTE)
        for _ in range(len(PALETTE)):
            if i not in taken.values():
                break
            i = (i + 7) % len(PALETTE)  # 7 is prime to 16: every colour is tried, neighbours last
        taken[name] = i
    before = dict(_COLOURS)
    _COLOURS.clear()
    _COLOURS.update(taken)
    try:
        yield
    finally:
        _COLOURS.clear()
        _COLOURS.update(before)


def style(name: str) -> Style:
    """The look of optimizer ``name``: fixed for the built-ins, a stable hash for any other name."""
    i = _index(name)
    return Style(
        color=PALETTE[_COLOURS.get(name, i % len(PALETTE))],
        linestyle=LINESTYLES[i % 4] if name in KNOWN else LINESTYLES[(i // 7) % len(LINESTYLES)],
        marker=MARKERS[i % len(MARKERS)] if name in KNOWN else MARKERS[(i // 11) % len(MARKERS)],
        # known names: gd and torch-sgd, which coincide, are a half-turn apart; others spread by their hash
        phase=((i % 4) / 4 + (i // 4) / 16) % 1.0 if name in KNOWN else (i % 1000) / 1000,
    )


def color(name: str) -> str:
    """The colour of optimizer ``name`` (a hex string), the same in every figure."""
    return style(name).color


def colors(names: Any) -> dict[str, str]:
    """``{name: colour}`` for seaborn's ``palette=``."""
    return {name: color(name) for name in sorted(set(names))}
