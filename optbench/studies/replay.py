"""Runs to watch: each optimizer trained alone, with what it looked like at every recorded step.

What an animation draws (:mod:`optbench.reports.animation`) is produced here, so that the drawing
never trains::

    from optbench.reports import animate
    from optbench.studies.replay import race
    anim = animate(race("linreg", ["gd", "torch-adam"], lr=[0.1, 0.01], epochs=50))

:func:`race` plans runs from settings; :func:`chosen` rebuilds, from a bench folder or a tune
result, the exact run each optimizer's chosen setting was evaluated with (every tuned value, the
schedule, the budget), checked against the run key stored with it; :func:`traces` trains specs.
A *trace* is one run as the drawing reads it (:mod:`optbench.reports.frames`): a dict with
``name``, ``label``, ``kind`` (``line``, ``surface`` or ``regions``: what is drawn), ``records``
(the rows the titles print), ``snapshots`` (one per record), the trained ``problem`` and what ran
(``problem_name``, ``options``, ``seed``, ``epochs``, ``schedule``, ``warmup_steps``, ``status``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from optbench.core.runner import RunSpec, prepare
from optbench.core.trajectories import Trajectory, problem_of, trajectories
from optbench.errors import InvalidValueError
from optbench.results import schema
from optbench.settings import declared, validate

GRID = 120  # decision-region resolution (points per side)


def race(
    problem: str = "linreg",
    optimizers: str | Sequence[str] = "gd",
    *,
    lr: float | Sequence[float] | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Each optimizer on ``problem`` trained alone, as traces: :func:`traces` of :func:`plan`."""
    return traces(plan(problem, optimizers, lr=lr, **settings))


def plan(
    problem: str,
    optimizers: str | Sequence[str],
    *,
    lr: float | Sequence[float] | None = None,
    **settings: Any,
) -> list[RunSpec]:
    """One checked spec per optimizer (every name checked before any run), all with the same
    settings (:func:`optbench.core.runner.prepare`'s keywords); ``lr`` is one learning rate for
    every optimizer or one per optimizer (a fair race: each at its own tuned rate)."""
    names = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if not names:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    device = settings.get("device") or "cpu"
    if device != "cpu":  # a few small runs, read back at every recorded step: the drawing reads CPU tensors
        raise InvalidValueError(f"--device {device!r}: animations train on the CPU; leave --device out")
    rates = list(lr) if isinstance(lr, list | tuple) else [lr] * len(names)
    if len(rates) != len(names):
        raise InvalidValueError(f"lr: {len(rates)} learning rates for {len(names)} optimizers; give one per optimizer")
    return [prepare(problem, name, lr=rate, **settings) for name, rate in zip(names, rates, strict=True)]


