"""The vectorized many-run engine: K runs of one problem and one optimizer as one tensor program.

Runs that share a problem (and its options), an optimizer, epochs, batch size and recording
schedule, and differ in seed and hyperparameters, are stacked: K datasets and K parameter copies,
one forward and one backward for all, hyperparameters as (K, 1, ...) tensors. The update rules
below reproduce torch.optim's (and gd's) arithmetic, so each run's losses equal a run on its own
to float rounding (tested at rtol 1e-5). It is used where :func:`supports` says so: a problem with
a ``stack(seeds, **options)`` classmethod and an optimizer listed in :data:`UPDATES` with settings
it handles. Everything else runs one by one, with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from optbench.optimizers.gd import GradientDescent
from optbench.runner import CHECK_EVERY, RunSpec, resolve_batch_size, run_settings

Tensor = torch.Tensor


def _column(values: Sequence[float], like: Tensor) -> Tensor:
    """One value per run, shaped to broadcast over a (K, ...) parameter."""
    return torch.tensor(values, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))


class BatchedGD:
    """gd and sgd: ``p -= lr * grad``, with lr per run."""

    @staticmethod
    def accepts(hp: dict[str, Any]) -> bool:
        return set(hp) == {"lr"}

    def __init__(self, params: list[Tensor], hps: list[dict[str, Any]]):
        self.params = params
        self.lr = [_column([h["lr"] for h in hps], p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        for p, lr in zip(self.params, self.lr, strict=True):
            p.sub_(lr * p.grad)


class BatchedSGD:
    """torch.optim.SGD's single-tensor update: weight decay, momentum (dampening, nesterov), per run."""

    @staticmethod
    def accepts(hp: dict[str, Any]) -> bool:
        return not hp.get("maximize", False) and all(isinstance(v, int | float) for v in hp.values())

    def __init__(self, params: list[Tensor], hps: list[dict[str, Any]]):
        self.params = params
        self.h = [
            {k: _column([h[k] for h in hps], p) for k in ("lr", "momentum", "dampening", "weight_decay")}
            for p in params
        ]
        self.nesterov = _column([float(h["nesterov"]) for h in hps], params[0]).bool()
        self.any_momentum = any(h["momentum"] != 0 for h in hps)
        self.buffers: list[Tensor | None] = [None] * len(params)

    @torch.no_grad()
    def step(self) -> None:
        for i, (p, h) in enumerate(zip(self.params, self.h, strict=True)):
            grad = p.grad + h["weight_decay"] * p
            if self.any_momentum:
                if self.buffers[i] is None:
                    self.buffers[i] = grad.clone()
                else:
                    self.buffers[i].mul_(h["momentum"]).add_((1 - h["dampening"]) * grad)
                buf = self.buffers[i]
                with_momentum = torch.where(self.nesterov, grad + h["momentum"] * buf, buf)
                grad = torch.where(h["momentum"] != 0, with_momentum, grad)
            p.sub_(h["lr"] * grad)


class BatchedAdam:
    """torch.optim.Adam's single-tensor update (no amsgrad), per-run lr, betas, eps, weight decay."""

    @staticmethod
    def accepts(hp: dict[str, Any]) -> bool:
        flags = ("amsgrad", "maximize", "decoupled_weight_decay")
        return not any(hp.get(f, False) for f in flags) and isinstance(hp.get("betas"), tuple)

    def __init__(self, params: list[Tensor], hps: list[dict[str, Any]]):
        self.params = params
        self.h = [
            {
                "lr": _column([h["lr"] for h in hps], p).double(),
                "beta1": _column([h["betas"][0] for h in hps], p).double(),
                "beta2": _column([h["betas"][1] for h in hps], p).double(),
                "eps": _column([h["eps"] for h in hps], p),
                "weight_decay": _column([h["weight_decay"] for h in hps], p),
            }
            for p in params
        ]
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        for p, h, m, v in zip(self.params, self.h, self.m, self.v, strict=True):
            grad = p.grad + h["weight_decay"] * p
            b1, b2 = h["beta1"].to(p.dtype), h["beta2"].to(p.dtype)
            m.lerp_(grad, 1 - b1)
            v.mul_(b2).add_((1 - b2) * grad * grad)
            step_size = (h["lr"] / (1 - h["beta1"] ** self.t)).to(p.dtype)  # bias corrections in double, as torch
            correction2 = ((1 - h["beta2"] ** self.t) ** 0.5).to(p.dtype)
            p.sub_(step_size * m / (v.sqrt() / correction2 + h["eps"]))


