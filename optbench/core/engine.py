"""The training core: one loop for every run; a single run is a batch of one.

:func:`run_specs` groups runs that can share one tensor program (same problem and options,
optimizer, budget, schedule and device; any seeds and hyperparameters), builds each run's problem
from its seed, and trains each group through the same :func:`train` loop, in one of two forms:

- **stacked** (K >= 2 runs of a problem with the functional form and an optimizer that steps
  without a closure or the gradients' graph and is not declared ``elementwise=False``): the
  parameters of the K runs are stacked into (K, ...) tensors and the loss is ``vmap(loss_fn)``
  over them and the stacked data (or the problem's own ``stacked_loss_fn``). With an elementwise
  optimizer, runs that share a setting share one optimizer over (K_s, ...) views of the stack; each
  setting gets its own optimizer, or its own param group when the class keeps every hyperparameter
  in its param groups.
  Any other optimizer (Muon, Adafactor, a hybrid: anything that works per matrix or per tensor) is
  built once per run over that run's own views, each of its run's shape: it never sees a (K, m, n)
  stack as one tensor. The real optimizer class does every update. Only a class declared
  elementwise shares (:func:`~optbench.optimizers.protocol.is_elementwise`: no probe can prove it
  of a class whose update branches on a per-tensor statistic), and every stacked group is
  spot-checked against runs trained alone (:func:`_spot_check`).
- **alone** (one run, or runs that cannot be stacked): the problem's own tensors and ``loss()``.

The forms are :mod:`optbench.core.forms`, the loop (and its gradient protocol) :mod:`optbench.core.loop`;
this module decides, builds, falls back and writes the table.

Runs never mix: each run's loss reads only its own slice of the stack, so a run's numbers do not
depend on its neighbours. Stacked and alone are bit-identical on linreg; where vmap turns a matrix
product into a batched one (the MLP) the summation order inside a loss may differ, within 1e-6.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from optbench.core.forms import Alone, Stacked
from optbench.core.loop import CHECK_STEPS, Progress, Record, train
from optbench.core.schedules import make_scheduler
from optbench.core.spec import RunSpec, build, check_problem, resolve_batch_size, run_settings
from optbench.core.threads import for_work, intra_op, seconds_per_step
from optbench.errors import OptbenchError
from optbench.optimizers.combined import build_optimizer
from optbench.optimizers.protocol import (
    asks_for_graph,
    can_share_optimizer,
    can_stack,
    is_elementwise,
    needs_graph,
    never_stack,
)
from optbench.private_apis import large_blocks_kept
from optbench.problems.base import is_functional, parameter_roles
from optbench.registry.plugins import one_line
from optbench.results.outcomes import BLOWN_UP, blown_up
from optbench.settings import declared

Tensor = torch.Tensor


def group_key(spec: RunSpec) -> tuple[Any, ...]:
    """Runs with equal keys can share one tensor program: the same problem and options, optimizer
    and run settings (any seeds and hyperparameters)."""
    options = tuple(sorted((k, repr(v)) for k, v in spec.problem_options.items()))
    return (spec.problem.name, options, spec.optimizer.name, *declared.group_key(spec.settings))


def run_specs(
    specs: Sequence[RunSpec],
    on_record: Callable[[int, Any], None] | None = None,
    *,
    stack: bool = True,
    strict: bool = False,
    timings: dict[str, float] | None = None,
    progress: Callable[[int, int, Tensor], None] | None = None,
) -> pd.DataFrame:
    """Run every spec (stacking those that can be) and return one table, runs in the order given.

    ``timings``, if given, receives the seconds spent in each phase: ``build`` (problems from their
    seeds), ``train`` (the loops, device work included), ``calibrate`` (timing one run alone for a
    stacked group's ``time_s``) and ``table``. ``progress(step, steps, losses)``, if given, is
    called at every recorded point of every group (``losses``: the runs' losses there, a tensor not
    yet copied to the host: read it only when you show it).

    A run whose problem or optimizer cannot be built gets one ``error`` row (with ``strict``, the
    :class:`~optbench.errors.OptbenchError` is raised instead: a single run's bad input).

    ``on_record(step, problem)`` is called at every recorded point of runs trained alone, e.g. to
    snapshot parameters for an animation; it turns stacking off. ``stack=False`` trains every run
    alone (same loop, same numbers up to the rounding noted in the module docstring).
    """
    token = _TIMINGS.set(timings)
    try:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, spec in enumerate(specs):
            groups.setdefault(group_key(spec), []).append(i)
        frames = []
        for indices in groups.values():
            frame = _run_group([specs[i] for i in indices], on_record, stack and on_record is None, strict, progress)
            frame["_run"] = np.asarray(indices)[frame["_run"].to_numpy()]
            frames.append(frame)
        with _phase("table"):
            table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            if not table["_run"].is_monotonic_increasing:
                table = table.sort_values("_run", kind="stable", ignore_index=True)
            return table.drop(columns="_run")
    finally:
        _TIMINGS.reset(token)


_TIMINGS: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("optbench_timings", default=None)


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    """Add the block's wall time to the ``timings`` of the current :func:`run_specs` call, if any."""
    timings = _TIMINGS.get()
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Groups: build, decide stacked or alone, fall back to alone when a shared step fails


@dataclass
class _Run:
    """One run of a group: its spec and built problem, or why it could not start."""

    index: int
    spec: RunSpec
    problem: Any = None
    error: str = ""


def _run_group(
    specs: list[RunSpec],
    on_record: Callable[[int, Any], None] | None,
    stack: bool,
    strict: bool,
    progress: Progress | None,
) -> pd.DataFrame:
    with _phase("build"):
        runs = [_build(i, s, strict) for i, s in enumerate(specs)]
    ready = [r for r in runs if not r.error]
    frames = [_error_frame(r) for r in runs if r.error]
    note = ""
    if stack and len(ready) > 1 and _stackable(ready):
        try:
            frames.append(_train_stacked(ready, progress))
            ready = []
        except _StackFailed as failed:  # a setting or step failed, or the spot check: each alone
            ready = [_build(r.index, r.spec) for r in ready]
            note = str(failed)
    frames += [_train_alone(r, on_record, strict, progress, note) for r in ready]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _build(index: int, spec: RunSpec, strict: bool = False) -> _Run:
    """Build the run's problem from its seed (global RNG seeded too, then restored) on its device."""
    run = _Run(index, spec)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(spec.seed)  # the CPU generator alone: fast, and all fork_rng restores
            problem = build(spec.problem, {"seed": spec.seed, **spec.problem_options})
        check_problem(spec.problem, problem)
        resolve_batch_size(spec, problem.n_train)
        if spec.device != "cpu":
            _move(problem, spec)
        run.problem = problem
    except OptbenchError as exc:
        if strict:
            raise
        run.error = str(exc)
    except Exception as exc:  # a problem that raises for this seed: an error row, not an aborted batch
        run.error = f"problem {spec.problem.name!r} failed for seed {spec.seed}: {one_line(exc)}"
    return run


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Training draws from torch's global generator seeded by the run (then restored): an optimizer
    that initialises its state or its steps at random (Gravity, Kron's preconditioner updates) gives
    the same numbers every time its settings are run."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def _move(problem: Any, spec: RunSpec) -> None:
    if not is_functional(problem):
        raise OptbenchError(
            f"problem {spec.problem.name!r} offers only the object form (no params/data/loss_fn), "
            f"so it runs on the cpu only, not on {spec.device!r}"
        )
    problem.params = {k: v.detach().to(spec.device).requires_grad_() for k, v in problem.params.items()}
    problem.data = {k: v.to(spec.device) for k, v in problem.data.items()}


def optimizer_for(spec: RunSpec, leaves: list[Tensor], problem: Any) -> Any:
    """The run's optimizer over ``leaves`` (the problem's parameters, or a stack's views of them, in
    order), each given by its role (:func:`optbench.problems.base.parameter_roles`)."""
    roles = parameter_roles(problem, spec.problem.name)
    return build_optimizer(spec.optimizer, dict(spec.hyperparameters), leaves, roles, f"problem {spec.problem.name!r}")


def _stackable(runs: list[_Run]) -> bool:
    """Functional problems whose tensors have one shape for every seed, and an optimizer that may be
    stacked (:func:`~optbench.optimizers.protocol.can_stack`)."""
    first = runs[0].problem
    if not all(is_functional(r.problem) for r in runs):
        return False
    shapes = {k: v.shape for k, v in (*first.params.items(), *first.data.items())}
    for r in runs[1:]:
        if {k: v.shape for k, v in (*r.problem.params.items(), *r.problem.data.items())} != shapes:
            return False
    return all(can_stack(r.spec.optimizer, dict(r.spec.hyperparameters)) for r in runs)


def _setting_key(spec: RunSpec) -> str:
    return repr(sorted((k, repr(v)) for k, v in spec.hyperparameters.items()))


class _StackFailed(Exception):
    """A stacked group cannot go on as one program; its runs are trained alone instead."""


def error_rows(spec: RunSpec, message: str) -> pd.DataFrame:
    """The ``error`` row of a run that failed outside the loop's own error handling."""
    return _error_frame(_Run(0, spec, error=message)).drop(columns="_run")


def _error_frame(run: _Run) -> pd.DataFrame:
    """One row with status ``error`` for a run that could not start."""
    spec = run.spec
    row = run_settings(spec, spec.batch_size or spec.optimizer.batch_size or spec.problem.batch_size or 0)
    row |= {"epoch": 0.0, "step": 0, "grad_evals": 0, "loss": math.nan, "optimum": math.nan, "time_s": 0.0}
    row |= {"batch_runs": 1}
    row |= {"threads": 0, "status": "error", "message": run.error, "_run": run.index}
    return pd.DataFrame([row])


# --------------------------------------------------------------------------------------------
# Training a group


def _train_alone(
    run: _Run,
    on_record: Callable[[int, Any], None] | None,
    strict: bool = False,
    progress: Progress | None = None,
    note: str = "",
) -> pd.DataFrame:
    """One run on its own tensors; ``note`` (why a stack it was in was given up) goes to the message
    of a run that ends ok."""
    spec, problem = run.spec, run.problem
    batch_size = resolve_batch_size(spec, problem.n_train)
    form = Alone(problem, needs_graph(spec.optimizer))
    try:
        opt = optimizer_for(spec, form.leaves, problem)
        schedulers = [make_scheduler(opt, spec, -(-problem.n_train // batch_size))]
    except OptbenchError as exc:
        if strict:
            raise
        return _error_frame(_Run(run.index, spec, error=str(exc)))
    hook = None if on_record is None else (lambda step: on_record(step, problem))
    with _phase("train"), _seeded(spec.seed), intra_op(_threads_for(form)) as threads:
        record = train(form, [opt], schedulers, spec, batch_size, [spec.seed], hook, progress=progress)
    if record.status == "error" and asks_for_graph(spec.optimizer, record.message):  # AdaHessian's shape
        return _train_alone(_build(run.index, spec, strict), on_record, strict, progress, note)
    if note and record.status == "ok":
        record.message = note
    return _frame([spec], [run.index], batch_size, [problem], record, batch_runs=1, threads=threads)


def _train_stacked(runs: list[_Run], progress: Progress | None = None) -> pd.DataFrame:
    """Runs grouped by setting, one optimizer (or param group) per setting, over views of the stack."""
    by_setting: dict[str, list[_Run]] = {}
    for r in runs:
        by_setting.setdefault(_setting_key(r.spec), []).append(r)
    ordered = [r for members in by_setting.values() for r in members]
    form = Stacked([r.problem for r in ordered])
    if not _same_losses(form, ordered):  # a loss_fn that reads per-seed state from self: stacking would lie
        raise _StackFailed
    first = ordered[0].spec
    batch_size = resolve_batch_size(first, form.n_train)
    optimizers: list[Any] = []
    failed: dict[int, str] = {}  # position in the stack -> why its setting was refused
    start = 0
    for members in by_setting.values():
        spec, stop = members[0].spec, start + len(members)
        try:  # the real constructor, so its own validation applies to every setting
            if is_elementwise(spec.optimizer):
                opt = optimizer_for(spec, form.views_of(start, stop), ordered[0].problem)
                if optimizers and can_share_optimizer(optimizers[0], opt, spec.hyperparameters):
                    # a complete group of the same class over fresh views: add_param_group's checks (all
                    # defaults present, no parameter twice) hold already, and cost O(groups^2)
                    optimizers[0].param_groups.append(opt.param_groups[0])
                else:
                    optimizers.append(opt)
            else:  # one optimizer per run, over that run's own views (its shapes alone: a matrix is a matrix)
                optimizers += [optimizer_for(spec, form.views_of(j), ordered[0].problem) for j in range(start, stop)]
        except OptbenchError as exc:
            failed |= dict.fromkeys(range(start, stop), str(exc))
        start = stop
    try:
        steps_per_epoch = -(-form.n_train // batch_size)
        schedulers = [make_scheduler(opt, first, steps_per_epoch) for opt in optimizers]
    except OptbenchError:
        raise _StackFailed from None
    kept = large_blocks_kept() if first.device == "cpu" else contextlib.nullcontext()
    with _phase("train"), kept, _seeded(first.seed), intra_op(_threads_for(form)):
        record = train(
            form, optimizers, schedulers, first, batch_size, [r.spec.seed for r in ordered], None, progress=progress
        )
    if record.status == "error":  # a step that raises stacked (SAM without its closure): alone from now on
        for spec in {_setting_key(r.spec): r.spec for r in ordered}.values():
            never_stack(spec)
        raise _StackFailed
    trained = [j for j in range(len(ordered)) if j not in failed]
    frames = [_error_frame(_Run(ordered[j].index, ordered[j].spec, error=failed[j])) for j in failed]
    if trained:
        with _phase("calibrate"):
            timed = _spot_check(ordered, trained, record, batch_size)
            record.time_s = _calibrated_times(timed[0][0], record.step)
            threads = timed[0][1]
        with _phase("table"):
            frames.append(
                _frame(
                    [r.spec for r in ordered],
                    [r.index for r in ordered],
                    batch_size,
                    [r.problem for r in ordered],
                    record,
                    len(trained),
                    trained,
                    threads=threads,  # what time_s was measured under: one run alone
                )
            )
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _same_losses(form: Stacked, runs: list[_Run]) -> bool:
    """The stacked loss of a few runs equals their own ``loss()``: a ``loss_fn`` that read per-seed
    state from ``self`` would give every run the first run's numbers, which the last run shows."""
    sample = sorted({1, len(runs) // 2, len(runs) - 1})
    rows = torch.arange(min(form.n_train, SAME_ROWS))  # a batch of rows shows it as well as all of them
    with torch.no_grad():
        stacked = form.losses(rows.expand(form.k, -1).to(form.device))[sample]
        alone = torch.stack([runs[j].problem.loss(rows.to(form.device)).reshape(()) for j in sample])
    return bool(torch.allclose(stacked, alone, rtol=1e-5, atol=0, equal_nan=True))


SAME_ROWS = 64  # rows of the training set on which a stacked group's losses are compared with each run's own
CHECK_RTOL = 1e-4  # ...and its recorded losses must match the stacked run's to this, or the group runs alone


CHECKED_RUNS = 2  # runs of a stacked group of a class not declared elementwise trained alone and compared


def _spot_check(ordered: list[_Run], trained: list[int], record: Record, batch_size: int) -> list[tuple[Record, int]]:
    """Train runs of a stacked group alone and compare each with its stacked numbers; raise
    :class:`_StackFailed` (the group is trained one by one) on any difference. Returns the runs
    alone and their thread counts (the first times the group).

    Each run checked is drawn by a generator seeded with the group, so every position of a stack can
    be the one checked, the same one every time the group is run. A class that steps one copy per
    run (each over its run's own tensors: only rounding of the stacked forward and backward can
    separate it from its run alone) is checked on :data:`CHECKED_RUNS` runs (the last, whose
    scale differs most from the first's, and one drawn) over their whole runs, where a late drift
    shows. A class declared ``elementwise=True`` (torch.optim's: its update is known per element) on
    one drawn run, to the first recorded step at or after ``CHECK_STEPS``: two whole runs alone would
    cost a 10-run stack a fifth of what stacking saves."""
    drawn = random.Random(
        zlib.crc32(repr([_setting_key(ordered[j].spec) + str(ordered[j].spec.seed) for j in trained]).encode())
    )
    declared = ordered[trained[0]].spec.optimizer.elementwise is True
    if declared:
        checked = drawn.sample(trained, 1)
    else:
        others = trained[:-1]
        checked = [trained[-1], *drawn.sample(others, min(CHECKED_RUNS - 1, len(others)))]
    done = []
    for j in checked:
        run = ordered[j]
        whole = run.spec.epochs * -(-run.problem.n_train // batch_size)
        budget = _check_budget(record.step, run, batch_size) if declared else whole
        alone, threads = _run_alone_briefly(run, batch_size, budget)
        disagreement = _disagreement(record, j, alone)
        if disagreement:
            never_stack(run.spec)
            raise _StackFailed(
                f"trained alone: stacked with {len(ordered) - 1} other run(s), seed {run.spec.seed} gave "
                f"{disagreement}, so this group's runs were trained one by one"
            )
        done.append((alone, threads))
    return done


def _check_budget(steps: list[int], run: _Run, batch_size: int) -> int:
    """How far the spot check trains: to the first recorded step at or after CHECK_STEPS (the whole
    run when it is shorter), so at least one recorded point past step 0 is compared."""
    total = run.spec.epochs * -(-run.problem.n_train // batch_size)
    return min([s for s in steps if s >= CHECK_STEPS] + [total])


def _run_alone_briefly(run: _Run, batch_size: int, budget: int, fresh: bool = False) -> tuple[Record, int]:
    """The run rebuilt (unless its problem is ``fresh``, never trained) and trained alone for ``budget``
    steps through the same loop, with the threads it would have alone; its record and that thread count."""
    spec = run.spec
    form = Alone(run.problem if fresh else _build(run.index, spec).problem, needs_graph(spec.optimizer))
    opt = optimizer_for(spec, form.leaves, form.problem)
    schedulers = [make_scheduler(opt, spec, -(-form.n_train // batch_size))]
    with _seeded(spec.seed), intra_op(_threads_for(form)) as threads:
        return train(form, [opt], schedulers, spec, batch_size, [spec.seed], None, max_steps=budget), threads


def seconds_per_step_alone(spec: RunSpec, steps: int) -> tuple[float, int]:
    """One run of ``spec`` trained alone for ``steps`` optimizer steps (at most its budget), timed as
    every run is (:func:`optbench.core.threads.seconds_per_step`); its seconds per step and threads.
    Raises :class:`~optbench.errors.OptbenchError` where the run cannot be built."""
    run = _build(0, spec, strict=True)
    batch_size = resolve_batch_size(spec, run.problem.n_train)
    record, threads = _run_alone_briefly(run, batch_size, steps, fresh=True)
    return seconds_per_step(record.step_times), threads


def _threads_for(form: Alone | Stacked) -> int:
    """The thread policy's count (:mod:`optbench.core.threads`) for a form's parameters and data."""
    params = form.params.values() if isinstance(form, Stacked) else form.leaves
    data = form.data if isinstance(form, Stacked) else getattr(form.problem, "data", None)
    values = data.values() if isinstance(data, dict) else ()
    return for_work(sum(t.numel() for t in [*params, *values] if isinstance(t, torch.Tensor)))


def _disagreement(stacked: Record, j: int, alone: Record) -> str:
    """How run ``j`` of a stacked record differs from the same run trained alone ('' when it does not):
    its status, or a recorded loss beyond CHECK_RTOL of the loss's scale (NaN equal to NaN). The scale is
    the larger of the loss there and where the run started: rounding of the stacked forward pass is
    relative to the terms it sums, not to their sum, and a loss that crosses zero (a quadratic with
    a linear term) sums large terms to a small value: seed 13 of torch-adam's stack on one differed
    by 6e-8 of its start (3.6e-4 of the loss there), so identical runs trained alone or stacked by
    the history of the process."""
    if alone.status != "ok":
        return f"no error where alone it raised {alone.message}"
    at = {step: i for i, step in enumerate(stacked.step)}
    start = abs(float(alone.loss[0][0])) if alone.loss else 0.0
    start = start if math.isfinite(start) else 0.0
    for step, loss in zip(alone.step, alone.loss, strict=True):
        if step not in at:
            continue
        mine, theirs = float(stacked.loss[at[step]][j]), float(loss[0])
        if mine == theirs or (mine != mine and theirs != theirs):  # equal, infinities included; both NaN
            continue
        if not abs(mine - theirs) <= CHECK_RTOL * max(abs(theirs), start, 1e-12):
            return f"loss {mine:.6g} at step {step} where alone it gives {theirs:.6g}"
    return ""


def _calibrated_times(timed: Record, steps: list[int]) -> list[float]:
    """time_s of a stacked group: each recorded step x the seconds per step of one run timed alone
    (the spot check's run), measured as every run's is (:func:`optbench.core.threads.seconds_per_step`)."""
    rate = seconds_per_step(timed.step_times)
    return [step * rate for step in steps]


def _provenance(problem: Any) -> dict[str, str]:
    facts = getattr(problem, "provenance", None) or {}
    return {f"data_{k}": str(v) for k, v in facts.items()}


def _optimum(problem: Any) -> float:
    value = getattr(problem, "optimum", None)
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------------------------
# The table


def _frame(
    specs: list[RunSpec],
    indices: list[int],
    batch_size: int,
    problems: list[Any],
    record: Record,
    batch_runs: int,
    runs: list[int] | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """One table for the group's ``runs`` (positions in the stack; default all), built column by column
    (no per-run DataFrames), each run cut after its first non-finite loss. A problem's ``provenance``
    (facts about its data that its options do not fix) are setting columns ``data_<key>``."""
    runs = list(range(len(specs))) if runs is None else runs
    optimum = [_optimum(p) for p in problems]
    losses = torch.stack(record.loss).double().cpu().numpy()  # (points, K): the one host transfer
    finite = np.isfinite(losses)
    points = len(record.step)
    lengths, statuses, messages = [], [], []
    floor = np.nan_to_num(np.array(optimum, dtype=float), nan=0.0)
    values = losses - floor  # the objective (outcomes), at each recorded point
    blown = blown_up(values, values[0])
    # and between records: the largest loss any step computed (its batch's, or the full loss)
    peaked = np.zeros(len(floor), dtype=bool)
    if record.peak is not None:
        peak = record.peak.double().cpu().numpy() - floor
        peaked = blown_up(peak[None, :], values[0])[0] | np.isnan(peak) | np.isposinf(peak)
    for j in runs:
        bad = np.flatnonzero(~finite[:, j])
        high = np.flatnonzero(blown[:, j])
        if len(bad):
            cut = int(bad[0]) + 1
            lengths.append(cut)
            statuses.append("diverged")
            messages.append(f"loss became {losses[cut - 1, j]} at step {record.step[cut - 1]}")
        elif record.status == "ok" and (len(high) or peaked[j]):  # finite, but past the multiple of its start
            lengths.append(points)  # kept whole: where it went and whether it came back
            statuses.append("diverged")
            where = f"at step {record.step[int(high[0])]}" if len(high) else "between recorded points"
            worst = values[int(high[0]), j] if len(high) else record.peak[j].item() - floor[j]
            messages.append(f"objective {worst:.3g} {where} passed {BLOWN_UP:g}x its start ({values[0, j]:.3g})")
        else:
            lengths.append(points)
            statuses.append(record.status)
            messages.append(record.message)
    counts = np.array(lengths)
    keep = np.concatenate([np.arange(c) for c in counts])
    run = np.repeat(np.array(runs), counts)
    settings = [run_settings(specs[j], batch_size) | _provenance(problems[j]) for j in runs]
    columns: dict[str, Any] = {key: _repeat([row[key] for row in settings], counts) for key in settings[0]}
    columns["epoch"] = np.array(record.epoch)[keep]
    columns["step"] = np.array(record.step)[keep]
    columns["grad_evals"] = np.array(record.grad_evals, dtype=np.int64)[keep]
    per_example = getattr(problems[0], "tokens_per_example", None)
    if per_example:  # a language model: the data a run has trained on, in tokens
        rows = _rows_trained(np.array(record.step), problems[0], batch_size)
        columns["tokens"] = (rows * per_example).astype(float)[keep]
    columns["loss"] = losses[keep, run]
    columns["optimum"] = np.repeat(np.array(optimum, dtype=float)[runs], counts)
    for key, values in record.metrics.items():
        columns[key] = torch.stack(values).double().cpu().numpy()[keep, run]
    columns["time_s"] = np.array(record.times(), dtype=float)[keep]
    columns["batch_runs"] = np.full(len(keep), batch_runs)
    columns["threads"] = np.full(len(keep), threads)
    columns["status"] = _repeat(statuses, counts)
    columns["message"] = _repeat(messages, counts)
    columns["_run"] = np.repeat(np.array(indices)[runs], counts)
    return pd.DataFrame(columns)


def _rows_trained(steps: np.ndarray, problem: Any, batch_size: int) -> np.ndarray:
    """Training rows a run has read after each of ``steps``: a batch a step where every step draws its
    own (fresh data), else whole epochs of ``n_train`` and the batches of the epoch under way."""
    if callable(getattr(problem, "draw", None)):
        return steps * batch_size
    n = problem.n_train
    per_epoch = -(-n // batch_size)
    return steps // per_epoch * n + np.minimum(steps % per_epoch * batch_size, n)


def _repeat(values: list[Any], counts: np.ndarray) -> Any:
    """Each run's value over its rows: numbers and bools as numpy arrays; text as the column type
    pandas gives text (its arrow-backed str), repeated in arrow: pandas converting 10 M Python
    strings took seconds a column."""
    if not all(isinstance(v, str) for v in values):
        return np.repeat(np.array(values), counts)
    text = pd.Series(values[:1]).dtype
    if isinstance(text, pd.StringDtype) and text.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(values, pa.string()).take(np.repeat(np.arange(len(values)), counts)), dtype=text)
    return np.repeat(np.array(values, dtype=object), counts)
