"""Registries of problems and optimizers: a dict, a decorator and a few functions.

Importing this module does not import torch: the built-in entries are registered the first time an
entry is needed, so ``optbench --help`` stays instant. Names alone never import anything: the
built-ins' names come from a manifest kept here (``tests/test_registry.py`` checks it against what
importing the built-ins registers) and entry points' names from their distributions' metadata, so
the CLI can reject a misspelt name before torch loads. Plugins (entry points, import paths, local
files) are found by :mod:`optbench.registry.plugins`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from optbench.errors import DuplicateNameError, PluginError, UnknownNameError

REQUIRED = inspect.Parameter.empty
"""Marks a hyperparameter without a default in :meth:`Entry.hyperparameters`."""

# Constructor arguments that choose an implementation, not an algorithm: never hyperparameters.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "differentiable", "capturable"})
# The constructor argument that is not a setting: optimizers take parameters, problems a seed.
_FIRST_ARGUMENT = {"optimizer": "params", "problem": "seed"}
# What registrations made while it is set come from ("built-in", "file x.py"); see `registering_from`.
_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("optbench_source", default=None)


@dataclass(frozen=True)
class Entry:
    """One registered problem or optimizer.

    ``target`` is the class (or factory) that builds it; ``defaults`` override the defaults of its
    signature; ``batch_size`` is the default batch size of an optimizer's runs (None: full batch);
    ``source`` says where it came from (built-in, an entry point and its distribution, a file...);
    ``elementwise`` says whether an optimizer treats every element on its own, so that runs stacked
    into one tensor may share it (None: :func:`optbench.optimizers.protocol.is_elementwise` probes it;
    a class may also say so with an ``optbench_elementwise`` attribute).
    """

    name: str
    target: Callable[..., Any]
    kind: str
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    source: str = "built-in"
    elementwise: bool | None = None  # runs may share one optimizer over stacked tensors; None: probe it

    def _parameters(self) -> list[inspect.Parameter]:
        try:
            return list(inspect.signature(self.target).parameters.values())
        except (TypeError, ValueError):  # some builtins have no signature
            return []

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword settings and their defaults (:data:`REQUIRED` where there is none).

        Read from the constructor's signature, then overridden by the declared ``defaults``.
        """
        skip = {"self", _FIRST_ARGUMENT[self.kind]} | IMPLEMENTATION_FLAGS
        found = {
            p.name: p.default
            for p in self._parameters()
            if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        return found | dict(self.defaults)

    def annotations(self) -> dict[str, str]:
        """Each setting's type hint as text: ``"int"``, ``"float | torch.Tensor"``."""
        return {
            p.name: p.annotation.__name__ if isinstance(p.annotation, type) else str(p.annotation)
            for p in self._parameters()
            if p.annotation is not inspect.Parameter.empty
        }

    def accepts_any_keyword(self) -> bool:
        """True when the constructor takes ``**kwargs`` (so unknown names cannot be rejected early)."""
        params = self._parameters()
        return not params or any(p.kind is p.VAR_KEYWORD for p in params)


@contextlib.contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Registrations made inside this block record ``source`` (unless they name their own)."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


class Registry:
    """Name -> :class:`Entry`. Filled on first use: the ``builtins`` module, then entry points of ``group``.

    ``builtin_names`` is what importing ``builtins`` registers, so that :meth:`names` can answer
    without importing it (torch, for the real registries).
    """

    def __init__(self, kind: str, builtins: str, group: str | None = None, builtin_names: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self.builtin_names = builtin_names
        self._entries: dict[str, Entry] = {}
        self._pending: dict[str, Any] = {}  # entry points found but not imported yet
        self.broken: dict[str, str] = {}  # name -> one line saying why that plugin cannot be used
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: the imports below register into this registry
        with registering_from("built-in"):
            importlib.import_module(self._builtins)
        if self.group:
            from optbench.registry.plugins import discover

            self._pending, self.broken = discover(self)

    def refresh_plugins(self) -> None:
        """Look for entry points again (after installing a distribution into a running process)."""
        self._ensure_loaded()
        if self.group:
            from optbench.registry.plugins import discover

            pending, self.broken = discover(self)
            self._pending = {n: ep for n, ep in pending.items() if n not in self._entries}

    def add(
        self,
        name: str,
        target: Callable[..., Any],
        *,
        description: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        source: str | None = None,
        override: bool = False,
        elementwise: bool | None = None,
    ) -> Entry:
        """Register ``target`` under ``name``; a second registration must say ``override=True``.

        Registering the same target under the same name again changes nothing.
        """
        self._ensure_loaded()
        source = source or _SOURCE.get() or f"module {getattr(target, '__module__', '?')}"
        old = self._entries.get(name)
        if old is not None and old.target is target and not override:
            return old
        if old is not None and not override:
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
            elementwise=elementwise if elementwise is not None else getattr(target, "optbench_elementwise", None),
        )
        self._entries[name] = entry
        self._pending.pop(name, None)
        return entry

    def register(self, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`add`; returns the decorated object unchanged."""

        def decorate(target: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name, target, **kwargs)
            return target

        return decorate

    def get(self, name: str) -> Entry:
        """The entry for ``name``: registered, an entry point (imported now) or ``module:attribute``."""
        self._ensure_loaded()
        if name in self._entries:
            return self._entries[name]
        from optbench.registry import plugins

        if name in self.broken:
            raise PluginError(self.broken[name])
        if name in self._pending:
            return plugins.load_entry_point(self, name, self._pending.pop(name))
        if ":" in name:
            return plugins.load_import_path(self, name)
        raise UnknownNameError(self.kind, name, self.names())

    def replace(self, name: str, **changes: Any) -> Entry:
        self._entries[name] = dataclasses.replace(self._entries[name], **changes)
        return self._entries[name]

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names (plugins included), filtered by a glob such as ``"torch-*"``; nothing is imported.

        Before the first entry is needed, the names are the built-ins' manifest and the entry points
        found in installed metadata; after, every registered name (``--plugin`` files' included).
        """
        if self._loaded:
            found = {*self._entries, *self._pending}
        else:
            from optbench.registry.plugins import discover

            found = {*self.builtin_names, *(discover(self)[0] if self.group else {})}
        names = sorted(n for n in found if ":" not in n)
        return fnmatch.filter(names, pattern) if pattern else names

    def require_known(self, names: Iterable[Any]) -> None:
        """Raise :class:`UnknownNameError` for the first name that is neither registered nor an
        installed entry point; nothing is imported (an import path ``module:Class`` is checked when
        it is imported)."""
        valid: list[str] | None = None
        for name in names:
            if isinstance(name, str) and ":" in name:
                continue
            valid = self.names() if valid is None else valid
            if name not in valid:
                raise UnknownNameError(self.kind, name, valid)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries or name in self._pending

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.get(n) for n in self.names())


def first_line(doc: str | None) -> str:
    """The first sentence of a docstring, for one-line descriptions."""
    text = inspect.cleandoc(doc or "").split("\n\n")[0].replace("\n", " ").strip()
    return text.split(". ")[0].rstrip(".")


# What importing the built-in packages registers, by name (checked by tests/test_registry.py).
BUILTIN_PROBLEMS = (
    "beale",
    "classification",
    "digits-cnn",
    "digits-mlp",
    "himmelblau",
    "linreg",
    "logreg",
    "matrix-factorization",
    "quadratic",
    "rastrigin",
    "ridge",
    "rosenbrock",
)
BUILTIN_OPTIMIZERS = (
    "gd",
    "sgd",
    "torch-adadelta",
    "torch-adagrad",
    "torch-adam",
    "torch-adamax",
    "torch-adamw",
    "torch-asgd",
    "torch-lbfgs",
    "torch-nadam",
    "torch-radam",
    "torch-rmsprop",
    "torch-rprop",
    "torch-sgd",
)
# The built-in optimizers' settings under the torch that constraints.txt pins, so that a misspelt
# --opt key is answered before torch loads (checked by tests/test_registry.py). Under another torch
# (whose classes may take other arguments) the classes themselves are read, once imported.
BUILTIN_SETTINGS_TORCH = "2.13.0"
BUILTIN_OPTIMIZER_SETTINGS = {  # in each class's order
    "gd": ("lr",),
    "sgd": ("lr",),
    "torch-adadelta": ("lr", "rho", "eps", "weight_decay", "maximize"),
    "torch-adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize"),
    "torch-adam": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"),
    "torch-adamax": ("lr", "betas", "eps", "weight_decay", "maximize"),
    "torch-adamw": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
    "torch-asgd": ("lr", "lambd", "alpha", "t0", "weight_decay", "maximize"),
    "torch-lbfgs": (
        "lr",
        "max_iter",
        "max_eval",
        "tolerance_grad",
        "tolerance_change",
        "history_size",
        "line_search_fn",
    ),
    "torch-nadam": ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"),
    "torch-radam": ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize"),
    "torch-rmsprop": ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"),
    "torch-rprop": ("lr", "etas", "step_sizes", "maximize"),
    "torch-sgd": ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
}


