"""A report's figures drawn in parallel processes, each saved as files of its own.

A figure is handed over undrawn, as a :data:`Drawing`: a picklable function of the page's data (a
``functools.partial`` of a figure function) that returns a :class:`~optbench.reports.figures.Figure` or
None. Drawing, laying out and saving are most of a page's time and the figures share nothing, so up to
``jobs`` processes (loky's, reused: the ones a bench trained in) draw them, each under the caller's
colours and matplotlib settings; every file is the same as one process makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from optbench.results import files

Drawing = Callable[[], Any]  # () -> Figure | None
DPI = 110  # a 2-facet figure is about 1,000 px wide: the page shows it at its own size


def draw_all(
    drawings: Sequence[Drawing], out: Path, names: Sequence[str], *, svg: bool = False, jobs: int = 1
) -> list[tuple[str, list[str], str]]:
    """Draw, lay out and save each of ``drawings`` into ``out`` (PNG, and SVG with ``svg``), with
    ``names``' colours (:func:`~optbench.reports.styles.distinct`), in up to ``jobs`` processes: this one
    and ``jobs - 1`` of loky's (reused; a cold one first imports matplotlib and seaborn, a few seconds).
    Returns, in the order given, ``(png name, file names written, caption)`` of each figure drawn."""
    rc = {k: v for k, v in matplotlib.rcParams.items() if k != "backend"}
    out = Path(out).absolute()  # a reused worker's working directory is the one it started in, not ours
    names = sorted(set(names))
    mine = list(range(0, len(drawings), max(jobs, 1)))  # this process draws every jobs-th figure, workers the rest
    theirs = [i for i in range(len(drawings)) if i not in mine]
    done: dict[int, Any] = {}
    if theirs:
        from optbench.private_apis import loky_executor

        # submitted at once: loky's thread hands the workers their figures while this process draws its own.
        # The pool of the size a bench trained in (joblib's, shared): another size or kind would start cold ones
        pool = loky_executor(jobs)
        futures = {i: pool.submit(_in_worker, drawings[i], out, names, svg, rc) for i in theirs}
    for i in mine:
        done[i] = _draw(drawings[i], out, names, svg, rc)
    if theirs:
        done.update({i: future.result() for i, future in futures.items()})
    return [done[i] for i in sorted(done) if done[i] is not None]


def _in_worker(*args: Any) -> tuple[str, list[str], str] | None:
    """In a worker process: files only, never a window (a worker with a display would pick a GUI backend)."""
    matplotlib.use("agg")
    return _draw(*args)


def _draw(
    drawing: Drawing, out: Path, names: Sequence[str], svg: bool, rc: Mapping[str, Any]
) -> tuple[str, list[str], str] | None:
    import matplotlib.pyplot as plt

    from optbench.reports.styles import distinct

    with matplotlib.rc_context(rc), distinct(names):
        figure = drawing()
        if figure is None:
            return None
        try:
            lay_out_once(figure.figure)
            written = [f"{figure.name}.png"]
            files.atomic_write(out / written[0], lambda tmp: figure.figure.savefig(tmp, dpi=DPI, format="png"))
            if svg:
                written.append(f"{figure.name}.svg")
                files.atomic_write(out / written[1], lambda tmp: figure.figure.savefig(tmp, format="svg"))
        finally:
            plt.close(figure.figure)
    return written[0], written, figure.caption


def lay_out_once(fig: Any) -> None:
    """Run the figure's layout engine now and keep its result. With an engine in place, savefig lays
    the figure out on a dry draw and again on the real one, and a second format a third time: half of
    a report's time went into laying out the same figures again. The engine is then removed outright
    (``None``, not ``"none"``: that leaves a placeholder engine, for which savefig still makes its dry
    draw, a third of each save)."""
    engine = fig.get_layout_engine()
    if engine is not None and engine.adjust_compatible is False:  # constrained layout
        fig.set_dpi(DPI)  # text extents as they will be saved
        engine.execute(fig)
        with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)  # None with both off: no engine at all