UPDATES: dict[type, type] = {GradientDescent: BatchedGD, torch.optim.SGD: BatchedSGD, torch.optim.Adam: BatchedAdam}


def group_key(spec: RunSpec) -> tuple[Any, ...]:
    """Runs with equal keys can share one batch."""
    return (
        spec.problem.name,
        tuple(sorted(map(repr, spec.problem_options.items()))),
        spec.optimizer.name,
        spec.epochs,
        spec.batch_size,
        spec.eval_every,
    )


def supports(spec: RunSpec) -> bool:
    update = UPDATES.get(spec.optimizer.target)
    return hasattr(spec.problem.target, "stack") and update is not None and update.accepts(dict(spec.hyperparameters))


def run_batch(specs: Sequence[RunSpec], on_step: Callable[[], None] | None = None) -> pd.DataFrame:
    """Run ``specs`` (one :func:`group_key`, all :func:`supports`) together; one table, run after run."""
    first = specs[0]
    problem = first.problem.target.stack([s.seed for s in specs], **first.problem_options)
    n, k = problem.n_train, len(specs)
    batch_size = resolve_batch_size(first, n)
    params = problem.parameters()
    update = UPDATES[first.optimizer.target](params, [dict(s.hyperparameters) for s in specs])
    shufflers = [torch.Generator().manual_seed(s.seed) for s in specs] if batch_size < n else []
    steps_per_epoch = -(-n // batch_size)
    records: list[Tensor] = []
    epochs: list[float] = []
    steps: list[int] = []
    times: list[float] = []
    metrics: dict[str, list[Tensor]] = {}
    step, elapsed, checked = 0, 0.0, 0

    def record() -> None:
        with torch.no_grad():
            records.append(problem.losses())
            for key, value in problem.metrics().items():
                metrics.setdefault(key, []).append(value)
        epochs.append(step / steps_per_epoch)
        steps.append(step)
        times.append(elapsed / k)  # each run's share of the batch's optimizer time

    record()
    for _ in range(first.epochs):
        if shufflers:
            orders = torch.stack([torch.randperm(n, generator=g) for g in shufflers])
            batches: list[Tensor | None] = list(orders.split(batch_size, dim=1))
        else:
            batches = [None]
        for i, idx in enumerate(batches, start=1):
            start = time.perf_counter()
            for p in params:
                p.grad = None
            problem.losses(idx).sum().backward()
            update.step()
            elapsed += time.perf_counter() - start
            step += 1
            if i == len(batches) or (first.eval_every and step % first.eval_every == 0):
                record()
                if step - steps[checked] >= CHECK_EVERY:  # stop when every run has blown up
                    if not torch.isfinite(torch.stack(records[checked:])).any(dim=0).any():
                        break
                    checked = len(records) - 1
        else:
            if on_step:
                on_step()
            continue
        break
    return _frame(specs, problem, batch_size, torch.stack(records), metrics, epochs, steps, times)


def _frame(specs, problem, batch_size, losses, metrics, epochs, steps, times) -> pd.DataFrame:
    """One table for the whole batch, built column by column (no per-run DataFrames)."""
    losses = losses.double()
    finite = torch.isfinite(losses)
    lengths, statuses, messages = [], [], []
    for j in range(len(specs)):
        bad = (~finite[:, j]).nonzero()
        if len(bad):
            cut = int(bad[0]) + 1
            lengths.append(cut)
            statuses.append("diverged")
            messages.append(f"loss became {float(losses[cut - 1, j])} at step {steps[cut - 1]}")
        else:
            lengths.append(len(steps))
            statuses.append("ok")
            messages.append("")
    counts = np.array(lengths)
    settings = [run_settings(s, batch_size) for s in specs]
    columns: dict[str, Any] = {key: np.repeat(_array([row[key] for row in settings]), counts) for key in settings[0]}
    keep = np.concatenate([np.arange(c) for c in counts])
    run = np.repeat(np.arange(len(specs)), counts)
    columns["epoch"] = np.array(epochs)[keep]
    columns["step"] = np.array(steps)[keep]
    columns["loss"] = losses.numpy()[keep, run]
    columns["optimum"] = np.repeat(np.array(problem.optimum, dtype=float), counts)
    for key, values in metrics.items():
        columns[key] = torch.stack(values).double().numpy()[keep, run]
    columns["time_s"] = np.array(times)[keep]
    columns["status"] = np.repeat(_array(statuses), counts)
    columns["message"] = np.repeat(_array(messages), counts)
    return pd.DataFrame(columns)


def _array(values: list[Any]) -> np.ndarray:
    """Numbers and bools as their numpy types; text as objects, which pandas reads as its str type."""
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array(values)
