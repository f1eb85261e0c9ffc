"""The training loop: one for every run, alone or stacked (see :mod:`optbench.core.engine`).

Every step zeroes the gradients, computes the loss, calls ``backward()`` and then ``step(closure)``
(``step()`` where it takes no argument). The closure returns that loss without recomputing it
unless the optimizer moved the parameters or touched the gradients since, so optimizers that ignore
the closure, call it once (torch.optim) or call it repeatedly (LBFGS, SAM-style) all see the right
gradients, and none pays for a second backward. The only host syncs are the non-finite check every
``CHECK_EVERY`` steps and the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from optbench.core.forms import Alone, Stacked
from optbench.core.spec import RunSpec
from optbench.core.threads import seconds_per_step
from optbench.optimizers.protocol import enters_train_mode, has_modes, step_takes_closure

Tensor = torch.Tensor
CHECK_EVERY = 32  # steps between non-finite checks: a diverged run wastes at most this many steps
CHECK_STEPS = 32  # a stacked group's spot check of a class declared elementwise trains this many steps alone

# Who hears of each recorded point: (step, total steps, the runs' losses there, not yet on the host).
Progress = Callable[[int, int, Tensor], None]


@dataclass
class Record:
    """What :func:`train` recorded: one entry per recorded point, losses and metrics as (K,) tensors."""

    epoch: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    grad_evals: list[int] = field(default_factory=list)  # gradient evaluations the optimizer used so far
    loss: list[Tensor] = field(default_factory=list)
    metrics: dict[str, list[Tensor]] = field(default_factory=dict)
    step_times: list[float] = field(default_factory=list)  # wall time of each optimizer step
    time_s: list[float] | None = None  # per record; None: from its own step times (times())
    status: str = "ok"
    message: str = ""
    checked: int = 0  # records already checked for non-finite losses
    dead: Tensor | None = None  # (K,) which runs have had a non-finite loss
    peak: Tensor | None = None  # (K,) the largest training loss any step computed: a blow-up between records

    def add(self, form: Any, epoch: float, step: int, losses: Tensor | None = None, evals: int | None = None) -> None:
        """Record the runs' full training losses (``losses`` when the loop has them already) and metrics;
        ``evals``: gradient evaluations so far (default: one a step)."""
        with torch.no_grad():  # the recorded tensors hold no graph
            loss = form.losses() if losses is None else losses
            metrics = form.metrics()
        self.loss.append(loss)
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append(value)
        self.epoch.append(epoch)
        self.step.append(step)
        self.grad_evals.append(step if evals is None else evals)

    def all_diverged(self) -> bool:
        """One host sync: has every run's loss been non-finite at some point? (Every CHECK_EVERY steps.)"""
        bad = (~torch.isfinite(torch.stack(self.loss[self.checked :]))).any(dim=0)
        self.dead = bad if self.dead is None else self.dead | bad
        self.checked = len(self.loss)
        return bool(self.dead.all())

    def times(self) -> list[float]:
        """time_s at each record: its step count times the run's seconds per step, the median of timed
        windows (:func:`optbench.core.threads.seconds_per_step`)."""
        if self.time_s is not None:
            return self.time_s
        rate = seconds_per_step(self.step_times)
        return [step * rate for step in self.step]


