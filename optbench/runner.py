"""The runner: (problem, optimizer, settings) -> one tidy trajectory table.

Training records into lists of 0-d tensors and Python numbers; the only host syncs are a
non-finite check every ``CHECK_EVERY`` steps (at a recorded point) and one at the end, so
recording never stalls the hot loop. The DataFrame is built once, after training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from optbench.errors import InvalidValueError, OptbenchError, PluginError
from optbench.options import resolve_settings, validate_lr, validate_positive_int
from optbench.plugins import one_line
from optbench.registry import OPTIMIZERS, PROBLEMS, Entry
from optbench.results import table_value

CHECK_EVERY = 32  # steps between non-finite checks: a diverged run wastes at most this many steps


@dataclass(frozen=True)
class RunSpec:
    """A validated run: entries, resolved settings, seed and schedule."""

    problem: Entry
    optimizer: Entry
    problem_options: Mapping[str, Any]
    hyperparameters: Mapping[str, Any]  # resolved, ``lr`` included
    seed: int = 0
    epochs: int = 100
    batch_size: int | None = None  # None: the optimizer's default (full batch unless it declares one)
    eval_every: int | None = None


@dataclass
class Trajectory:
    epoch: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    loss: list[torch.Tensor] = field(default_factory=list)
    metrics: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    status: str = "ok"
    message: str = ""
    checked: int = 0  # records already known to be finite


def prepare(
    problem: str = "linreg",
    optimizer: str = "gd",
    *,
    lr: Any = None,
    epochs: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    eval_every: int | None = None,
    problem_options: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> RunSpec:
    """Validate a run's settings without running it; raises :class:`optbench.errors.OptbenchError`.

    Text values (from the CLI) are converted by the type of each setting's default. ``flags`` names
    the CLI flags in messages (``{"opt": "--opt", "problem_opt": "--problem-opt"}``).
    """
    flags = {"opt": "--opt", "problem_opt": "--problem-opt", **(flags or {})}
    problem_entry = PROBLEMS.get(problem)
    optimizer_entry = OPTIMIZERS.get(optimizer)
    given = dict(hyperparameters or {})
    if lr is not None:
        given["lr"] = validate_lr(lr)
    settings = resolve_settings(optimizer_entry, given, flags["opt"])
    if "lr" in settings and lr is None:
        settings["lr"] = validate_lr(settings["lr"])
    options = resolve_settings(problem_entry, dict(problem_options or {}), flags["problem_opt"])
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidValueError(f"--seed {seed!r} is out of range; expected a whole number >= 0")
    validate_positive_int(epochs, "--epochs")
    if batch_size is not None:
        validate_positive_int(batch_size, "--batch-size")
    if eval_every is not None:
        validate_positive_int(eval_every, "--eval-every")
    return RunSpec(problem_entry, optimizer_entry, options, settings, seed, epochs, batch_size, eval_every)


def run(
    problem: str = "linreg",
    optimizer: str = "gd",
    *,
    lr: float | None = None,
    epochs: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    eval_every: int | None = None,
    problem_options: Mapping[str, Any] | None = None,
    **hyperparameters: Any,
) -> pd.DataFrame:
    """Run one optimizer on one problem and return its trajectory, one row per recorded point.

    ``lr`` and any other ``hyperparameters`` go to the optimizer (its defaults fill the rest);
    ``problem_options`` go to the problem. Step 0 and every epoch end are recorded, plus every
    ``eval_every`` steps. A run whose loss becomes NaN or infinite stops with status ``diverged``;
    an exception during training gives status ``error`` and its ``message``. Neither raises.

    >>> df = run("linreg", "gd", lr=0.1, epochs=100, seed=0)
    >>> df[["step", "loss"]].iloc[[0, -1]].round(3).to_dict("list")
    {'step': [0, 100], 'loss': [6.637, 0.081]}
    """
    spec = prepare(
        problem,
        optimizer,
        lr=lr,
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        eval_every=eval_every,
        problem_options=problem_options,
        hyperparameters=hyperparameters,
    )
    return execute(spec)


def execute(spec: RunSpec, on_record: Callable[[int, Any], None] | None = None) -> pd.DataFrame:
    """Run a prepared :class:`RunSpec`; the same spec always gives the same losses, bit for bit.

    ``on_record(step, problem)``, if given, is called at every recorded point (under no_grad), e.g.
    to snapshot parameters for an animation.
    """
    with torch.random.fork_rng(devices=[]):  # anything drawing from the global RNG is seeded too
        torch.manual_seed(spec.seed)
        problem = build(spec.problem, {"seed": spec.seed, **spec.problem_options})
        n = check_problem(spec.problem, problem)
        batch_size = resolve_batch_size(spec, n)
        opt = build(spec.optimizer, spec.hyperparameters, list(problem.parameters()))
        shuffle = torch.Generator().manual_seed(spec.seed)
        trajectory = train(problem, opt, spec.epochs, batch_size, spec.eval_every, shuffle, on_record)
    return to_frame(spec, problem, batch_size, trajectory)


def resolve_batch_size(spec: RunSpec, n: int) -> int:
    """The run's batch size: its own, else its optimizer's default, else the full training set."""
    batch_size = spec.batch_size or spec.optimizer.batch_size or n
    if batch_size > n:
        raise InvalidValueError(
            f"--batch-size {batch_size} is larger than the {n} training examples of "
            f"{spec.problem.name!r}; expected 1 to {n}"
        )
    return batch_size


def build(entry: Entry, settings: Mapping[str, Any], *args: Any) -> Any:
    """``entry.target(*args, **settings)``, with a constructor's failure as one line naming the entry."""
    try:
        return entry.target(*args, **settings)
    except OptbenchError:
        raise
    except (TypeError, ValueError) as exc:
        origin = "" if entry.source == "built-in" else f" ({entry.source})"
        raise InvalidValueError(f"{entry.kind} {entry.name!r}{origin} rejected its settings: {exc}") from None
    except Exception as exc:
        raise PluginError(f"{entry.kind} {entry.name!r} ({entry.source}) failed to build: {one_line(exc)}") from None


