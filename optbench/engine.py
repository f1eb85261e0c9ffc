"""The training core: one loop for every run; a single run is a batch of one.

:func:`run_specs` groups runs that can share one tensor program (same problem and options,
optimizer, budget, schedule and device; any seeds and hyperparameters), builds each run's problem
from its seed, and trains each group through the same :func:`train` loop, in one of two forms:

- **stacked** (K >= 2 runs of a problem with the functional form and an elementwise optimizer): the
  parameters of the K runs are stacked into (K, ...) tensors and the loss is ``vmap(loss_fn)`` over
  them and the stacked data. Runs that share a setting share one optimizer over (K_s, ...) views of
  the stack; each setting gets its own optimizer, or its own param group when the class keeps every
  hyperparameter in its param groups. The real optimizer class does every update.
- **alone** (one run, or runs that cannot be stacked): the problem's own tensors and ``loss()``.

Every step zeroes the gradients, computes the loss, calls ``backward()`` and then ``step(closure)``
(``step()`` where it takes no argument). The closure returns that loss without recomputing it
unless the optimizer moved the parameters or touched the gradients since, so optimizers that ignore
the closure, call it once (torch.optim) or call it repeatedly (LBFGS, SAM-style) all see the right
gradients, and none pays for a second backward.

Runs never mix: each run's loss reads only its own slice of the stack, so a run's numbers do not
depend on its neighbours. Stacked and alone are bit-identical on linreg; where vmap turns a matrix
product into a batched one (the MLP) the summation order inside a loss may differ, within 1e-6.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from optbench.errors import OptbenchError
from optbench.optimizers.protocol import can_share_optimizer, is_elementwise, step_takes_closure
from optbench.plugins import one_line
from optbench.problems.base import is_functional
from optbench.runner import RunSpec, build, check_problem, resolve_batch_size, run_settings
from optbench.schedules import make_scheduler

Tensor = torch.Tensor
CHECK_EVERY = 32  # steps between non-finite checks: a diverged run wastes at most this many steps
CALIBRATION_STEPS = 30  # a stacked group times this many steps of one run alone to give time_s its meaning


def group_key(spec: RunSpec) -> tuple[Any, ...]:
    """Runs with equal keys can share one tensor program."""
    return (
        spec.problem.name,
        tuple(sorted((k, repr(v)) for k, v in spec.problem_options.items())),
        spec.optimizer.name,
        spec.epochs,
        spec.batch_size,
        spec.eval_every,
        spec.device,
        spec.schedule,
        spec.warmup_steps,
    )


def run_specs(
    specs: Sequence[RunSpec],
    on_record: Callable[[int, Any], None] | None = None,
    *,
    stack: bool = True,
    strict: bool = False,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Run every spec (stacking those that can be) and return one table, runs in the order given.

    ``timings``, if given, receives the seconds spent in each phase: ``build`` (problems from their
    seeds), ``train`` (the loops, device work included), ``calibrate`` (timing one run alone for a
    stacked group's ``time_s``) and ``table``.

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
            frame = _run_group([specs[i] for i in indices], on_record, stack and on_record is None, strict)
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
    specs: list[RunSpec], on_record: Callable[[int, Any], None] | None, stack: bool, strict: bool
) -> pd.DataFrame:
    with _phase("build"):
        runs = [_build(i, s, strict) for i, s in enumerate(specs)]
    ready = [r for r in runs if not r.error]
    frames = [_error_frame(r) for r in runs if r.error]
    if stack and len(ready) > 1 and _stackable(ready):
        try:
            frames.append(_train_stacked(ready))
            ready = []
        except _StackFailed:  # one run's setting or step failed: train each alone so errors stay per run
            ready = [_build(r.index, r.spec) for r in ready]
    frames += [_train_alone(r, on_record, strict) for r in ready]
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


def _move(problem: Any, spec: RunSpec) -> None:
    if not is_functional(problem):
        raise OptbenchError(
            f"problem {spec.problem.name!r} offers only the object form (no params/data/loss_fn), "
            f"so it runs on the cpu only, not on {spec.device!r}"
        )
    problem.params = {k: v.detach().to(spec.device).requires_grad_() for k, v in problem.params.items()}
    problem.data = {k: v.to(spec.device) for k, v in problem.data.items()}


def _stackable(runs: list[_Run]) -> bool:
    """Functional problems whose tensors have one shape for every seed, and an elementwise optimizer."""
    first = runs[0].problem
    if not all(is_functional(r.problem) for r in runs):
        return False
    shapes = {k: v.shape for k, v in (*first.params.items(), *first.data.items())}
    for r in runs[1:]:
        if {k: v.shape for k, v in (*r.problem.params.items(), *r.problem.data.items())} != shapes:
            return False
    settings = {_setting_key(r.spec): r.spec for r in runs}.values()
    return all(is_elementwise(s.optimizer, dict(s.hyperparameters)) for s in settings)


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
    row = run_settings(spec, spec.batch_size or spec.optimizer.batch_size or 0)
    row |= {"epoch": 0.0, "step": 0, "loss": math.nan, "optimum": math.nan, "time_s": 0.0, "batch_runs": 1}
    row |= {"status": "error", "message": run.error, "_run": run.index}
    return pd.DataFrame([row])


# --------------------------------------------------------------------------------------------
# The two forms of a group: what the loop asks of each


class Alone:
    """One run on the problem's own tensors."""

    k = 1
    passes_closure = True  # to a step that takes one; it costs nothing unless the optimizer moved first

    def __init__(self, problem: Any):
        self.problem = problem
        self.leaves = [p for p in problem.parameters()]
        self.n_train = problem.n_train
        self.loss: Tensor | None = None

    def gradients(self, idx: Tensor | None) -> Tensor:
        """Zero the gradients, compute the batch loss and backward; return the loss."""
        for p in self.leaves:
            p.grad = None
        loss = self.problem.loss(None if idx is None else idx[0])
        loss.backward()
        return loss

    def evaluate(self) -> tuple[Tensor, dict[str, Tensor]]:
        loss = self.problem.loss().reshape(1)
        metrics = self.problem.metrics() if hasattr(self.problem, "metrics") else {}  # optional in the contract
        return loss, {k: v.reshape(1) for k, v in metrics.items()}

    def versions(self) -> tuple[int, ...]:
        return tuple(t._version for p in self.leaves for t in (p, p.grad) if t is not None)


