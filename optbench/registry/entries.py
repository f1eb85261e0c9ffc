"""The registry type: name -> :class:`Entry`, for problems and for optimizers alike.

A :class:`Registry` is filled from three places and is the only thing that stores what they give:
its built-ins, registered by import string (:mod:`optbench.registry.builtins`: names known at once,
each class imported when its entry is first needed); the entry points that
:func:`optbench.registry.plugins.discover` finds (imported the same way); and :meth:`Registry.add`
(the decorators, ``--plugin`` files, import paths). Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from optbench.errors import DuplicateNameError, InvalidValueError, OptbenchError, PluginError, UnknownNameError
from optbench.registry import plugins
from optbench.registry.builtins import Builtin
from optbench.registry.signatures import SourceClass, constructor_arguments, constructor_signature

REQUIRED = inspect.Parameter.empty
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
"""Marks a hyperparameter without a default in :meth:`Entry.hyperparameters`."""

# Constructor arguments that choose an implementation, not an algorithm: never hyperparameters.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "fused", "differentiable", "capturable"})
# The constructor argument that is not a setting: problems take a seed (by keyword); an optimizer takes its
# parameters as its first positional argument, whatever its name (`params`; a wrapper's `optimizer`, as
# pytorch-optimizer's Magma calls it): the core passes them by position.
_PROBLEM_SEED = "seed"


@dataclass(frozen=True)
class Entry:
    """One registered problem or optimizer.

    ``target`` is the class (or factory) that builds it; ``defaults`` override the defaults of its
    signature; ``batch_size`` is the default batch size of its runs (None: full batch; an optimizer's
    default comes before a problem's: :func:`optbench.core.spec.resolve_batch_size`);
    ``source`` says where it came from (built-in, an entry point and its distribution, a file...);
    ``elementwise`` says whether an optimizer treats every element on its own, so that runs stacked
    into one tensor may share it (None: not declared, so it does not share:
    :func:`optbench.optimizers.protocol.is_elementwise`; a class may also say so with an
    ``optbench_elementwise`` attribute); ``wraps`` is the keyword a
    wrapper takes its base by (None: :func:`optbench.registry.composite.wrapper_keyword` reads it from
    the class); ``create_graph`` that its step differentiates the gradients, so the core's backward
    keeps the graph (None: not declared; ``optbench_create_graph`` on the class says so too).
    """

    name: str
    target: Callable[..., Any]
    kind: str
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    source: str = "built-in"
    elementwise: bool | None = None  # runs may share one optimizer over stacked tensors; None: undeclared, one each
    space: Mapping[str, str] | None = None  # what a bench tunes (optbench.studies.spaces); None: the lr
    roles: tuple[str, ...] | None = None  # the parameter roles it takes (optbench.problems.base); None: all
    wraps: str | None = None  # the keyword a wrapper takes its base by; None: read from the class
    create_graph: bool | None = None  # its step differentiates the gradients: backward(create_graph=True)

    def _parameters(self) -> list[inspect.Parameter]:
        try:
            return list(inspect.signature(self.target).parameters.values())
        except (TypeError, ValueError):  # some builtins have no signature
            return []

    def _settings(self) -> list[inspect.Parameter]:
        """The constructor's parameters that are settings: not ``self``, the problem's seed or the
        optimizer's parameters (its first positional argument), implementation flags or ``*args``."""
        parameters = [p for p in self._parameters() if p.name != "self"]
        if self.kind == "optimizer" and parameters and parameters[0].kind in _POSITIONAL:
            parameters = parameters[1:]
        skip = {_PROBLEM_SEED if self.kind == "problem" else None} | IMPLEMENTATION_FLAGS
        return [p for p in parameters if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword settings and their defaults (:data:`REQUIRED` where there is none).

        Read from the constructor's signature, then overridden by the declared ``defaults``.
        """
        return {p.name: p.default for p in self._settings()} | dict(self.defaults)

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

    def aliases(self) -> dict[str, str]:
        """Other names of its settings -> the setting (a composite's ``torch-muon.lr`` is its ``lr``)."""
        return {}


@dataclass(frozen=True)
class _State:
    """Everything a registry holds, as :meth:`Registry.snapshot` saves it."""

    builtins: dict[str, Builtin]
    entries: dict[str, Entry]
    pending: dict[str, Any]
    broken: dict[str, str]
    discovered: bool


class Registry:
    """Name -> :class:`Entry`: the built-ins by import string, the entry points of ``group``, and
    whatever :meth:`add` registers.

    >>> reg = Registry("optimizer", builtins={"sgd": Builtin("torch.optim:SGD", "plain SGD")})
    >>> reg.names()                                    # nothing imported yet
    ['sgd']
    """

    def __init__(
        self,
        kind: str,
        group: str | None = None,
        builtins: Mapping[str, Builtin] | None = None,
        composites: Any = None,
    ):
        self.kind = kind
        self.composites = composites  # what makes a hybrid's or a wrapper's entry (optbench.registry.composite)
        self.group = group
        self._builtins: dict[str, Builtin] = dict(builtins or {})  # built-ins whose class is not imported yet
        self._entries: dict[str, Entry] = {}
        self._pending: dict[str, Any] = {}  # entry points found but not imported yet
        self._broken: dict[str, str] = {}  # name -> one line saying why that plugin cannot be used
        self._discovered = False
        self._initial_builtins = dict(self._builtins)  # what `reset` goes back to

    @property
    def broken(self) -> Mapping[str, str]:
        """Plugins that cannot be used: name -> the one line that says why."""
        self._discover()
        return MappingProxyType(self._broken)

    def _discover(self, again: bool = False) -> None:
        """Store the entry points of ``group`` (nothing imported); a name already registered by
        another source is broken, the entry point that registered it is not found twice."""
        if self._discovered and not again:
            return
        self._discovered = True
        if not self.group:
            return
        found = plugins.discover(self.group, self.kind, fresh=again)
        self._pending, self._broken = {}, dict(found.broken)
        for name, ep in found.found.items():
            old = self._entries.get(name)
            if old is not None and old.source == plugins.describe_entry_point(ep):
                continue  # this plugin, already loaded
            if old is not None or name in self._builtins:
                self._broken[name] = plugins.clash(self.kind, ep, old.source if old else "built-in")
                continue
            self._pending[name] = ep

    def refresh_plugins(self) -> None:
        """Look for entry points again (after installing a distribution into a running process)."""
        self._discover(again=True)

    def reset(self) -> None:
        """Back to what a fresh process holds: the built-ins (not imported), entry points not yet looked for."""
        plugins.forget_entry_points()
        self._restore(_State(self._initial_builtins, {}, {}, {}, False))

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Registry]:
        """Everything registered inside the block is forgotten after it, and what it replaced is back.

        >>> import torch
        >>> from optbench.registry import OPTIMIZERS
        >>> with OPTIMIZERS.snapshot():
        ...     _ = OPTIMIZERS.add("mine", torch.optim.SGD)
        ...     print("mine" in OPTIMIZERS)
        True
        >>> "mine" in OPTIMIZERS
        False
        """
        saved = self._state()
        try:
            yield self
        finally:
            self._restore(saved)

    def _state(self) -> _State:
        """Copies of what the registry holds now: later registrations do not change them."""
        return _State(
            dict(self._builtins), dict(self._entries), dict(self._pending), dict(self._broken), self._discovered
        )

    def _restore(self, state: _State) -> None:
        """Hold copies of ``state``'s dicts (a saved state is never changed, so it can be restored twice)."""
        self._builtins, self._entries = dict(state.builtins), dict(state.entries)
        self._pending, self._broken, self._discovered = dict(state.pending), dict(state.broken), state.discovered

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
        space: Mapping[str, str] | None = None,
        roles: tuple[str, ...] | None = None,
        wraps: str | None = None,
        create_graph: bool | None = None,
    ) -> Entry:
        """Register ``target`` under ``name``; a second registration must say ``override=True``.

        Registering the same target under the same name again changes nothing. A name an installed
        entry point declares (not imported yet) is taken over, with one line on stderr saying so
        unless ``override=True``.
        """
        self._discover()
        source = source or plugins.current_source() or f"module {getattr(target, '__module__', '?')}"
        plugins.note_registered(source, name)
        if name in self._builtins and _names(self._builtins[name].target, target) and not override:
            return self.get(name)  # the built-in's own class: changes nothing
        old = self._entries.get(name)
        if old is not None and old.target is target and not override:
            return old
        if (old is not None or name in self._builtins) and not override:
            by = old.source if old is not None else "built-in"
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by {by} and by {source}; pass override=True to replace it"
            )
        pending = self._pending.get(name)
        if pending is not None and source != plugins.describe_entry_point(pending) and not override:
            # a file (or a module) taking over an installed plugin's name: said, never silent
            print(f"optbench: warning: {plugins.shadows(self.kind, name, source, pending)}", file=sys.stderr)
        entry = Entry(
            name=name,
            target=target,
            kind=self.kind,
            description=description if description is not None else first_line(target.__doc__),
            defaults=MappingProxyType(dict(defaults or {})),
            batch_size=batch_size,
            source=source,
            elementwise=elementwise if elementwise is not None else getattr(target, "optbench_elementwise", None),
            space=MappingProxyType(dict(space)) if space else None,
            roles=_roles(name, roles if roles is not None else getattr(target, "optbench_roles", None)),
            wraps=wraps if wraps is not None else getattr(target, "optbench_wraps", None),
            create_graph=create_graph if create_graph is not None else getattr(target, "optbench_create_graph", None),
        )
        self._builtins.pop(name, None)
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
        """The entry for ``name``: registered, a built-in or an entry point (imported now), or ``module:attribute``."""
        self._discover()
        if name in self._entries:
            return self._entries[name]
        if name in self._builtins:
            return self._load_builtin(name)
        if name in self._broken:
            raise PluginError(self._broken[name])
        if name in self._pending:
            return self._load_entry_point(name, self._pending[name])
        if self.composites is not None and _is_composite(self.kind, name):
            made = self.composites.entry(name, self.get)
            if made.name != name and made.name in self._entries:
                return self._entries[made.name]
            self._entries[made.name] = made
            return made
        if ":" in name:
            target = plugins.load_import_path(self.kind, name)
            return self.add(name, target, source=f"import path {name}")
        raise UnknownNameError(self.kind, name, self.names())

    def _load_builtin(self, name: str) -> Entry:
        found = self._builtins[name]
        target = plugins.load_import_path(self.kind, found.target)
        del self._builtins[name]
        fields = dataclasses.asdict(found)
        del fields["target"], fields["cost"]  # the class's own cost is the same function (a test checks)
        return self.add(name, target, source="built-in", **fields)

    def declared(self, name: str) -> Entry | None:
        """The entry of ``name`` as far as it is known without importing anything: one registered or
        imported already, or a built-in read from its source (its constructor's signature,
        :func:`~optbench.registry.signatures.constructor_signature`, and its torch-free ``cost``), whose
        settings then resolve exactly as the class's would; None where only importing would tell (an
        entry point or import path not loaded yet, a composite, a source that does not say)."""
        if name in self._entries:
            return self._entries[name]
        found = self._builtins.get(name)
        signature = None if found is None else constructor_signature(found.target)
        if found is None or signature is None:
            return None
        cost = {} if found.cost is None else {"cost": _function(found.cost)}
        fields = dataclasses.asdict(found)
        del fields["target"], fields["cost"]
        fields["defaults"] = MappingProxyType(dict(found.defaults))
        return Entry(name, SourceClass(found.target, signature, **cost), self.kind, **fields)

    def declared_batch_size(self, name: str) -> int | None:
        """The batch size ``name``'s runs default to (None: full batch), known without importing: a
        registered or built-in entry's; a composite's lead part's (the first that takes a learning
        rate, :func:`optbench.registry.composite.entry`), its settings read from source. Raises
        LookupError where only importing would tell (a plugin not loaded yet, an import path)."""
        if name in self._entries:
            return self._entries[name].batch_size
        if name in self._builtins:
            return self._builtins[name].batch_size
        if self.composites is None or not _is_composite(self.kind, name):
            raise LookupError(name)
        parts = [c.name for c in self.composites.parse(name).components()]
        for part in parts:
            settings = (
                tuple(self._entries[part].hyperparameters()) if part in self._entries else self.setting_names(part)
            )
            if settings is None:
                raise LookupError(name)
            if "lr" in settings:
                return self.declared_batch_size(part)
        return self.declared_batch_size(parts[0])

    def _load_entry_point(self, name: str, ep: Any) -> Entry:
        """Import one discovered plugin; on failure record it as broken and raise its one line."""
        source = plugins.describe_entry_point(ep)
        try:
            target = plugins.load_entry_point(self.kind, name, ep)
            existing = self._entries.get(name)
            if existing is not None and existing.target is target:  # its module registered itself
                return self.replace(name, source=source)
            return self.add(name, target, source=source)
        except PluginError as exc:
            self._broken[name] = str(exc)
            raise
        except Exception as exc:
            self._broken[name] = f"{self.kind} plugin {name!r} ({source}) failed to load: {plugins.one_line(exc)}"
            raise PluginError(self._broken[name]) from None
        finally:
            self._pending.pop(name, None)

    def replace(self, name: str, **changes: Any) -> Entry:
        self._entries[name] = dataclasses.replace(self._entries[name], **changes)
        return self._entries[name]

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names (plugins included), filtered by a glob such as ``"torch-*"``; nothing is imported."""
        self._discover()
        names = sorted(
            n
            for n in {*self._entries, *self._builtins, *self._pending}
            if ":" not in n and not _is_composite(self.kind, n)
        )
        return fnmatch.filter(names, pattern) if pattern else names

    def setting_names(self, name: str) -> tuple[str, ...] | None:
        """The setting names of built-in ``name`` whose class is not imported yet, read from its source
        (nothing is imported); None for any other name, or where the source does not tell: those are
        checked against the class once it is imported."""
        if self.composites is not None and _is_composite(self.kind, name):
            return self.composites.setting_names(name, self.setting_names)
        found = self._builtins.get(name)
        if found is None:
            return None
        arguments = constructor_arguments(found.target)
        if arguments is None:
            return None
        if self.kind == "optimizer":
            arguments = arguments[1:]  # its parameters, whatever the name (see Entry._settings)
        skip = {_PROBLEM_SEED if self.kind == "problem" else None} | IMPLEMENTATION_FLAGS
        return tuple(dict.fromkeys([a for a in arguments if a not in skip], None) | dict.fromkeys(found.defaults))

    def require_known(self, names: Iterable[Any]) -> None:
        """Raise :class:`UnknownNameError` for the first name that is neither registered nor an
        installed entry point; nothing is imported (an import path ``module:Class`` is checked when
        it is imported)."""
        valid: list[str] | None = None
        for name in names:
            if self.composites is not None and isinstance(name, str):
                self.composites.bounded(name, self.kind)  # a name's size before anything reads it
            if self.composites is not None and _is_composite(self.kind, name):
                self.require_known([c.name for c in self.composites.parse(name).components()])
                continue
            if isinstance(name, str) and ":" in name:
                continue
            valid = self.names() if valid is None else valid
            if name not in valid:
                raise UnknownNameError(self.kind, name, valid)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries or name in self._builtins or name in self._pending

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.get(n) for n in self.names())

    def loaded(self) -> list[Entry]:
        """The entries built so far (registered, imported built-ins and plugins), nothing imported now."""
        return list(self._entries.values())


def build(entry: Entry, settings: Mapping[str, Any], *args: Any, **extra: Any) -> Any:
    """``entry.target(*args, **extra, **settings)``, with a constructor's failure as one line naming the entry."""
    try:
        return entry.target(*args, **extra, **settings)
    except OptbenchError:
        raise
    except (TypeError, ValueError) as exc:
        origin = "" if entry.source == "built-in" else f" ({entry.source})"
        raise InvalidValueError(f"{entry.kind} {entry.name!r}{origin} rejected its settings: {exc}") from None
    except Exception as exc:
        raise PluginError(
            f"{entry.kind} {entry.name!r} ({entry.source}) failed to build: {plugins.one_line(exc)}"
        ) from None


