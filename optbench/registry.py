"""Registries of problems and optimizers: a dict, a decorator and a few functions.

Importing this module does not import torch: the built-in entries are registered the first time a
registry is queried, so ``optbench --help`` stays instant.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from optbench.errors import DuplicateNameError, UnknownNameError

REQUIRED = inspect.Parameter.empty
"""Marks a hyperparameter without a default in :meth:`Entry.hyperparameters`."""

# Constructor arguments that choose an implementation, not an algorithm: never hyperparameters.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "differentiable", "capturable"})


@dataclass(frozen=True)
class Entry:
    """One registered problem or optimizer.

    ``target`` is the class (or factory) that builds it; ``defaults`` override the defaults of its
    signature; ``batch_size`` is the default batch size of an optimizer's runs (None: full batch).
    """

    name: str
    target: Callable[..., Any]
    kind: str
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    source: str = "built-in"

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword settings and their defaults (:data:`REQUIRED` where there is none).

        Read from the constructor's signature, then overridden by the declared ``defaults``.
        """
        skip = {"self", _FIRST_ARGUMENT[self.kind]} | IMPLEMENTATION_FLAGS
        try:
            signature = inspect.signature(self.target)
        except (TypeError, ValueError):  # some builtins have no signature
            signature = None
        found: dict[str, Any] = {}
        if signature is not None:
            for p in signature.parameters.values():
                if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                found[p.name] = p.default
        found.update(self.defaults)
        return found

    def accepts_any_keyword(self) -> bool:
        """True when the constructor takes ``**kwargs`` (so unknown names cannot be rejected early)."""
        try:
            params = inspect.signature(self.target).parameters.values()
        except (TypeError, ValueError):
            return True
        return any(p.kind is p.VAR_KEYWORD for p in params)


# The constructor argument that is not a setting: optimizers take parameters, problems a seed.
_FIRST_ARGUMENT = {"optimizer": "params", "problem": "seed"}


class Registry:
    """Name -> :class:`Entry`, filled on first use by importing ``builtins`` (a module path)."""

    def __init__(self, kind: str, builtins: str):
        self.kind = kind
        self._builtins = builtins
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the import below registers into this registry
            importlib.import_module(self._builtins)

    def add(
        self,
        name: str,
        target: Callable[..., Any],
        *,
        description: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        source: str = "built-in",
        override: bool = False,
    ) -> Entry:
        """Register ``target`` under ``name``; a second registration must say ``override=True``."""
        self._ensure_loaded()
        if name in self._entries and not override:
            old = self._entries[name]
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by {old.source} and by {source}; "
                "pass override=True to replace it"
            )
        entry = Entry(
            name=name,
            target=target,
            kind=self.kind,
            description=description if description is not None else first_line(target.__doc__),
            defaults=MappingProxyType(dict(defaults or {})),
            batch_size=batch_size,
            source=source,
        )
        self._entries[name] = entry
        return entry

    def register(self, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`add`; returns the decorated object unchanged."""

        def decorate(target: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name, target, **kwargs)
            return target

        return decorate

    def get(self, name: str) -> Entry:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, filtered by an fnmatch ``pattern`` such as ``"torch-*"``."""
        self._ensure_loaded()
        names = sorted(self._entries)
        return fnmatch.filter(names, pattern) if pattern else names

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.get(n) for n in self.names())


def first_line(doc: str | None) -> str:
    """The first sentence of a docstring, for one-line descriptions."""
    text = inspect.cleandoc(doc or "").split("\n\n")[0].replace("\n", " ").strip()
    return text.split(". ")[0].rstrip(".")


PROBLEMS = Registry("problem", builtins="optbench.problems")
OPTIMIZERS = Registry("optimizer", builtins="optbench.optimizers")


def register_problem(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a problem class under ``name`` (see :class:`optbench.problems.Problem`)."""
    return PROBLEMS.register(name, **kwargs)


def register_optimizer(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a torch.optim.Optimizer-shaped class under ``name``.

    Keyword arguments: ``description``, ``defaults`` (hyperparameter defaults that override the
    constructor's), ``batch_size`` (default batch size of its runs; None = full batch), ``override``.
    """
    return OPTIMIZERS.register(name, **kwargs)


def list_problems(pattern: str | None = None) -> list[str]:
    return PROBLEMS.names(pattern)


def list_optimizers(pattern: str | None = None) -> list[str]:
    return OPTIMIZERS.names(pattern)


def get_problem(name: str) -> Entry:
    return PROBLEMS.get(name)


def get_optimizer(name: str) -> Entry:
    return OPTIMIZERS.get(name)
