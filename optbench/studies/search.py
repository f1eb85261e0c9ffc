"""Tuning that the verdict can trust: each optimizer's space explored, then refined until the answer
stops moving, in independent tuning studies.

One rule for every optimizer, candidates and baselines alike (:func:`search`):

1. **Explore**: study ``s`` draws the suite's ``trials`` points of the optimizer's space
   (:func:`optbench.studies.spaces.points`, scrambled by ``s``) and trains each on its tuning seeds
   (the suite's, moved by :data:`STUDY_STRIDE` x ``s``: every study its own data draws).
2. **Refine**: compass search from the best point (Torczon's pattern search, the coordinate descent
   Wen et al. 2025 tune their baselines with): each round tries one step up and one down along every
   dimension (:data:`FIRST_STEP`: 0.75 decade of a learning rate, 0.25 decade of 1 - momentum,
   whatever the range's width, so a wider range is refined as finely as a narrow one), past the
   range's ends too (to a dimension's limits: a momentum below 1, a learning rate within 1e-8..1e4);
   a point that lowers the tuning objective by more than ``tolerance`` (relative) becomes the centre
   and the step doubles (up to :data:`MAX_EXPANSION`: a best far past a range's edge is reached in a
   few moves), else the step halves; the search ends when the step has halved :data:`HALVINGS` times and still
   nothing improves (converged) or the trials reach ``max_trials`` (capped: the verdict says the best
   may still be improving).
3. **Evaluate**: each study's best is rerun on the evaluation seeds (a setting two studies chose is
   run once).

Each round's runs of every problem, optimizer and study go out together, so runs that differ in
settings only stay one stacked program. The tuning objective is :func:`score`: the worst over a
study's tuning seeds of the final objective (floored at its resolution; inf for a diverged run), or
of the validation loss where the problem selects on it. The worst, not the median: a setting that
diverges on one tuning seed in three sits at the edge of stability and diverges on evaluation seeds
too (a median chose such settings for a copy of SGD-momentum on Rosenbrock, and lost every study).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError
from optbench.results import schema
from optbench.results.outcomes import final, finals_by_run, reach, resolution
from optbench.settings import validate
from optbench.settings.grid import Grid
from optbench.studies import spaces, tuning
from optbench.studies.spaces import Dim
from optbench.studies.sweeps import keyed, run_jobs
from optbench.studies.tuning import evaluate, validation

STUDY_STRIDE = 1000  # study s tunes on the suite's tuning seeds + 1000 s
ENDS = {"records": "ends"}  # a tuning run's score reads its final point only (not with select="time")
# Refinement's first step per scale, whatever a range's width (a wider range is refined as finely as a narrow
# one): decades of the value (a learning rate, a weight decay), decades of 1 - value (a momentum), or a share
# of a linear range; halved twice before the search counts as converged (a factor 1.54 in a learning rate).
FIRST_STEP = {"log": 0.75, "log1m": 0.25, "linear": 0.25}
HALVINGS = 2
MAX_EXPANSION = 4.0  # a step that keeps paying doubles, up to 4x the first (3 decades of an lr)
DEFAULT_LR = (1e-4, 1.0)  # the learning-rate range `tune` explores without --lr (the suites' default)


@dataclass(frozen=True)
class Protocol:
    """How every optimizer is tuned: ``trials`` exploration points (``method``), then refinement to a
    relative ``tolerance`` with at most ``max_trials`` settings in all, in ``studies`` studies."""

    trials: int = 8
    method: str = "halton"
    studies: int = 3
    tolerance: float = 0.01
    max_trials: int = 24
    refine: bool = True

    def text(self) -> str:
        refined = (
            f", refined by compass search past every range's edge until no step improves the tuning objective "
            f"by more than {self.tolerance:g} (relative), at most {self.max_trials} settings in all"
            if self.refine
            else ""
        )
        return f"{self.studies} tuning studies; each explores {self.trials} settings ({self.method}){refined}"


def study_seeds(tune_seeds: Sequence[int], study: int) -> list[int]:
    return [seed + STUDY_STRIDE * study for seed in tune_seeds]


@dataclass
class Slot:
    """One search: a problem (with its options), an optimizer, a study."""

    job: dict[str, Any]  # the grid's job: problem, optimizer, run settings (seed and settings aside)
    study: int
    seeds: list[int]
    dims: list[Dim]
    defaults: Mapping[str, Any]
    tried: dict[tuple[float, ...], dict[str, Any]] = field(default_factory=dict)  # unit point -> its trial
    explored: list[float] = field(default_factory=list)  # the exploration's scores, in draw order
    centre: tuple[float, ...] = ()
    step: float = 1.0  # the current step, as a share of each dimension's first step (unit_step)
    state: str = "refining"  # "converged", "capped" or "explored" (no refinement)
    moved: bool = False  # its last round improved: capped then, the best may still be improving

    def settings(self, point: tuple[float, ...]) -> dict[str, Any]:
        values = {d.name: d.at(u) for d, u in zip(self.dims, point, strict=True)}
        return dict(self.job["hyperparameters"]) | spaces.hyperparameters(values, self.defaults)

    def jobs(self, point: tuple[float, ...]) -> list[dict[str, Any]]:
        hyper = self.settings(point)
        return [dict(self.job, hyperparameters=hyper, seed=seed) for seed in self.seeds]

    def polls(self) -> list[tuple[float, ...]]:
        """The centre's neighbours one step away along each dimension, where the value is a setting."""
        out = []
        for i, dim in enumerate(self.dims):
            if dim.fixed:
                continue
            for sign in (-1, 1):
                move = sign * self.step * unit_step(dim)
                point = tuple(round(u + move * (j == i), 9) for j, u in enumerate(self.centre))
                if dim.allows(dim.at(point[i])):
                    out.append(point)
        return out