def builtin_settings(name: str) -> tuple[str, ...] | None:
    """The setting names of built-in optimizer ``name``, read from the manifest above without importing
    anything; None when that cannot be trusted: another name, another torch, or the registry already
    loaded (a ``--plugin`` file may have replaced a built-in)."""
    import importlib.metadata

    if name not in BUILTIN_OPTIMIZER_SETTINGS or OPTIMIZERS._loaded:
        return None
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    return BUILTIN_OPTIMIZER_SETTINGS[name] if version.split("+")[0] == BUILTIN_SETTINGS_TORCH else None


PROBLEMS = Registry("problem", builtins="optbench.problems", group="optbench.problems", builtin_names=BUILTIN_PROBLEMS)
OPTIMIZERS = Registry(
    "optimizer", builtins="optbench.optimizers", group="optbench.optimizers", builtin_names=BUILTIN_OPTIMIZERS
)


def register_problem(
    name: str,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    override: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a problem class under ``name`` (the contract: :mod:`optbench.problems.base`).

    ``description`` defaults to the docstring's first sentence; ``defaults`` override the defaults
    of the constructor's options.
    """
    return PROBLEMS.register(name, description=description, defaults=defaults, override=override)


def register_optimizer(
    name: str,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    override: bool = False,
    elementwise: bool | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a torch.optim.Optimizer-shaped class under ``name``.

    ``description`` defaults to the docstring's first sentence; ``defaults`` override the
    constructor's hyperparameter defaults; ``batch_size`` is the default batch size of its runs
    (None: full batch); ``override=True`` replaces an entry of the same name; ``elementwise=True``
    declares that it updates every element on its own (runs stacked into one tensor may then share
    it), ``False`` that it must not be stacked; None lets optbench probe it.
    """
    return OPTIMIZERS.register(
        name,
        description=description,
        defaults=defaults,
        batch_size=batch_size,
        override=override,
        elementwise=elementwise,
    )


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