class Stacked:
    """K runs as one program: parameters and data stacked on a leading axis, ``vmap(loss_fn)``."""

    # Stacked optimizers passed the elementwise probe, which steps without a closure; several optimizers
    # share one stack, so a closure could not tell whose parameters moved.
    passes_closure = False

    def __init__(self, problems: list[Any]):
        first = problems[0]
        self.k = len(problems)
        self.n_train = first.n_train
        self.params = {k: torch.stack([p.params[k].detach() for p in problems]).requires_grad_() for k in first.params}
        self.data = {k: torch.stack([p.data[k] for p in problems]) for k in first.data}
        self._loss = torch.func.vmap(first.loss_fn, in_dims=(0, 0, 0))
        self._full_loss = torch.func.vmap(lambda p, d: first.loss_fn(p, d, None))
        self._metrics = torch.func.vmap(first.metrics_fn) if callable(getattr(first, "metrics_fn", None)) else None
        self.views: list[tuple[Tensor, str, slice]] = []  # (view of a stacked parameter, its name, its rows)
        self._grads: dict[str, Tensor | None] = {}  # the gradients the views were last attached to

    def views_of(self, start: int, stop: int) -> list[Tensor]:
        """The parameters of runs ``start:stop`` as leaf views an optimizer can own (shape (stop-start, ...))."""
        out = []
        for name, p in self.params.items():
            view = p.detach()[start:stop]  # shares storage and version counter with the stacked leaf
            self.views.append((view, name, slice(start, stop)))
            out.append(view)
        return out

    def gradients(self, idx: Tensor | None) -> Tensor:
        for p in self.params.values():
            if p.grad is not None:
                p.grad.zero_()  # in place, so the views' gradients stay views of it
        losses = self._full_loss(self.params, self.data) if idx is None else self._loss(self.params, self.data, idx)
        losses.sum().backward()
        self._attach_grads()
        return losses.sum()

    def _attach_grads(self) -> None:
        """Give each view its rows of the stacked gradient (again only if that tensor or a view's grad changed)."""
        fresh = any(self._grads.get(name) is not p.grad for name, p in self.params.items())
        if fresh or any(view.grad is None for view, _, _ in self.views):  # e.g. a step that calls zero_grad()
            for view, name, rows in self.views:
                view.grad = self.params[name].grad[rows]
            self._grads = {name: p.grad for name, p in self.params.items()}

    def evaluate(self) -> tuple[Tensor, dict[str, Tensor]]:
        losses = self._full_loss(self.params, self.data)
        metrics = self._metrics(self.params, self.data) if self._metrics is not None else {}
        return losses, metrics

    def versions(self) -> tuple[int, ...]:
        return tuple(t._version for p in self.params.values() for t in (p, p.grad) if t is not None)