def _function(path: str) -> Callable[..., Any]:
    """A built-in's ``module:function`` (one of ours, torch-free), imported."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def is_composite(name: Any) -> bool:
    """A name that spells a hybrid or a wrapper (:mod:`optbench.registry.composite`), by its text alone."""
    return isinstance(name, str) and any(ch in name for ch in "+()")


def _is_composite(kind: str, name: Any) -> bool:
    return kind == "optimizer" and is_composite(name)


ROLES = ("matrix", "embedding", "head", "vector")  # a problem's parameter roles: optbench.problems.base


def _roles(name: str, roles: Any) -> tuple[str, ...] | None:
    """An optimizer's declared roles, checked: a subset of :data:`ROLES` (None: it takes every role)."""
    if roles is None:
        return None
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise PluginError(f"optimizer {name!r} declares roles {roles!r}; valid roles: {', '.join(ROLES)}")
    return roles


def first_line(doc: str | None) -> str:
    """The first sentence of a docstring, for one-line descriptions."""
    text = inspect.cleandoc(doc or "").split("\n\n")[0].replace("\n", " ").strip()
    return text.split(". ")[0].rstrip(".")


def _names(import_string: str, target: Any) -> bool:
    """Whether ``module:attribute`` is ``target``, without importing anything: an object of a module
    not imported yet is not ``target``."""
    module, _, attribute = import_string.partition(":")
    found: Any = sys.modules.get(module)
    for part in attribute.split("."):
        found = getattr(found, part, None)
    return found is target
