"""The runner: (problem, optimizer, settings) -> one tidy trajectory table.

:func:`~optbench.core.spec.prepare` validates a run's settings into a :class:`~optbench.core.spec.RunSpec`
without running anything; :func:`execute` runs specs through the training core
(:mod:`optbench.core.engine`), where a single run is a batch of one; :func:`run` does both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from optbench.core.spec import RunSpec as RunSpec  # re-exported: the runner's public names
from optbench.core.spec import prepare as prepare
from optbench.core.spec import run_settings
from optbench.errors import InvalidValueError, OptbenchError
from optbench.registry.plugins import one_line
from optbench.results.schema import label_table
from optbench.settings import declared


def run(
    problem: str = "linreg",
    optimizer: str = "gd",
    *,
    lr: float | None = None,
    seed: int = 0,
    problem_options: Mapping[str, Any] | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Run one optimizer on one problem and return its trajectory, one row per recorded point.

    ``lr`` and any other keyword that is not a run setting go to the optimizer (its defaults fill
    the rest); ``problem_options`` go to the problem. The run settings
    (:data:`optbench.settings.declared.SETTINGS`) are ``epochs`` (default 100), ``batch_size``,
    ``eval_every``, ``schedule`` (constant, cosine, linear, step) with ``warmup_steps``
    (:mod:`optbench.core.schedules`), and ``device`` (``cpu`` or ``cuda[:N]``). Step 0 and every
    epoch end are recorded, plus every ``eval_every`` steps. A run whose loss becomes NaN or
    infinite stops with status ``diverged``; an exception during training gives status ``error``
    and its ``message``. Neither raises.

    >>> df = run("linreg", "gd", lr=0.1, epochs=100, seed=0)
    >>> df[["step", "loss"]].iloc[[0, -1]].round(3).to_dict("list")
    {'step': [0, 100], 'loss': [6.637, 0.081]}
    """
    run_settings = {k: v for k, v in settings.items() if k in declared.NAMES}
    hyperparameters = {k: v for k, v in settings.items() if k not in declared.NAMES}
    spec = prepare(
        problem,
        optimizer,
        lr=lr,
        seed=seed,
        problem_options=problem_options,
        hyperparameters=hyperparameters,
        **run_settings,
    )
    return execute(spec)


def execute(
    spec: RunSpec | Sequence[RunSpec],
    on_record: Callable[[int, Any], None] | None = None,
    *,
    stack: bool = True,
    progress: Callable[[int, int, Any], None] | None = None,
) -> pd.DataFrame:
    """Run prepared :class:`RunSpec` (one or many) through the training core; one table, runs in order.

    The same spec always gives the same losses, bit for bit. Many specs are stacked where they can
    be (:mod:`optbench.core.engine`); ``stack=False`` trains each alone. A single spec whose problem or
    optimizer rejects its settings raises :class:`~optbench.errors.OptbenchError`; in a list, that
    run gets an ``error`` row and the others go on. ``on_record(step, problem)``, if
    given, is called at every recorded point of each run (trained alone), e.g. to snapshot
    parameters for an animation. ``progress(step, steps, losses)`` is called at every recorded
    point (see :func:`optbench.core.engine.run_specs`).
    """
    from optbench.core.engine import run_specs  # torch: only once something runs

    single = isinstance(spec, RunSpec)
    specs = [spec] if single else list(spec)
    if not specs:
        raise InvalidValueError("nothing to run: no run specs given")
    try:
        table = run_specs(specs, on_record, stack=stack, strict=single, progress=progress)
    except OptbenchError:
        raise
    except Exception:  # outside the loop's own error handling (a loss that raises at step 0, memory): per run
        table = pd.concat([_guarded(s, on_record, single) for s in specs], ignore_index=True)
    return label_table(table, settings={k for s in specs for k in run_settings(s, 0)} - {"seed"})


def _guarded(spec: RunSpec, on_record: Callable[[int, Any], None] | None, strict: bool) -> pd.DataFrame:
    """One run alone; any exception it raises becomes its ``error`` row."""
    from optbench.core.engine import error_rows, run_specs

    try:
        return run_specs([spec], on_record, stack=False, strict=strict)
    except OptbenchError as exc:
        if strict:
            raise
        return error_rows(spec, str(exc))
    except Exception as exc:
        return error_rows(spec, one_line(exc))