# --------------------------------------------------------------------------------------------
# Training a group


def _train_alone(run: _Run, on_record: Callable[[int, Any], None] | None, strict: bool = False) -> pd.DataFrame:
    spec, problem = run.spec, run.problem
    batch_size = resolve_batch_size(spec, problem.n_train)
    form = Alone(problem)
    try:
        opt = build(spec.optimizer, dict(spec.hyperparameters), form.leaves)
        schedulers = [make_scheduler(opt, spec, -(-problem.n_train // batch_size))]
    except OptbenchError as exc:
        if strict:
            raise
        return _error_frame(_Run(run.index, spec, error=str(exc)))
    hook = None if on_record is None else (lambda step: on_record(step, problem))
    with _phase("train"):
        record = train(form, [opt], schedulers, spec, batch_size, [spec.seed], hook)
    optimum = [_optimum(problem)]
    return _frame([spec], [run.index], batch_size, optimum, record, batch_runs=1)


def _train_stacked(runs: list[_Run]) -> pd.DataFrame:
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
            opt = build(spec.optimizer, dict(spec.hyperparameters), form.views_of(start, stop))
            if optimizers and can_share_optimizer(optimizers[0], opt, spec.hyperparameters):
                # a complete group of the same class over fresh views: add_param_group's checks (all
                # defaults present, no parameter twice) hold already, and cost O(groups^2)
                optimizers[0].param_groups.append(opt.param_groups[0])
            else:
                optimizers.append(opt)
        except OptbenchError as exc:
            failed |= dict.fromkeys(range(start, stop), str(exc))
        start = stop
    try:
        steps_per_epoch = -(-form.n_train // batch_size)
        schedulers = [make_scheduler(opt, first, steps_per_epoch) for opt in optimizers]
    except OptbenchError:
        raise _StackFailed from None
    with _phase("train"):
        record = train(form, optimizers, schedulers, first, batch_size, [r.spec.seed for r in ordered], None)
    if record.status == "error":
        raise _StackFailed
    trained = [j for j in range(len(ordered)) if j not in failed]
    frames = [_error_frame(_Run(ordered[j].index, ordered[j].spec, error=failed[j])) for j in failed]
    if trained:
        with _phase("calibrate"):
            record.time_s = _calibrated_times(ordered[trained[0]], batch_size, record.step)
        optimum = [_optimum(r.problem) for r in ordered]
        with _phase("table"):
            frames.append(
                _frame(
                    [r.spec for r in ordered],
                    [r.index for r in ordered],
                    batch_size,
                    optimum,
                    record,
                    len(trained),
                    trained,
                )
            )
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _same_losses(form: Stacked, runs: list[_Run]) -> bool:
    """The stacked loss of a few runs equals their own ``loss()``: a ``loss_fn`` that read per-seed
    state from ``self`` would give every run the first run's numbers, which the last run shows."""
    sample = sorted({1, len(runs) // 2, len(runs) - 1})
    with torch.no_grad():
        stacked = form.evaluate()[0][sample]
        alone = torch.stack([runs[j].problem.loss().reshape(()) for j in sample])
    return bool(torch.allclose(stacked, alone, rtol=1e-5, atol=0, equal_nan=True))


def _calibrated_times(run: _Run, batch_size: int, steps: list[int]) -> list[float]:
    """time_s of a stacked group: each recorded step x the seconds per step of one run timed alone.

    The first run is rebuilt and trained alone for up to CALIBRATION_STEPS steps through the same
    loop; the first steps (allocation, lazy initialisation) are left out of the rate.
    """
    spec = run.spec
    budget = min(CALIBRATION_STEPS, spec.epochs * -(-run.problem.n_train // batch_size))
    rebuilt = _build(run.index, spec)
    form = Alone(rebuilt.problem)
    opt = build(spec.optimizer, dict(spec.hyperparameters), form.leaves)
    schedulers = [make_scheduler(opt, spec, -(-form.n_train // batch_size))]
    timed = train(form, [opt], schedulers, spec, batch_size, [spec.seed], None, max_steps=budget)
    skip = min(len(timed.step_times) - 1, 5)
    rate = sum(timed.step_times[skip:]) / max(len(timed.step_times) - skip, 1)
    return [step * rate for step in steps]


def _optimum(problem: Any) -> float:
    value = getattr(problem, "optimum", None)
    return math.nan if value is None else float(value)


@dataclass
class Record:
    """What :func:`train` recorded: one entry per recorded point, losses and metrics as (K,) tensors."""

    epoch: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    loss: list[Tensor] = field(default_factory=list)
    metrics: dict[str, list[Tensor]] = field(default_factory=dict)
    step_times: list[float] = field(default_factory=list)  # wall time of each optimizer step
    time_s: list[float] | None = None  # per record; None: the cumulative step times up to it
    status: str = "ok"
    message: str = ""
    checked: int = 0  # records already checked for non-finite losses
    dead: Tensor | None = None  # (K,) which runs have had a non-finite loss

    def add(self, form: Any, epoch: float, step: int) -> None:
        with torch.no_grad():  # the recorded tensors hold no graph
            loss, metrics = form.evaluate()
        self.loss.append(loss)
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append(value)
        self.epoch.append(epoch)
        self.step.append(step)

    def all_diverged(self) -> bool:
        """One host sync: has every run's loss been non-finite at some point? (Every CHECK_EVERY steps.)"""
        bad = (~torch.isfinite(torch.stack(self.loss[self.checked :]))).any(dim=0)
        self.dead = bad if self.dead is None else self.dead | bad
        self.checked = len(self.loss)
        return bool(self.dead.all())

    def times(self) -> list[float]:
        """time_s at each record: the optimizer time of the steps before it."""
        if self.time_s is not None:
            return self.time_s
        elapsed = np.concatenate([[0.0], np.cumsum(self.step_times)])
        return elapsed[np.minimum(self.step, len(self.step_times))].tolist()


def train(
    form: Alone | Stacked,
    optimizers: list[Any],
    schedulers: list[Any],
    spec: RunSpec,
    batch_size: int,
    seeds: list[int],
    on_record: Callable[[int], None] | None,
    max_steps: int | None = None,
) -> Record:
    """The training loop; records step 0, each epoch end and every ``eval_every`` steps."""
    n = form.n_train
    steps_per_epoch = -(-n // batch_size)
    shufflers = [torch.Generator().manual_seed(s) for s in seeds] if batch_size < n else []
    clock = _Clock(spec.device)
    state: dict[str, Any] = {"idx": None, "loss": None, "versions": ()}

    def closure() -> Tensor:
        if form.versions() == state["versions"]:  # nothing moved since the core's own backward
            return state["loss"]
        with torch.enable_grad():
            state["loss"] = form.gradients(state["idx"])
        state["versions"] = form.versions()
        return state["loss"]

    steppers = [
        (lambda o=opt: o.step(closure)) if form.passes_closure and step_takes_closure(opt) else opt.step
        for opt in optimizers
    ]
    schedulers = [s for s in schedulers if s is not None]
    out = Record()
    step = checked_at = 0
    out.add(form, 0.0, 0)
    if on_record:
        on_record(0)
    try:
        for _ in range(spec.epochs):
            if shufflers:
                order = torch.stack([torch.randperm(n, generator=g) for g in shufflers]).to(spec.device)
                batches: list[Tensor | None] = list(order.split(batch_size, dim=1))
            else:
                batches = [None]
            for i, idx in enumerate(batches, start=1):
                clock.start()
                state["idx"] = idx
                state["loss"] = form.gradients(idx)
                state["versions"] = form.versions()
                for step_once in steppers:
                    step_once()
                for scheduler in schedulers:
                    scheduler.step()
                clock.stop()
                step += 1
                if max_steps is not None and step >= max_steps:
                    return out
                if i == len(batches) or (spec.eval_every and step % spec.eval_every == 0):
                    out.add(form, step / steps_per_epoch, step)
                    if on_record:
                        on_record(step)
                    if step - checked_at >= CHECK_EVERY:
                        checked_at = step
                        if out.all_diverged():
                            return out
    except Exception as exc:  # a failing optimizer is a result of the run, reported with its message
        out.status, out.message = "error", f"{type(exc).__name__}: {exc}"
    finally:
        out.step_times = clock.seconds()
    return out


class _Clock:
    """Wall time of each optimizer step (evaluation excluded). On CUDA, events: one sync, at the end."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.spans: list[Any] = []
        self._start: Any = None

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.spans.append((self._start, end))
        else:
            self.spans.append(time.perf_counter() - self._start)

    def seconds(self) -> list[float]:
        if not self.cuda:
            return self.spans
        torch.cuda.synchronize()
        return [a.elapsed_time(b) / 1000 for a, b in self.spans]


# --------------------------------------------------------------------------------------------
# The table


def _frame(
    specs: list[RunSpec],
    indices: list[int],
    batch_size: int,
    optimum: list[float],
    record: Record,
    batch_runs: int,
    runs: list[int] | None = None,
) -> pd.DataFrame:
    """One table for the group's ``runs`` (positions in the stack; default all), built column by column
    (no per-run DataFrames), each run cut after its first non-finite loss."""
    runs = list(range(len(specs))) if runs is None else runs
    losses = torch.stack(record.loss).double().cpu().numpy()  # (points, K): the one host transfer
    finite = np.isfinite(losses)
    points = len(record.step)
    lengths, statuses, messages = [], [], []
    for j in runs:
        bad = np.flatnonzero(~finite[:, j])
        if len(bad):
            cut = int(bad[0]) + 1
            lengths.append(cut)
            statuses.append("diverged")
            messages.append(f"loss became {losses[cut - 1, j]} at step {record.step[cut - 1]}")
        else:
            lengths.append(points)
            statuses.append(record.status)
            messages.append(record.message)
    counts = np.array(lengths)
    keep = np.concatenate([np.arange(c) for c in counts])
    run = np.repeat(np.array(runs), counts)
    settings = [run_settings(specs[j], batch_size) for j in runs]
    columns: dict[str, Any] = {key: np.repeat(_array([row[key] for row in settings]), counts) for key in settings[0]}
    columns["epoch"] = np.array(record.epoch)[keep]
    columns["step"] = np.array(record.step)[keep]
    columns["loss"] = losses[keep, run]
    columns["optimum"] = np.repeat(np.array(optimum, dtype=float)[runs], counts)
    for key, values in record.metrics.items():
        columns[key] = torch.stack(values).double().cpu().numpy()[keep, run]
    columns["time_s"] = np.array(record.times(), dtype=float)[keep]
    columns["batch_runs"] = np.full(len(keep), batch_runs)
    columns["status"] = np.repeat(_array(statuses), counts)
    columns["message"] = np.repeat(_array(messages), counts)
    columns["_run"] = np.repeat(np.array(indices)[runs], counts)
    return pd.DataFrame(columns)


def _array(values: list[Any]) -> np.ndarray:
    """Numbers and bools as their numpy types; text as objects, which pandas reads as its str type."""
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array(values)
