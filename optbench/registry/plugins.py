"""Plugins: third-party optimizers and problems, with no adapter code.

Three routes, each answering with what it found; only :class:`~optbench.registry.Registry` stores it:

1. **Entry points** in the groups ``optbench.optimizers`` and ``optbench.problems``, declared by an
   installed distribution. :func:`discover` lists them by name without importing them
   (``OPTBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` turns discovery off; ``OPTBENCH_PLUGINS=name1,name2``
   keeps only those names, also when autoload is off); :func:`load_entry_point` imports one the
   first time its name is used and returns its class.
2. **Import paths**: ``package.module:ClassName`` used as a name; :func:`load_import_path` returns
   the class (the built-ins are registered the same way, by their import strings).
3. **Local files**: :func:`load_file` (``--plugin my_optimizers.py``) imports a file whose
   ``@optbench.register_optimizer`` / ``@optbench.register_problem`` decorators add names.

A plugin that cannot be used is reported as one line (:class:`~optbench.errors.PluginError`)
naming the plugin, its distribution and entry point, and other names keep working. This module
knows nothing of the registry: the registry imports it, never the other way round.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.errors import OptbenchError, PluginError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENV_DISABLE = "OPTBENCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "OPTBENCH_PLUGINS"
# What a class must have to be used as each kind; a factory function is checked when it is called.
_SHAPE = {"optimizer": ("step", "zero_grad"), "problem": ("loss", "parameters")}
_loaded_files: set[Path] = set()
_registered: dict[str, list[str]] = {}  # source -> names registered under it (see `note_registered`)
# Where registrations made while it is set come from ("built-in", "file x.py"); see `registering_from`.
_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("optbench_source", default=None)


@contextlib.contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Registrations made inside this block record ``source`` (unless they name their own)."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def current_source() -> str | None:
    """The source :func:`registering_from` set, if any (a plugin module registering itself)."""
    return _SOURCE.get()


def note_registered(source: str, name: str) -> None:
    """The registry says that ``name`` was registered from ``source`` (so a file that registers
    nothing can be told so)."""
    _registered.setdefault(source, []).append(name)


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: usable entry points by name, and one line per unusable name."""

    found: dict[str, EntryPoint] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


# Each group's entry points as importlib.metadata found them on a sys.path: a registry snapshot
# restored (a sweep's worker runs each group of jobs in one) looks again without rescanning every
# installed distribution (3 s of a quick bench's workers). Registry.refresh_plugins and reset rescan.
_scanned: dict[tuple[str, tuple[str, ...]], tuple[EntryPoint, ...]] = {}


def entry_points_of(group: str, fresh: bool = False) -> tuple[EntryPoint, ...]:
    """The installed entry points of ``group``: scanned once per process and ``sys.path``, or now (``fresh``)."""
    key = (group, tuple(sys.path))
    if fresh or key not in _scanned:
        from importlib.metadata import entry_points  # 20 ms: paid by the first name looked up, not by --help

        _scanned[key] = tuple(entry_points(group=group))
    return _scanned[key]


def forget_entry_points() -> None:
    """Scan again at the next look-up, as a fresh process would."""
    _scanned.clear()


def discover(group: str, kind: str, fresh: bool = False) -> Discovery:
    """The entry points of ``group`` by name (nothing imported); a name two different entry points
    declare is broken (the same entry point seen twice is one plugin). The switches
    (:data:`ENV_DISABLE`, :data:`ENV_ALLOW`) are read at every call; the scan is
    :func:`entry_points_of`'s (``fresh``: scan again)."""
    allow = {n.strip() for n in os.environ.get(ENV_ALLOW, "").split(",") if n.strip()}
    disabled = os.environ.get(ENV_DISABLE, "").lower() not in ("", "0", "false", "no")
    found: dict[str, EntryPoint] = {}
    broken: dict[str, str] = {}
    for ep in entry_points_of(group, fresh):
        if (disabled or allow) and ep.name not in allow:
            continue
        if ep.name in found:
            if found[ep.name].value != ep.value:
                broken[ep.name] = (
                    f"{kind} plugin {ep.name!r} is declared twice: by {describe_entry_point(found[ep.name])}"
                    f" and by {describe_entry_point(ep)}"
                )
            continue
        found[ep.name] = ep
    return Discovery({n: ep for n, ep in found.items() if n not in broken}, broken)


def describe_entry_point(ep: EntryPoint) -> str:
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
    return f"entry point {ep.group}:{ep.name} = {ep.value} from {dist}"


def clash(kind: str, ep: EntryPoint, registered_by: str) -> str:
    """The line for an entry point whose name is already registered by another source."""
    return f"{kind} plugin {ep.name!r} ({describe_entry_point(ep)}) clashes with {registered_by}"