def check_problem(entry: Entry, problem: Any) -> int:
    """Check a built problem against the contract (:mod:`optbench.problems.base`); return ``n_train``."""
    missing = [m for m in ("parameters", "loss") if not callable(getattr(problem, m, None))]
    n = getattr(problem, "n_train", None)
    if missing or isinstance(n, bool) or not isinstance(n, int) or n < 1:
        lacks = ", ".join([f"{m}()" for m in missing] + ([] if isinstance(n, int) and n >= 1 else ["n_train >= 1"]))
        raise PluginError(f"problem {entry.name!r} ({entry.source}) does not meet the problem contract: no {lacks}")
    return n


def train(
    problem: Any,
    opt: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    eval_every: int | None,
    shuffle: torch.Generator,
    on_record: Callable[[int, Any], None] | None = None,
) -> Trajectory:
    """The training loop; records step 0, each epoch end and every ``eval_every`` steps."""
    n = problem.n_train
    full_batch = batch_size >= n
    steps_per_epoch = -(-n // batch_size)
    batch: torch.Tensor | None = None

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = problem.loss(batch)
        loss.backward()
        return loss

    out = Trajectory()
    step, elapsed = 0, 0.0
    _record(out, problem, 0.0, 0, 0.0, on_record)
    try:
        for _ in range(epochs):
            batches = [None] if full_batch else torch.randperm(n, generator=shuffle).split(batch_size)
            for i, batch in enumerate(batches, start=1):  # noqa: B007 (closure reads `batch`)
                start = time.perf_counter()
                opt.step(closure)
                elapsed += time.perf_counter() - start
                step += 1
                if i == len(batches) or (eval_every and step % eval_every == 0):
                    _record(out, problem, step / steps_per_epoch, step, elapsed, on_record)
                    if step - out.step[out.checked] >= CHECK_EVERY and not _all_finite(out):
                        return out
    except Exception as exc:  # a failing optimizer is a result of the run, reported with its message
        out.status, out.message = "error", f"{type(exc).__name__}: {exc}"
    _all_finite(out)
    return out


def _record(
    out: Trajectory,
    problem: Any,
    epoch: float,
    step: int,
    elapsed: float,
    on_record: Callable[[int, Any], None] | None,
) -> None:
    with torch.no_grad():  # so the recorded tensors hold no graph: no detach() needed
        out.loss.append(problem.loss())
        metrics = problem.metrics() if hasattr(problem, "metrics") else {}  # optional in the contract
        for key, value in metrics.items():
            out.metrics.setdefault(key, []).append(value)
        if on_record is not None:
            on_record(step, problem)
    out.epoch.append(epoch)
    out.step.append(step)
    out.time_s.append(elapsed)


def _all_finite(out: Trajectory) -> bool:
    """Check the unchecked records (one host sync); on a non-finite loss, cut after it and mark diverged."""
    finite = torch.isfinite(torch.stack(out.loss[out.checked :]))
    if finite.all():
        out.checked = len(out.loss) - 1
        return True
    keep = out.checked + int(finite.logical_not().nonzero()[0]) + 1  # keep the first non-finite point
    for column in (out.epoch, out.step, out.time_s, out.loss, *out.metrics.values()):
        del column[keep:]
    out.status = "diverged"
    out.message = f"loss became {float(out.loss[-1])} at step {out.step[-1]}"
    return False


def run_settings(spec: RunSpec, batch_size: int) -> dict[str, Any]:
    """The columns that describe a run, as table cells, in table order."""
    settings = {"problem": spec.problem.name, "optimizer": spec.optimizer.name, "seed": spec.seed}
    settings |= {"lr": spec.hyperparameters.get("lr", float("nan"))}
    settings |= {k: v for k, v in spec.hyperparameters.items() if k != "lr"}
    settings |= {f"problem_{k}": v for k, v in spec.problem_options.items()}
    settings |= {"batch_size": batch_size}
    return {k: table_value(v) for k, v in settings.items()}


def to_frame(spec: RunSpec, problem: Any, batch_size: int, out: Trajectory) -> pd.DataFrame:
    """The tidy table: run settings repeated on every row, then the recorded columns."""
    rows = len(out.step)
    optimum = problem.optimum if getattr(problem, "optimum", None) is not None else float("nan")
    frame = {k: [v] * rows for k, v in run_settings(spec, batch_size).items()}
    frame |= {
        "epoch": out.epoch,
        "step": out.step,
        "loss": torch.stack(out.loss).double().tolist(),
        "optimum": [float(optimum)] * rows,
    }
    frame |= {k: torch.stack(v).double().tolist() for k, v in out.metrics.items()}
    frame |= {"time_s": out.time_s, "status": [out.status] * rows, "message": [out.message] * rows}
    return pd.DataFrame(frame)
