"""The runner: (problem, optimizer, settings) -> one tidy trajectory table.

:func:`prepare` validates a run's settings into a :class:`RunSpec` without running anything;
:func:`execute` runs specs through the training core (:mod:`optbench.core.engine`), where a single run
is a batch of one; :func:`run` does both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from optbench.core.schedules import validate_schedule
from optbench.errors import InvalidValueError, OptbenchError, PluginError
from optbench.registry import OPTIMIZERS, PROBLEMS, Entry
from optbench.registry.plugins import one_line
from optbench.results.schema import label_table, table_value
from optbench.settings import validate
from optbench.settings.options import resolve_settings, scaled_epochs, validate_device_name, validate_lr


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
    device: str = "cpu"
    schedule: str = "constant"
    warmup_steps: int = 0


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
    device: str = "cpu",
    schedule: str = "constant",
    warmup_steps: int = 0,
) -> RunSpec:
    """Validate a run's settings without running it; raises :class:`optbench.errors.OptbenchError`.

    Text values (from the CLI) are converted by the type of each setting's default. ``flags`` names
    the CLI flags in messages (``{"opt": "--opt", "problem_opt": "--problem-opt"}``).
    """
    flags = {"opt": "--opt", "problem_opt": "--problem-opt", **(flags or {})}
    problem_entry = PROBLEMS.get(problem)
    optimizer_entry = OPTIMIZERS.get(optimizer)
    given = dict(hyperparameters or {})
    if lr is not None and "lr" in given:
        raise InvalidValueError(
            f"--lr {lr} and {flags['opt']} lr={given['lr']} both set the learning rate; give only one of them"
        )
    if lr is not None:
        given["lr"] = validate_lr(lr)
    settings = resolve_settings(optimizer_entry, given, flags["opt"])
    if "lr" in settings and lr is None:
        settings["lr"] = validate_lr(settings["lr"])
    options = resolve_settings(problem_entry, dict(problem_options or {}), flags["problem_opt"])
    if not isinstance(seed, int) or isinstance(seed, bool):  # text is for flags; the API takes numbers
        raise InvalidValueError(f"--seed {seed!r} is not a whole number; expected e.g. 0")
    validate.seed(seed)
    for value, label in ((epochs, "--epochs"), (batch_size, "--batch-size"), (eval_every, "--eval-every")):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidValueError(f"{label} {value!r} is not a whole number; expected e.g. 10")
    validate.whole(epochs, "--epochs")
    validate.optional_whole(batch_size, "--batch-size")
    validate.optional_whole(eval_every, "--eval-every")
    epochs = scaled_epochs(epochs)  # OPTBENCH_EPOCHS_SCALE, for quick looks
    validate_schedule(schedule, warmup_steps)
    return RunSpec(
        problem_entry,
        optimizer_entry,
        options,
        settings,
        seed,
        epochs,
        batch_size,
        eval_every,
        validate_device(device),
        schedule,
        warmup_steps,
    )


def validate_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` for a GPU that exists here; its canonical name. The spelling is
    :func:`optbench.settings.options.validate_device_name`'s (torch-free); only existence needs torch."""
    name = validate_device_name(device)
    if name == "cpu":
        return name
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise InvalidValueError(f"--device {device!r}: no CUDA GPU is available here; use --device cpu")
    if int(name.partition(":")[2]) >= count:
        raise InvalidValueError(
            f"--device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
        )
    return name


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
    device: str = "cpu",
    schedule: str = "constant",
    warmup_steps: int = 0,
    **hyperparameters: Any,
) -> pd.DataFrame:
    """Run one optimizer on one problem and return its trajectory, one row per recorded point.

    ``lr`` and any other ``hyperparameters`` go to the optimizer (its defaults fill the rest);
    ``problem_options`` go to the problem. ``device`` is ``cpu`` or ``cuda[:N]``; ``schedule``
    (constant, cosine, linear, step) and ``warmup_steps`` shape the learning rate over the run
    (:mod:`optbench.core.schedules`). Step 0 and every epoch end are recorded, plus every
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
        device=device,
        schedule=schedule,
        warmup_steps=warmup_steps,
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
    from optbench.core.engine import run_specs

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


def resolve_batch_size(spec: RunSpec, n: int) -> int:
    """The run's batch size: its own, else its optimizer's default (at most the training set: sgd's
    10 on a problem with one row is full batch), else the full training set."""
    if spec.batch_size is None:
        return min(spec.optimizer.batch_size or n, n)
    batch_size = spec.batch_size
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


def run_settings(spec: RunSpec, batch_size: int) -> dict[str, Any]:
    """The columns that describe a run, as table cells, in table order: ``seed`` (its identity), then
    its settings (:mod:`optbench.results.schema`). ``eval_every`` 0 means epoch ends only."""
    settings = {"problem": spec.problem.name, "optimizer": spec.optimizer.name, "seed": spec.seed}
    settings |= {"lr": spec.hyperparameters.get("lr", float("nan"))}
    settings |= {k: v for k, v in spec.hyperparameters.items() if k != "lr"}
    settings |= {f"problem_{k}": v for k, v in spec.problem_options.items()}
    settings |= {"batch_size": batch_size, "epochs": spec.epochs, "eval_every": spec.eval_every or 0}
    settings |= {"schedule": spec.schedule, "warmup_steps": spec.warmup_steps, "device": spec.device}
    return {k: table_value(v) for k, v in settings.items()}
