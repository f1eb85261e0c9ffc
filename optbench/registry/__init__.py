"""Registries of problems and optimizers: a dict, a decorator and a few functions.

Importing this package does not import torch. The built-ins are registered by import string
(:mod:`optbench.registry.builtins`), so their names, and the setting names of a built-in optimizer
(read from its class's source), are known before anything is imported; each class is imported the
first time its entry is needed, as an entry point's is. Entry points' names come from their
distributions' metadata (:mod:`optbench.registry.plugins`), so the CLI rejects a misspelt name before
torch loads. The :class:`Registry` type lives in :mod:`optbench.registry.entries`.

Tests that register temporary entries wrap them in :func:`snapshot` (or one registry's
:meth:`Registry.snapshot`), which puts everything back after the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from optbench.registry import builtins, composite, plugins
from optbench.registry.entries import IMPLEMENTATION_FLAGS, REQUIRED, Entry, Registry, first_line, is_composite
from optbench.registry.plugins import registering_from

__all__ = [
    "IMPLEMENTATION_FLAGS",
    "OPTIMIZERS",
    "PROBLEMS",
    "REQUIRED",
    "Entry",
    "Registry",
    "builtin_settings",
    "canonical_name",
    "first_line",
    "get_optimizer",
    "get_problem",
    "list_optimizers",
    "list_problems",
    "register_optimizer",
    "register_problem",
    "registering_from",
    "snapshot",
]

PROBLEMS = Registry("problem", group="optbench.problems", builtins=builtins.PROBLEMS)
OPTIMIZERS = Registry("optimizer", group="optbench.optimizers", builtins=builtins.OPTIMIZERS, composites=composite)


def builtin_settings(name: str) -> tuple[str, ...] | None:
    """The setting names of built-in optimizer ``name``, read from its class's source without
    importing anything; None for another name, where the source cannot tell, or once the class is
    imported (or replaced by a ``--plugin`` file): then the class itself is read."""
    return OPTIMIZERS.setting_names(name)


@contextlib.contextmanager
def snapshot() -> Iterator[None]:
    """Both registries and the set of loaded ``--plugin`` files as they are now, put back after the
    block: what a test registers or loads inside it does not outlive it."""
    files = plugins.loaded_files()
    with PROBLEMS.snapshot(), OPTIMIZERS.snapshot():
        try:
            yield
        finally:
            plugins.forget_files(files)


def register_problem(
    name: str,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    override: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a problem class under ``name`` (the contract: :mod:`optbench.problems.base`).

    ``description`` defaults to the docstring's first sentence; ``defaults`` override the defaults
    of the constructor's options; ``batch_size`` is the default batch size of its runs where neither
    the run nor its optimizer sets one (None: full batch).
    """
    return PROBLEMS.register(name, description=description, defaults=defaults, batch_size=batch_size, override=override)


def register_optimizer(
    name: str,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    override: bool = False,
    elementwise: bool | None = None,
    space: Mapping[str, str] | None = None,
    roles: tuple[str, ...] | None = None,
    wraps: str | None = None,
    create_graph: bool | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a torch.optim.Optimizer-shaped class under ``name``.

    ``description`` defaults to the docstring's first sentence; ``defaults`` override the
    constructor's hyperparameter defaults; ``batch_size`` is the default batch size of its runs
    (None: full batch); ``override=True`` replaces an entry of the same name; ``elementwise=True``
    declares that it updates every element on its own (runs stacked into one tensor may then share
    it), ``False`` that it must not be stacked (each run trains alone); None: its stacked runs each
    step their own copy over that run's own tensors (a matrix stays a matrix; no probe can prove a
    class elementwise, so only a declared one shares one optimizer over stacked runs). ``space`` is what a
    bench tunes for it (``{"lr": "log:1e-4:1", "momentum": "0.8:0.99"}``, :mod:`optbench.studies.spaces`).
    ``roles`` are the parameter roles it takes (``("matrix",)`` for a Muon-like method: :mod:`optbench.problems.base`;
    None: every role); a hybrid ``NAME+OTHER`` gives it those and OTHER the rest.
    ``wraps`` is the keyword a wrapper takes its base by (``"wrapped_optimizer"``: ``NAME(BASE)`` builds
    BASE, then ``NAME(params, wrapped_optimizer=base)``; None: read from the class,
    :func:`optbench.registry.composite.wrapper_keyword`). ``create_graph=True`` says its step
    differentiates the gradients (a Hessian estimate, as AdaHessian's): the core's ``backward`` keeps
    the graph for it. A class may say each of these with an ``optbench_<word>`` attribute instead.
    """
    return OPTIMIZERS.register(
        name,
        description=description,
        defaults=defaults,
        batch_size=batch_size,
        override=override,
        elementwise=elementwise,
        space=space,
        roles=roles,
        wraps=wraps,
        create_graph=create_graph,
    )


def canonical_name(name: Any) -> Any:
    """An optimizer's name as the results table records it: a composite without spaces
    (``"torch-muon + torch-adamw"`` -> ``"torch-muon+torch-adamw"``); any other name as given."""
    return composite.parse(name).text() if is_composite(name) else name


def list_problems(pattern: str | None = None) -> list[str]:
    """Names of the registered problems (entry-point plugins included, not imported)."""
    return PROBLEMS.names(pattern)


def list_optimizers(pattern: str | None = None) -> list[str]:
    """Names of the registered optimizers (entry-point plugins included, not imported)."""
    return OPTIMIZERS.names(pattern)


def get_problem(name: str) -> Entry:
    return PROBLEMS.get(name)


def get_optimizer(name: str) -> Entry:
    return OPTIMIZERS.get(name)
