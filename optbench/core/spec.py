"""A run, validated: :class:`RunSpec` and :func:`prepare`, and what building a run from one needs.

:func:`prepare` checks a run's names and settings without running anything (the problem's options
and the optimizer's hyperparameters against their classes, the run settings of
:mod:`optbench.settings.declared`, the device against this machine). The core trains specs
(:mod:`optbench.core.engine`); :mod:`optbench.core.runner` is the public entrance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optbench.errors import InvalidValueError, PluginError
from optbench.registry import OPTIMIZERS, PROBLEMS, Entry
from optbench.registry.entries import build as build  # re-exported: how the core builds problems
from optbench.results.schema import table_value
from optbench.settings import declared, validate
from optbench.settings.options import resolve_settings, scaled_epochs, validate_device_name, validate_lr


@dataclass(frozen=True)
class RunSpec:
    """A validated run: its entries, resolved options and hyperparameters, seed and run settings.

    ``settings`` holds every run setting of :data:`optbench.settings.declared.SETTINGS`, resolved;
    each is also an attribute (``spec.epochs``, ``spec.warmup_steps``).
    """

    problem: Entry
    optimizer: Entry
    problem_options: Mapping[str, Any]
    hyperparameters: Mapping[str, Any]  # resolved, ``lr`` included
    seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=declared.defaults)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def prepare(
    problem: str = "linreg",
    optimizer: str = "gd",
    *,
    lr: Any = None,
    seed: int = 0,
    problem_options: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
    **settings: Any,
) -> RunSpec:
    """Validate a run's settings without running it; raises :class:`optbench.errors.OptbenchError`.

    ``settings`` are the run settings (``epochs``, ``batch_size``, ``eval_every``, ``schedule``,
    ``warmup_steps``, ``device``: :data:`optbench.settings.declared.SETTINGS`). Text values (from the
    CLI) are converted by the type of each setting's default. ``flags`` names the CLI flags in messages
    (``{"opt": "--opt", "problem_opt": "--problem-opt"}``; a run setting's key, e.g. ``"epochs"``,
    names where that value came from).
    """
    flags = {"opt": "--opt", "problem_opt": "--problem-opt", **(flags or {})}
    problem_entry = PROBLEMS.get(problem)
    optimizer_entry = OPTIMIZERS.get(optimizer)
    given = dict(hyperparameters or {})
    named = next((k for k in given if optimizer_entry.aliases().get(k, k) == "lr"), None)  # torch-muon.lr, too
    if lr is not None and named is not None:
        raise InvalidValueError(
            f"--lr {lr} and {flags['opt']} {named}={given[named]} both set the learning rate; give only one of them"
        )
    if lr is not None:
        known = optimizer_entry.hyperparameters()
        if "lr" not in known and not optimizer_entry.accepts_any_keyword():
            raise InvalidValueError(
                f"--lr {lr}: optimizer {optimizer_entry.name!r} takes no learning rate (its settings: "
                f"{', '.join(sorted(known)) or 'none'}); leave --lr out or set one of those with {flags['opt']}"
            )
        given["lr"] = validate_lr(lr)
    resolved = resolve_settings(optimizer_entry, given, flags["opt"])
    if resolved.get("lr") is not None and lr is None:  # a default of None: the class chooses its own
        resolved["lr"] = validate_lr(resolved["lr"])
    options = resolve_settings(problem_entry, dict(problem_options or {}), flags["problem_opt"])
    if not isinstance(seed, int) or isinstance(seed, bool):  # text is for flags; the API takes numbers
        raise InvalidValueError(f"--seed {seed!r} is not a whole number; expected e.g. 0")
    validate.seed(seed)
    run = declared.resolve(settings, lambda name: flags.get(name, declared.flag(name)))
    run["epochs"] = scaled_epochs(run["epochs"])  # OPTBENCH_EPOCHS_SCALE, for quick looks
    run["device"] = validate_device(run["device"])
    batch = validate.default_batch(run["batch_size"], optimizer_entry.batch_size)  # else the problem's
    validate.memory(problem_entry, options, dict(problem_options or {}), batch, flags["problem_opt"])
    return RunSpec(problem_entry, optimizer_entry, options, resolved, seed, run)


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


def resolve_batch_size(spec: RunSpec, n: int) -> int:
    """The run's batch size: its own, else its optimizer's default, else its problem's (each at most
    the training set: sgd's 10 on a problem with one row is full batch), else the full training set."""
    if spec.batch_size is None:
        return min(validate.default_batch(spec.optimizer.batch_size, spec.problem.batch_size) or n, n)
    batch_size = spec.batch_size
    if batch_size > n:
        raise InvalidValueError(
            f"--batch-size {batch_size} is larger than the {n} training examples of "
            f"{spec.problem.name!r}; expected 1 to {n}"
        )
    return batch_size


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
    its settings (:mod:`optbench.results.schema`): names, hyperparameters, problem options and the run
    settings (:func:`optbench.settings.declared.columns`; the batch size as resolved)."""
    settings = {"problem": spec.problem.name, "optimizer": spec.optimizer.name, "seed": spec.seed}
    settings |= {"lr": spec.hyperparameters.get("lr", float("nan"))}
    settings |= {k: v for k, v in spec.hyperparameters.items() if k != "lr"}
    settings |= {f"problem_{k}": v for k, v in spec.problem_options.items()}
    settings |= declared.columns({**spec.settings, "batch_size": batch_size})
    return {k: table_value(v) for k, v in settings.items()}
