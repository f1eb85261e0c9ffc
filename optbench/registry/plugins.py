"""Plugins: third-party optimizers and problems, with no adapter code.

Three routes, all ending in a registry :class:`~optbench.registry.Entry`:

1. **Entry points** in the groups ``optbench.optimizers`` and ``optbench.problems``, declared by an
   installed distribution. Their names are listed without importing them; a plugin is imported the
   first time its name is used. ``OPTBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` turns discovery off;
   ``OPTBENCH_PLUGINS=name1,name2`` loads only those names (also when autoload is off).
2. **Import paths**: ``package.module:ClassName`` used as a name.
3. **Local files**: :func:`load_file` (``--plugin my_optimizers.py``) imports a file whose
   ``@optbench.register_optimizer`` / ``@optbench.register_problem`` decorators add names.

A plugin that cannot be used is reported as one line (:class:`~optbench.errors.PluginError`)
naming the plugin, its distribution and entry point, and other names keep working.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.errors import OptbenchError, PluginError
from optbench.registry import registering_from

if TYPE_CHECKING:
    from optbench.registry import Entry, Registry

ENV_DISABLE = "OPTBENCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "OPTBENCH_PLUGINS"
# What a class must have to be used as each kind; a factory function is checked when it is called.
_SHAPE = {"optimizer": ("step", "zero_grad"), "problem": ("loss", "parameters")}
_loaded_files: set[Path] = set()


def discover(registry: Registry) -> tuple[dict[str, EntryPoint], dict[str, str]]:
    """The entry points of ``registry.group`` by name (nothing imported), and one line per unusable one."""
    allow = {n.strip() for n in os.environ.get(ENV_ALLOW, "").split(",") if n.strip()}
    disabled = os.environ.get(ENV_DISABLE, "").lower() not in ("", "0", "false", "no")
    found: dict[str, EntryPoint] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=registry.group or ""):
        if (disabled or allow) and ep.name not in allow:
            continue
        if ep.name in found:
            if found[ep.name].value != ep.value:  # the same entry point seen twice is one plugin
                broken[ep.name] = (
                    f"{registry.kind} plugin {ep.name!r} is declared twice: by {describe_entry_point(found[ep.name])}"
                    f" and by {describe_entry_point(ep)}"
                )
            continue
        if ep.name in registry._entries:
            old = registry._entries[ep.name].source
            if old == describe_entry_point(ep):  # this plugin, already loaded
                continue
            broken[ep.name] = f"{registry.kind} plugin {ep.name!r} ({describe_entry_point(ep)}) clashes with {old}"
            continue
        found[ep.name] = ep
    return {n: ep for n, ep in found.items() if n not in broken}, broken


def describe_entry_point(ep: EntryPoint) -> str:
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
    return f"entry point {ep.group}:{ep.name} = {ep.value} from {dist}"


def load_entry_point(registry: Registry, name: str, ep: EntryPoint) -> Entry:
    """Import one discovered plugin; on failure record it as broken and raise one line."""
    source = describe_entry_point(ep)
    label = f"{registry.kind} plugin {name!r} ({source})"
    try:
        with registering_from(source):  # its module may register itself with the decorator
            target = ep.load()
        check_shape(registry.kind, target, label)
        existing = registry._entries.get(name)
        if existing is not None and existing.target is target:
            return registry.replace(name, source=source)
        return registry.add(name, target, source=source)
    except PluginError as exc:
        registry.broken[name] = str(exc)
        raise
    except Exception as exc:
        registry.broken[name] = f"{label} failed to load: {one_line(exc)}"
        raise PluginError(registry.broken[name]) from None


def load_import_path(registry: Registry, spec: str) -> Entry:
    """``package.module:Class`` (or ``:Outer.Inner``) as a registry entry named by that text."""
    module_name, _, attribute = spec.partition(":")
    label = f"{registry.kind} {spec!r}"
    if not module_name or not attribute:
        raise PluginError(f"{label}: expected an import path like package.module:ClassName")
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
    check_shape(registry.kind, target, label)
    return registry.add(spec, target, source=f"import path {spec}")


def load_file(path: str | os.PathLike[str]) -> None:
    """Import a Python file of ``@register_optimizer`` / ``@register_problem`` definitions (once per path)."""
    from optbench.registry import OPTIMIZERS, PROBLEMS

    path = Path(path).resolve()
    if path in _loaded_files:
        return
    if not path.is_file():
        raise PluginError(f"--plugin {str(path)!r}: no such file")
    OPTIMIZERS._ensure_loaded()  # built-ins first, so a clash names the built-in
    PROBLEMS._ensure_loaded()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"optbench_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"--plugin {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        with registering_from(f"file {path}"):
            spec.loader.exec_module(module)
    except OptbenchError as exc:
        del sys.modules[module_name]
        raise PluginError(f"--plugin {str(path)!r}: {exc}") from None
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"--plugin {str(path)!r} failed to import: {one_line(exc)}") from None
    _loaded_files.add(path)


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
