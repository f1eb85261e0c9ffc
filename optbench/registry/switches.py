"""Module switches: a setting an optimizer's package reads from one of its modules, not from the
constructor (heavyball compiles its fused helpers when ``heavyball.utils.compile_mode`` is set, and
no keyword reaches it).

Given like any setting, as ``MODULE:NAME=VALUE`` (``--opt heavyball.utils:compile_mode=none``), a
switch is one of the run's settings (a column, in its run key), never passed to the constructor:
:func:`switched` sets it while the optimizer is built and around each of its steps, and puts the
module's own value back after, so runs without it, in the same process, see the package's default.
Only a module of the optimizer's own package (never torch's or optbench's), already imported
(nothing is imported for it), and a name it holds with a plain value (None, a bool, a number, text)
can be switched: a switch never reaches into another package or runs code.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from optbench.errors import InvalidValueError

_SWITCH = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*)")
_PLAIN = (type(None), bool, int, float, str)
_HOST = frozenset({"optbench", "torch"})  # what the core itself runs on: no run's setting reaches into them


def is_switch(key: str) -> bool:
    """Whether a setting's key names a module switch, ``MODULE:NAME`` (``heavyball.utils:compile_mode``)."""
    return bool(_SWITCH.fullmatch(key))


def packages(entry: Any) -> set[str]:
    """The top-level packages whose modules an optimizer's switches may name: its class's (each part's,
    for a composite), never torch's or optbench's own (none for a problem or a built-in optimizer)."""
    if getattr(entry, "kind", "optimizer") != "optimizer":
        return set()
    parts = getattr(entry, "parts", None) or {entry.name: entry}
    return {getattr(part.target, "__module__", "").split(".")[0] for part in parts.values()} - _HOST - {""}


def takes(entry: Any, key: str) -> bool:
    """Whether ``key`` is a switch of a module of ``entry``'s own package (checked further by :func:`current`)."""
    return is_switch(key) and key.split(".")[0].split(":")[0] in packages(entry)


def current(entry: Any, key: str, label: str) -> Any:
    """The value switch ``key`` has now; raises :class:`InvalidValueError` (naming ``label``) unless
    its module belongs to ``entry``'s own package (:func:`packages`), is imported, and holds the name
    with a plain value."""
    module_name, _, name = key.partition(":")
    packages_ = packages(entry)
    if module_name.split(".")[0] not in packages_:
        own = f"({', '.join(sorted(packages_))})" if packages_ else "(it has none outside torch and optbench)"
        raise InvalidValueError(
            f"{label}: a switch names a module of the optimizer's own package {own}, not {module_name!r}"
        )
    module = sys.modules.get(module_name)
    if module is None or not hasattr(module, name):
        raise InvalidValueError(f"{label}: module {module_name!r} has no setting {name!r} (or is not imported)")
    value = getattr(module, name)
    if not isinstance(value, _PLAIN):
        raise InvalidValueError(
            f"{label}: {module_name}.{name} holds a {type(value).__name__}; "
            "only None, a bool, a number or text can be switched"
        )
    return value


def split(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings`` as (the constructor's keywords, the module switches)."""
    switches = {k: v for k, v in settings.items() if is_switch(k)}
    return {k: v for k, v in settings.items() if k not in switches}, switches


@contextlib.contextmanager
def switched(switches: Mapping[str, Any]) -> Iterator[None]:
    """Each switch set on its module inside the block, the module's own values back after."""
    before = []
    try:
        for key, value in switches.items():
            module_name, _, name = key.partition(":")
            module = sys.modules[module_name]
            before.append((module, name, getattr(module, name)))
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in reversed(before):
            setattr(module, name, value)


def around_steps(opt: Any, switches: Mapping[str, Any]) -> Any:
    """``opt`` with its ``step`` run inside :func:`switched` (the same object; its class unchanged)."""
    if not switches:
        return opt
    step = opt.step

    @functools.wraps(step)
    def step_switched(*args: Any, **kwargs: Any) -> Any:
        with switched(switches):
            return step(*args, **kwargs)

    opt.step = step_switched
    return opt