def traces(specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
    """Train each spec alone (on the CPU: the drawing reads every recorded step back) and keep, at
    each recorded step, what its picture needs: the fitted line's parameters, the point on a 2-D
    surface, or the class predicted over a grid. A problem none of these draws is refused before any run."""
    if not specs:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    for spec in specs:
        if spec.device != "cpu":
            raise InvalidValueError(f"--device {spec.device!r}: animations train on the CPU; leave --device out")
    instance = problem_of(specs[0])  # what it is, before any run
    kind = kind_of(instance, specs[0].problem.name)
    grid = _grid(instance) if kind == "regions" else None
    return [_trace(run, kind, grid) for run in trajectories(specs, _snapshot(kind, grid))]


def kind_of(problem: Any, name: str) -> str:
    """What an animation draws of ``problem``: ``line`` (linreg's fitted line), ``surface`` (a point
    on a 2-D test function) or ``regions`` (a classifier over 2-D inputs); else one line."""
    if hasattr(problem, "true_a"):
        return "line"
    params = getattr(problem, "params", None)
    if hasattr(problem, "bounds") and callable(getattr(problem, "value", None)) and isinstance(params, dict):
        point = params.get("xy")
        if isinstance(point, torch.Tensor):
            if point.numel() != 2:
                raise InvalidValueError(
                    f"problem {name!r} has {point.numel()} coordinates; its contours are drawn in 2-D"
                )
            return "surface"
    if hasattr(problem, "predict") and getattr(problem, "x", torch.empty(0, 0)).shape[-1] == 2:
        return "regions"
    raise InvalidValueError(
        f"problem {name!r} cannot be animated: animations draw linreg, 2-D classification and "
        "the 2-D test functions (rosenbrock, beale, himmelblau, rastrigin)"
    )


def _snapshot(kind: str, grid: tuple[torch.Tensor, np.ndarray, np.ndarray] | None) -> Callable[[Any], Any]:
    def snapshot(instance: Any) -> Any:
        if kind == "line":
            return instance.a.detach().double().tolist()
        if kind == "surface":
            return instance.params["xy"].detach().cpu().double().tolist()
        assert grid is not None
        points = grid[0].to(instance.x.dtype)
        return instance.predict(points).reshape(GRID, GRID).cpu().numpy()

    return snapshot


def _grid(instance: Any) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The points whose class a region snapshot predicts, around the training and test data."""
    points = torch.cat([instance.x, getattr(instance, "x_test", instance.x)])
    low, high = points.min(0).values - 0.5, points.max(0).values + 0.5
    xs = np.linspace(float(low[0]), float(high[0]), GRID)
    ys = np.linspace(float(low[1]), float(high[1]), GRID)
    mesh = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return torch.tensor(mesh, dtype=instance.x.dtype), xs, ys


def _trace(run: Trajectory, kind: str, grid: tuple[Any, np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    spec, table = run.spec, run.table
    shown = [c for c in ("epoch", "step", "loss", "test_accuracy") if c in table]
    return {
        "name": spec.optimizer.name,
        "label": _label(spec),  # what was run, named
        "kind": kind,
        "records": table[shown].to_dict("records"),
        "snapshots": run.snapshots,
        "problem": run.problem,
        "grid": None if grid is None else grid[1:],
        "problem_name": spec.problem.name,
        "options": _given(spec),
        "seed": spec.seed,
        "epochs": spec.epochs,
        "schedule": spec.schedule,
        "warmup_steps": spec.warmup_steps,
        "status": str(table["status"].iloc[-1]) if "status" in table and len(table) else "ok",
    }


def _label(spec: RunSpec) -> str:
    """The optimizer with its lr and every other setting that is not its default: ``gd (lr 0.1)``,
    ``torch-sgd-momentum (lr 0.59, momentum 0.783)`` (a tuned run says all it was tuned to)."""
    lr = spec.hyperparameters.get("lr")
    has_lr = isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr)
    defaults = spec.optimizer.hyperparameters()
    parts = [f"lr {float(lr):g}"] if has_lr else []
    parts += [
        f"{k} {_shown(v)}"
        for k, v in spec.hyperparameters.items()
        if k != "lr" and (k not in defaults or not _equal(defaults[k], v))
    ]
    return spec.optimizer.name + (f" ({', '.join(parts)})" if parts else "")


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_shown(v) for v in value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _given(spec: RunSpec) -> dict[str, Any]:
    """The problem's options that differ from its defaults: what a caption names."""
    defaults = spec.problem.hyperparameters()
    return {k: v for k, v in spec.problem_options.items() if k not in defaults or not _equal(defaults[k], v)}


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # tensors and arrays compare elementwise
        return False


# --- a bench's chosen settings, replayed


def chosen(
    source: str | Path,
    problem: str,
    optimizers: Sequence[str],
    *,
    seed: int | None = None,
    problem_options: Mapping[str, str] | None = None,
) -> list[RunSpec]:
    """The run each of ``optimizers`` was evaluated with on ``problem`` by a bench (its folder) or a
    tune (its results file): every hyperparameter, problem option and run setting of its chosen
    setting (a bench's first study's), at ``seed`` (default: the first seed it was evaluated on).

    Each spec is rebuilt from the table's cells and checked against the run key stored with them,
    so what is replayed is what was run or one line says it cannot be. It trains on the CPU (a run
    a bench trained on a GPU is replayed there with the same settings). ``problem_options`` (text, as
    ``--problem-opt`` gives them) pick one entry where the results hold several."""
    from optbench.results.io import load_results

    label = f"--lr-from {str(source)!r}"
    path = Path(source)
    file = path / "results.parquet" if path.is_dir() else path
    if not file.is_file():
        what = (
            "does not exist"
            if not os.path.lexists(path)
            else "is a folder without results.parquet"
            if path.is_dir()
            else "is not a file or a folder"
        )
        raise InvalidValueError(f"{label} {what}; expected a tune results file or a bench folder")
    table = load_results(file)
    runs = table[(table["problem"] == problem) & (table.get("phase", pd.Series("", index=table.index)) == "eval")]
    if not len(runs):
        raise InvalidValueError(f"{label} holds no evaluation runs of {problem!r}")
    runs = _entry(runs, dict(problem_options or {}), label, problem)
    specs = []
    for name in optimizers:
        mine = runs[runs["optimizer"] == name]
        if not len(mine):
            tuned = ", ".join(sorted(runs["optimizer"].unique()))
            raise InvalidValueError(f"{label} has no tuned setting for {name!r} on {problem!r}; it has: {tuned}")
        first = mine.iloc[0]  # a bench's studies may choose several settings: the first study's was evaluated first
        if "lr" in first.index and pd.notna(first["lr"]):  # a cell a user edited: named by file and column
            validate.lr(float(first["lr"]), f"--lr-from {str(file)!r}: column lr of {name!r} on {problem!r}")
        spec = _rebuilt(first, schema.columns_with(table, schema.SETTING), label)
        if seed is None:
            seed = spec.seed  # every optimizer at the first one's first evaluation seed: one race
        specs.append(dataclasses.replace(spec, seed=seed))
    return specs


def _entry(runs: pd.DataFrame, given: dict[str, str], label: str, problem: str) -> pd.DataFrame:
    """The runs of the one problem entry (its options) that ``given`` picks; one line if several match."""
    options = [c for c in runs.columns if c.startswith("problem_") and runs[c].notna().any()]
    for key, text in given.items():
        column = f"problem_{key}"
        if column in runs:
            runs = runs[runs[column].map(lambda v, t=text: _same(v, t))]
    entries = runs[options].drop_duplicates() if options else runs.iloc[:1]
    if len(entries) != 1:
        found = "; ".join(_options_text(row) for row in entries.to_dict("records")) or "none"
        raise InvalidValueError(
            f"{label}: {len(entries)} entries of {problem!r} match ({found}); pick one with --problem-opt KEY=VALUE"
        )
    return runs


def _rebuilt(row: pd.Series, settings: Sequence[str], label: str) -> RunSpec:
    """The spec of the run ``row`` belongs to, from its setting cells (each as its text: a float's repr
    is exact, a tuple's cell is its values joined by commas), checked against its ``run_key``."""
    cells = {c: _plain(row[c]) for c in settings if c in row.index and not pd.isna(row[c])}
    named = ("problem", "optimizer", *declared.NAMES)
    hyperparameters = {k: v for k, v in cells.items() if k not in named and not k.startswith("problem_")}
    options = {k.removeprefix("problem_"): v for k, v in cells.items() if k.startswith("problem_")}
    run = {name: cells[name] for name in declared.NAMES if name in cells}
    if run.get("eval_every") == 0:  # its cell writes "epoch ends only" as 0
        run["eval_every"] = None
    phase = str(row["phase"]) if "phase" in row.index else None
    # the batch-size cell is the resolved one; the run key holds the one given, which may have been none
    for batch_size in dict.fromkeys([run.get("batch_size"), None]):
        spec = prepare(
            str(row["problem"]),
            str(row["optimizer"]),
            seed=int(row["seed"]),
            problem_options=options,
            hyperparameters=hyperparameters,
            **{**run, "batch_size": batch_size, "device": "cpu"},
        )
        # as it ran: the epochs stored (OPTBENCH_EPOCHS_SCALE scaled them once, when the bench ran) and its
        # device (replayed on the CPU, where an animation trains: a GPU's sums may differ in the last digits)
        ran = {**spec.settings, "epochs": run.get("epochs", spec.epochs), "device": run.get("device", "cpu")}
        if (
            "run_key" not in row.index
            or schema.run_key(dataclasses.replace(spec, settings=ran), phase) == row["run_key"]
        ):
            return dataclasses.replace(spec, settings={**ran, "device": "cpu"})
    raise InvalidValueError(
        f"{label}: {row['optimizer']}'s chosen run on {row['problem']!r} cannot be rebuilt exactly from its "
        "settings (its run key differs: made by another optbench version, or its table edited?)"
    )


def _plain(value: Any) -> Any:
    """A cell as a Python value (numpy's scalars are not bool, int or float to every check)."""
    return value.item() if isinstance(value, np.generic) else value


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _same(stored: Any, text: str) -> bool:
    """Whether a value (a number, text, or a default's tuple) is the one ``text`` gives."""
    if isinstance(stored, list | tuple):
        parts = text.split(",")
        return len(parts) == len(stored) and all(_same(v, p.strip()) for v, p in zip(stored, parts, strict=True))
    try:
        return float(stored) == float(text)
    except (TypeError, ValueError):
        return str(stored) == text


def _options_text(row: dict[str, Any]) -> str:
    return " ".join(f"{k.removeprefix('problem_')}={_text(v)}" for k, v in row.items() if pd.notna(v))