def shadows(kind: str, name: str, source: str, ep: EntryPoint) -> str:
    """The line for a registration that takes over a name an installed entry point declares."""
    return (
        f"{kind} {name!r} from {source} shadows the installed plugin of that name ({describe_entry_point(ep)});"
        " pass override=True to say that is meant"
    )


def load_entry_point(kind: str, name: str, ep: EntryPoint) -> Any:
    """Import one discovered plugin and return its class; on failure raise its one line."""
    source = describe_entry_point(ep)
    label = f"{kind} plugin {name!r} ({source})"
    try:
        with registering_from(source):  # its module may register itself with the decorator
            target = ep.load()
    except Exception as exc:
        raise PluginError(f"{label} failed to load: {one_line(exc)}") from None
    check_shape(kind, target, label)
    return target


def load_import_path(kind: str, spec: str) -> Any:
    """The class ``package.module:Class`` (or ``:Outer.Inner``) names, imported now and checked."""
    module_name, _, attribute = spec.partition(":")
    label = f"{kind} {spec!r}"
    if not module_name or not attribute:
        raise PluginError(f"{label}: expected an import path like package.module:ClassName")
    _current_folder_importable()
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PluginError(f"{label}: no module named {exc.name or module_name!r}") from None
    except Exception as exc:
        raise PluginError(f"{label}: importing {module_name!r} failed: {one_line(exc)}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise PluginError(f"{label}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    check_shape(kind, target, label)
    return target


def load_file(path: str | os.PathLike[str]) -> None:
    """Import a Python file of ``@register_optimizer`` / ``@register_problem`` definitions (once per path).

    Its decorators register into the registries themselves, under the source ``file PATH``.
    """
    path = Path(path).resolve()
    if path in _loaded_files:
        return
    if not path.is_file():
        raise PluginError(f"--plugin {str(path)!r}: no such file")
    import hashlib  # 2 ms at import: only --plugin needs it

    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"optbench_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"--plugin {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    source = f"file {path}"
    try:
        with registering_from(source), _folder_first(path.parent):  # its siblings import as from a script
            spec.loader.exec_module(module)
    except OptbenchError as exc:
        del sys.modules[module_name]
        raise PluginError(f"--plugin {str(path)!r}: {exc}") from None
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"--plugin {str(path)!r} failed to import: {one_line(exc)}") from None
    if not _registered.get(source):
        del sys.modules[module_name]
        raise PluginError(f"--plugin {str(path)!r} registered nothing; {_how_to_register(module)}")
    _loaded_files.add(path)


def _how_to_register(module: Any) -> str:
    """What a file that registered nothing defines, and the decorator each class needs."""
    hints = []
    for name, value in vars(module).items():
        if not inspect.isclass(value) or value.__module__ != module.__name__:
            continue
        for kind, needed in _SHAPE.items():
            if all(callable(getattr(value, m, None)) for m in needed):
                hints.append(f'@optbench.register_{kind}("{name.lower()}") above class {name}')
                break
    if not hints:
        return (
            "it defines no class with step() and zero_grad() (an optimizer) or loss() and parameters() "
            '(a problem); register one with @optbench.register_optimizer("name") above its class'
        )
    return "it defines optimizer or problem classes but registers none: put " + "; ".join(hints) + " (import optbench)"


@contextlib.contextmanager
def _folder_first(folder: Path) -> Iterator[None]:
    """``folder`` first on sys.path while a plugin file runs, as for ``python file.py``; afterwards
    last, so that its later imports still find its siblings but nothing else is shadowed."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)
        if entry not in sys.path:
            sys.path.append(entry)


def _current_folder_importable() -> None:
    """The current folder importable for ``module:Class`` paths, as ``python -m`` makes it (last on
    sys.path here: an installed package of the same name still wins)."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def loaded_files() -> frozenset[Path]:
    """The ``--plugin`` files imported in this process."""
    return frozenset(_loaded_files)


def forget_files(keep: Iterable[Path]) -> None:
    """Forget every loaded file but ``keep``, so that loading one again imports it again (tests)."""
    _loaded_files.intersection_update(keep)


def check_shape(kind: str, target: Any, label: str) -> None:
    """Refuse what cannot be built as ``kind``: not callable, or a class without the protocol's methods."""
    needed = _SHAPE[kind]
    if not callable(target):
        raise PluginError(f"{label} is a {type(target).__name__}, not a class; expected a class with {_and(needed)}")
    if inspect.isclass(target):
        missing = [m for m in needed if not callable(getattr(target, m, None))]
        if missing:
            raise PluginError(f"{label}: class {target.__name__} has no {_and(missing)}; a {kind} needs {_and(needed)}")


def _and(names: tuple[str, ...] | list[str]) -> str:
    return " and ".join(f"{n}()" for n in names)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
