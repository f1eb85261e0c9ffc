"""Trajectories: runs trained alone, with what each one looked like at every recorded step.

What an animation needs from the core, asked for in one call so that reports draw and never train::

    specs = plan("linreg", ["gd", "torch-adam"], lr=0.1, epochs=50)
    for t in trajectories(specs):
        t.table["loss"], t.snapshots[0]  # the recorded rows, and the parameters at the first of them

``snapshot(problem)`` chooses what is kept at each recorded step (default: a copy of every
parameter tensor); it is called with the run's own problem instance, so it may also evaluate it
(a classifier's predictions over a grid, say).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from optbench.core.runner import RunSpec, execute, prepare
from optbench.core.spec import build


@dataclass(frozen=True)
class Trajectory:
    """One run: its spec, its table (one row per recorded step), the problem it trained and one
    snapshot per row of the table (``snapshots[i]`` was taken when row ``i`` was recorded)."""

    spec: RunSpec
    table: pd.DataFrame
    problem: Any
    snapshots: list[Any]


def parameters(problem: Any) -> dict[str, torch.Tensor]:
    """The default snapshot: a detached CPU copy of each of the problem's named parameters."""
    named = getattr(problem, "params", None)
    if not isinstance(named, Mapping):
        named = dict(enumerate(problem.parameters()))
    return {name: t.detach().cpu().clone() for name, t in named.items()}


def plan(problem: str, optimizers: Sequence[str], **settings: Any) -> list[RunSpec]:
    """One checked :class:`RunSpec` per optimizer, all on ``problem`` with the same ``settings``
    (the keywords of :func:`optbench.core.runner.prepare`); every name is checked before any run."""
    return [prepare(problem, name, **settings) for name in optimizers]


def problem_of(spec: RunSpec) -> Any:
    """The problem ``spec`` trains, built (as at its step 0) but not trained: what it is, before any run."""
    return build(spec.problem, {"seed": spec.seed, **spec.problem_options})


def trajectories(specs: Sequence[RunSpec], snapshot: Callable[[Any], Any] = parameters) -> list[Trajectory]:
    """Train each spec alone (snapshots need the run's own tensors, not a stack), in order."""
    return [_one(spec, snapshot) for spec in specs]


def _one(spec: RunSpec, snapshot: Callable[[Any], Any]) -> Trajectory:
    taken: list[Any] = []
    seen: dict[str, Any] = {}

    def record(step: int, problem: Any) -> None:
        seen["problem"] = problem
        taken.append(snapshot(problem))

    table = execute(spec, on_record=record)
    problem = seen["problem"] if "problem" in seen else problem_of(spec)
    return Trajectory(spec=spec, table=table, problem=problem, snapshots=taken[: len(table)])