def search(
    grid: Grid,
    out: Any,
    *,
    spaces_of: Mapping[str, list[Dim]],
    protocol: Protocol,
    tune_seeds: Sequence[int],
    eval_seeds: Sequence[int],
    select: str = "final",
    max_runs: int | None = validate.MAX_RUNS,
    **options: Any,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Explore, refine and evaluate every problem x optimizer of ``grid`` in ``protocol.studies``
    studies (the module's rule); returns the table (phases tune and eval) and one choice per problem,
    optimizer and study: ``job``, ``study``, ``score``, ``trials`` (settings tried), ``state``
    (converged; capped; "still improving": capped right after a step that improved; explored:
    nothing to refine), ``explored`` (the exploration's scores), ``edges`` (values at the end of those
    tried, at a dimension's limit) and ``eval_keys`` (seed -> run key)."""
    from optbench.registry import OPTIMIZERS

    base = [job | (ENDS if select != "time" else {}) for job in grid.replace(seeds=[0]).jobs()]
    slots = []
    for study in range(protocol.studies):
        seeds = study_seeds(tune_seeds, study)
        for job in base:
            dims = spaces_of[job["optimizer"]]
            slot = Slot(job, study, seeds, dims, OPTIMIZERS.get(job["optimizer"]).hyperparameters())
            slot.state = "refining" if protocol.refine and dims else "explored"
            slots.append(slot)
    per_config = len(tune_seeds) * len(slots) * protocol.max_trials + len(slots) * len(eval_seeds)
    validate.runs(per_config, max_runs, "the tuning (every study's search, at most, and evaluation)")
    table = []
    note = options.pop("note", None)
    first = [
        (slot, tuple(u))
        for slot in slots
        for u in (
            spaces.unit_points(slot.dims, protocol.trials, protocol.method, slot.study, protocol.studies)
            if slot.dims
            else [[]]
        )
    ]
    table.append(_run(first, grid, out, select, {**options, "note": note}))
    for slot in slots:
        slot.explored = [slot.tried[p]["score"] for p in slot.tried]
        slot.centre = min(slot.tried, key=lambda p: (slot.tried[p]["score"], list(slot.tried).index(p)))
    quiet = {**options, "note": None}
    while True:
        moves = []
        for slot in (s for s in slots if s.state == "refining"):
            new = [p for p in slot.polls() if p not in slot.tried]
            if len(slot.tried) + len(new) > protocol.max_trials:
                slot.state = "capped"
                continue
            moves += [(slot, p) for p in new]
        if not moves:
            if not any(s.state == "refining" for s in slots):
                break
        else:
            table.append(_run(moves, grid, out, select, quiet))
        for slot in (s for s in slots if s.state == "refining"):
            _advance(slot, protocol.tolerance)
    tuned = schema.concat(table)
    chosen = [_choice(slot, select) for slot in slots]
    for choice in chosen:  # evaluation runs record every point: their curves are the report's
        choice["job"] = {k: v for k, v in choice["job"].items() if k not in ENDS}
    evaluated = evaluate(chosen, eval_seeds, grid.source, out, quiet)
    return schema.concat([tuned, evaluated]), chosen


def tune(
    grid: Grid,
    out: Any = None,
    *,
    protocol: Protocol | None = Protocol(),
    tune_seeds: Sequence[int] = (0, 1, 2),
    eval_seeds: Sequence[int] = (100, 101, 102, 103, 104),
    select: str = "final",
    max_runs: int | None = validate.MAX_RUNS,
    max_epochs: int | None = validate.MAX_EPOCHS,
    **options: Any,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tune every problem x optimizer of ``grid`` as a bench does (:func:`search`, the module's rule):
    each optimizer's space (:func:`optbench.studies.spaces.resolve`), its learning rate over the range
    of ``grid.lr`` (:data:`DEFAULT_LR` without one), less what the grid fixes (``--opt momentum=0.9``:
    momentum is not searched); explored, refined and evaluated in ``protocol.studies`` studies.
    ``protocol`` None: the grid's values as they are, one study (:func:`optbench.studies.tuning.tune`).
    Returns the table (phases tune and eval) and one choice per problem, optimizer and study."""
    if protocol is None:
        return tuning.tune(
            grid,
            out,
            tune_seeds=tune_seeds,
            eval_seeds=eval_seeds,
            select=select,
            max_runs=max_runs,
            max_epochs=max_epochs,
            **options,
        )
    tune_seeds, eval_seeds = tuning.check_tuning(tune_seeds, eval_seeds, select)
    validate.epochs(grid.epochs, grid.label("epochs"), max_epochs)
    return search(
        grid.replace(lr=None),
        out,
        spaces_of=grid_spaces(grid),
        protocol=protocol,
        tune_seeds=tune_seeds,
        eval_seeds=eval_seeds,
        select=select,
        max_runs=max_runs,
        **options,
    )


def grid_spaces(grid: Grid) -> dict[str, list[Dim]]:
    """Each optimizer's space for :func:`tune`: lr over the grid's range, the dimensions the grid gives
    one value left out (that value is the setting). A grid of several values is not a space: refused."""
    lr = grid.lr or DEFAULT_LR
    fixed: dict[str, dict[str, Any]] = {}
    for job in grid.replace(lr=None, seeds=[0]).jobs():
        name, given = job["optimizer"], job["hyperparameters"]
        before = fixed.setdefault(name, given)
        varying = sorted(
            k for k in set(given) | set(before) if schema.key_text(given.get(k)) != schema.key_text(before.get(k))
        )
        if varying:
            raise InvalidValueError(
                f"{grid.label('opt')} {varying[0]}: several values for {name!r}; tune searches each optimizer's "
                f"space (optbench describe {name}): give one value to fix it, or --search lr to search the values given"
            )
    return {
        name: [
            dim
            for dim in spaces.space_of(name, None, lr)
            if not any(dim.name == key or dim.name.startswith(f"{key}.") for key in fixed.get(name, {}))
        ]
        for name in grid.optimizers
    }


def _advance(slot: Slot, tolerance: float) -> None:
    """One compass step: move to the best neighbour if it improves enough, else halve the step."""
    here = slot.tried[slot.centre]["score"]
    near = [p for p in slot.polls() if p in slot.tried]
    best = min(near, key=lambda p: slot.tried[p]["score"], default=None)
    slot.moved = best is not None and improves(slot.tried[best]["score"], here, tolerance)
    if slot.moved:  # a step that pays is tried twice as long next (pattern search's expansion)
        slot.centre = best
        slot.step = min(2 * slot.step, MAX_EXPANSION)
        return
    slot.step /= 2
    if slot.step < 0.5**HALVINGS:
        slot.state = "converged"


def unit_step(dim: Dim) -> float:
    """A dimension's first refinement step in unit coordinates of its range (:data:`FIRST_STEP`)."""
    if dim.scale == "linear":
        return FIRST_STEP["linear"]
    return FIRST_STEP[dim.scale] * math.log(10) / abs(dim._to(dim.high) - dim._to(dim.low))


def improves(new: float, old: float, tolerance: float) -> bool:
    """Whether ``new`` lowers ``old`` by more than ``tolerance`` of it (any finite score improves on inf).

    >>> improves(0.98, 1.0, 0.01), improves(0.995, 1.0, 0.01), improves(5.0, math.inf, 0.01)
    (True, False, True)
    """
    if math.isinf(old):
        return math.isfinite(new)
    return new < old - tolerance * abs(old)


def _run(
    trials: list[tuple[Slot, tuple[float, ...]]], grid: Grid, out: Any, select: str, options: dict[str, Any]
) -> pd.DataFrame:
    """Run every trial on its study's tuning seeds (a run two trials share, once) and score each."""
    jobs = [job for slot, point in trials for job in slot.jobs(point)]
    planned = keyed(jobs, "tune", grid.source)
    unique = list({job["run_key"]: job for job in planned}.values())
    table = run_jobs(unique, out, **options)
    scores = scores_by_run(table, select)
    at = 0
    for slot, point in trials:
        mine = planned[at : at + len(slot.seeds)]
        at += len(slot.seeds)
        known = [job["run_key"] for job in mine if job["run_key"] in scores.index]
        slot.tried[point] = {
            "job": {k: v for k, v in mine[0].items() if k not in ("seed", "run_key", "phase", "config")},
            "score": max(scores.loc[known, "score"]) if len(known) == len(mine) else math.inf,
            "resolution": statistics.median(scores.loc[known, "resolution"]) if known else math.nan,
        }
    return table


def scores_by_run(table: pd.DataFrame, select: str) -> pd.DataFrame:
    """Each run's :func:`score` and resolution, indexed by run key (vectorised where it can be)."""
    column = "val_loss" if select == "validation" else None
    if select == "time" or (column and (column not in table or table[column].isna().all())):
        rows = {key: run for key, run in table.groupby("run_key", sort=False)}  # (a missing val_loss: its error)
        return pd.DataFrame(
            {"score": [score(r, select) for r in rows.values()], "resolution": [resolution(r) for r in rows.values()]},
            index=list(rows),
        )
    return finals_by_run(table, "run_key", column).rename(columns={"final": "score"})


def score(run: pd.DataFrame, select: str) -> float:
    """A tuning run's score: its final objective (floored at its resolution, inf if diverged), its steps
    to the default target (``select="time"``) or its final validation loss (``"validation"``)."""
    if select == "time":
        return reach(run).steps
    return validation(run) if select == "validation" else final(run)


def _choice(slot: Slot, select: str) -> dict[str, Any]:
    trial = slot.tried[slot.centre]
    edges = {}
    for i, dim in enumerate(slot.dims):
        values = {p[i] for p in slot.tried}
        if len(values) > 1 and slot.centre[i] in (min(values), max(values)):
            edges[dim.name] = round(dim.at(slot.centre[i]), 12)
    return {
        "job": trial["job"],
        "score": trial["score"],
        "select": select,
        "resolution": trial["resolution"],
        "study": slot.study,
        "trials": len(slot.tried),
        "state": "still improving" if slot.state == "capped" and slot.moved else slot.state,
        "explored": slot.explored,
        "edges": edges,
    }