def train(
    form: Alone | Stacked,
    optimizers: list[Any],
    schedulers: list[Any],
    spec: RunSpec,
    batch_size: int,
    seeds: list[int],
    on_record: Callable[[int], None] | None,
    max_steps: int | None = None,
    progress: Progress | None = None,
) -> Record:
    """The training loop; records step 0, each epoch end and every ``eval_every`` steps (with
    ``records="ends"``: step 0, the last step and the first epoch end past :data:`CHECK_STEPS`, the
    point where a stacked group's spot check compares it with a run alone)."""
    n = form.n_train
    steps_per_epoch = -(-n // batch_size)
    fresh = form.fresh  # every step its own batch, drawn by the problem: an epoch draws n rows
    shufflers = [torch.Generator().manual_seed(s) for s in seeds] if batch_size < n and not fresh else []
    clock = _Clock(spec.device)
    # "again": gradient evaluations beyond the one a step, where the optimizer's closure needed fresh ones
    state: dict[str, Any] = {"idx": None, "losses": None, "versions": (), "again": 0}
    # Full batch: the loss recorded after a step is the loss the next step's backward computes, at the
    # same parameters. Computing that backward at record time (inside the step's clock) saves one
    # forward pass a step; the recorded numbers are the same bits. With fresh data likewise: the loss
    # recorded after a step is the next batch's, which the run has not trained on (an unbiased estimate
    # of the expected loss); drawing it is part of the step's time, as loading data is.
    full_batch = batch_size >= n or fresh
    ready = False  # the gradients at the current parameters are computed already

    def gradients(idx: Tensor | None) -> None:
        state["idx"] = idx
        state["losses"] = form.gradients(idx)
        state["versions"] = form.versions()

    def closure() -> Tensor:
        if form.versions() != state["versions"]:  # the optimizer moved since the core's own backward
            with torch.enable_grad():
                gradients(state["idx"])
            state["again"] += 1  # a gradient evaluation the optimizer pays for
        return state["losses"].sum()

    steppers = [
        (lambda o=opt: o.step(closure)) if form.passes_closure and step_takes_closure(opt) else opt.step
        for opt in optimizers
    ]
    with torch.no_grad():  # schedule-free: it steps in train mode, and is evaluated in eval mode (its average)
        modal = [opt for opt in optimizers if has_modes(opt) and enters_train_mode(opt)]
    if modal:
        full_batch = False  # the loss recorded is at the evaluation point, not where the gradients were
    schedulers = [s for s in schedulers if s is not None]
    out = Record()
    step = checked_at = 0
    total = spec.epochs * steps_per_epoch
    every_point = spec.records != "ends"
    probe = 0  # with records="ends": the step of the point recorded between the ends
    record = _recorder(out, form, modal, on_record)
    if fresh:
        form.draw(0, seeds, batch_size)
    record(0.0, 0)
    try:
        for _ in range(spec.epochs):
            if shufflers:
                order = torch.stack([torch.randperm(n, generator=g) for g in shufflers]).to(spec.device)
                batches: list[Tensor | None] = list(order.split(batch_size, dim=1))
            else:
                batches = [None] * (steps_per_epoch if fresh else 1)
            for i, idx in enumerate(batches, start=1):
                clock.start()
                if not ready:
                    gradients(idx)
                for step_once in steppers:
                    step_once()
                for scheduler in schedulers:
                    scheduler.step()
                if fresh:
                    form.draw(step + 1, seeds, batch_size)  # the next step's batch (steps so far: step + 1)
                if full_batch:
                    gradients(None)
                ready = full_batch
                clock.stop()
                losses = state["losses"].detach()  # (the peak: outside the clock, and no host sync)
                out.peak = losses.clone() if out.peak is None else torch.maximum(out.peak, losses)
                step += 1
                if i == len(batches) and not every_point and not probe and step >= CHECK_STEPS:
                    probe = step  # "ends": the one point between the ends, where a stack's spot check compares
                    at = True
                else:
                    at = step == total or (
                        every_point and (i == len(batches) or bool(spec.eval_every and step % spec.eval_every == 0))
                    )
                if at:
                    record(step / steps_per_epoch, step, state["losses"] if full_batch else None, step + state["again"])
                    if progress:
                        progress(step, total, out.loss[-1])
                    if step - checked_at >= CHECK_EVERY:
                        checked_at = step
                        if out.all_diverged():
                            return out
                if max_steps is not None and step >= max_steps:  # after the record at that step, if any
                    return out
    except Exception as exc:  # a failing optimizer is a result of the run, reported with its message
        out.status, out.message = "error", f"{type(exc).__name__}: {exc}" + _hint(exc)
    finally:
        out.step_times = clock.seconds()
    return out


def _recorder(
    out: Record, form: Alone | Stacked, modal: list[Any], on_record: Callable[[int], None] | None
) -> Callable[..., None]:
    """``out.add`` (and ``on_record``, an animation's snapshot) at the optimizers' evaluation point:
    each modal optimizer in eval mode meanwhile."""

    def record(epoch: float, step: int, losses: Tensor | None = None, evals: int | None = None) -> None:
        switch = modal if step else []  # before the first step both points are the start (and no state exists)
        with torch.no_grad():  # modes move parameters in place
            for opt in switch:
                opt.eval()
        out.add(form, epoch, step, losses, evals)
        if on_record:
            on_record(step)
        with torch.no_grad():
            for opt in switch:
                opt.train()

    return record


NO_GRAD_HINT = (
    " (hint: an optimizer changes its parameters in place, which autograd refuses while it records: "
    "decorate step() with @torch.no_grad(), as torch.optim's optimizers do)"
)


def _hint(exc: Exception) -> str:
    """A hint for the mistake behind a common error of hand-written optimizers, else nothing."""
    text = str(exc)
    if "leaf Variable that requires grad is being used in an in-place operation" in text:
        return NO_GRAD_HINT
    return ""


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
