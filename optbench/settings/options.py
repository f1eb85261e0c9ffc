"""Turning ``KEY=VALUE`` text into typed settings, guided by each setting's default.

Torch-free, so the CLI can validate input before it imports anything heavy.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean
from optbench.registry import REQUIRED, Entry, switches
from optbench.settings import validate

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def setting_name(key: str) -> bool:
    """A Python-style name, a composite's ``COMPONENT.NAME`` (``torch-adamw.weight_decay``), or a
    module switch ``MODULE:NAME`` (``heavyball.utils:compile_mode``: :mod:`optbench.registry.switches`)."""
    component, dot, name = key.rpartition(".")
    return (
        key.isidentifier()
        or bool(dot and name.isidentifier() and _COMPONENT.fullmatch(component))
        or switches.is_switch(key)
    )


_COMPONENT = re.compile(r"[\w.:()+\-]+")


def parse_assignments(items: Iterable[str], flag: str) -> dict[str, str]:
    """``["momentum=0.9"]`` -> ``{"momentum": "0.9"}``; a malformed or repeated item names ``flag``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not setting_name(key) or not value.strip():
            raise InvalidValueError(
                f"{flag} {item!r} is malformed: expected KEY=VALUE with a Python-style name, e.g. {flag} momentum=0.9"
            )
        if key in out:
            raise InvalidValueError(
                f"{flag} {key} is given twice ({out[key]} and {value.strip()}); give it once "
                f"(a sweep takes several values in one: {flag} {key}={out[key]},{value.strip()})"
            )
        out[key] = value.strip()
    return out


def resolve_settings(entry: Entry, given: Mapping[str, Any], flag: str) -> dict[str, Any]:
    """Merge ``given`` into ``entry``'s defaults, converting text by each default's type.

    Raises :class:`InvalidValueError` for a name the entry does not take or a value of the wrong type.
    Names are checked against the constructor's named parameters (and declared ``defaults``) even
    when it also takes ``**kwargs``, so a typo is an error, not a new column. Text, numbers and
    bools are all converted from their text, so a TOML value gets exactly the checks of a flag's.
    """
    known = entry.hyperparameters()
    annotations = entry.annotations()
    given = _unaliased(entry, given, flag)
    for key in given:
        if key not in known and not switches.is_switch(key):
            raise unknown_setting(entry.kind, entry.name, key, known, flag, entry.accepts_any_keyword())
    settings = {k: v for k, v in known.items() if v is not REQUIRED}
    for key, value in given.items():
        default = known.get(key, REQUIRED)
        label = f"{flag} {key}={_text(value)}"
        if switches.is_switch(key):  # a module's setting: converted by the type of the value it holds now
            settings[key] = _switch_value(entry, key, value, label)
            continue
        sequence_for_typed = isinstance(value, tuple | list) and isinstance(default, bool | int | float | str | tuple)
        if isinstance(value, str | bool | int | float) or sequence_for_typed:
            settings[key] = convert(_text(value), default, annotations.get(key, ""), label)
        else:
            settings[key] = value
    missing = [k for k, v in known.items() if v is REQUIRED and k not in settings]
    if missing:
        needed = ", ".join(missing)
        raise InvalidValueError(f"{entry.kind} {entry.name!r} needs a value for {needed} ({flag} KEY=VALUE)")
    return settings


def _switch_value(entry: Entry, key: str, value: Any, label: str) -> Any:
    """A module switch's value: None from ``none``, else converted by the type of the module's value."""
    now = switches.current(entry, key, label)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        return None
    return _text(value) if now is None else convert(_text(value), now, "", label)


def _unaliased(entry: Entry, given: Mapping[str, Any], flag: str) -> dict[str, Any]:
    """``given`` with each alias (a composite's ``torch-muon.lr``) under its setting's name."""
    aliases = entry.aliases()
    out: dict[str, Any] = {}
    for key, value in given.items():
        name = aliases.get(key, key)
        if name in out:
            raise InvalidValueError(f"{flag} {key} and {name} are one setting of {entry.name!r}; give it once")
        out[name] = value
    return out


def unknown_setting(
    kind: str, name: str, key: str, known: Iterable[str], flag: str, any_keyword: bool = False
) -> InvalidValueError:
    """The one line for a setting ``name`` does not take (from its class, or before torch from its source)."""
    known = list(known)  # in the class's order: a tie between near misses goes the same way either route
    extra = (
        "; its **kwargs are not open to unnamed settings: declare one with "
        f"register_{kind}(..., defaults={{{key!r}: ...}})"
        if any_keyword
        else ""
    )
    return InvalidValueError(
        f"{flag} {key}: {kind} {name!r} takes no setting {key!r}{did_you_mean(key, known)}; "
        f"valid settings: {', '.join(sorted(known)) or 'none'}{extra}"
    )


def convert(text: str, default: Any, annotation: str, label: str) -> Any:
    """Convert ``text`` to the type of ``default`` (or of ``annotation``, its type hint as text)."""
    if isinstance(default, bool) or annotation == "bool":
        low = text.lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise InvalidValueError(f"{label}: expected true or false")
    if isinstance(default, int | float) or annotation in ("int", "float"):
        strict_int = isinstance(default, int) and "float" not in annotation and annotation != ""
        strict_int = strict_int or annotation == "int"
        return _number(text, integer=strict_int, float_only=isinstance(default, float), label=label)
    if isinstance(default, tuple | list):
        parts = [p.strip() for p in text.strip("()[]").split(",")]
        if len(parts) != len(default):
            raise InvalidValueError(f"{label}: expected {len(default)} comma-separated values, like {_show(default)}")
        return tuple(convert(p, d, "", label) for p, d in zip(parts, default, strict=True))
    if isinstance(default, str):
        return text
    if _is_dtype(default) or "dtype" in annotation:
        return _dtype(text, label)
    if inspect.isclass(default) or "type[" in annotation.lower() or "Optimizer" in annotation:
        return _registered_class(text, label)
    return _literal(text)  # default None or no default: the most specific reading


def _is_dtype(value: Any) -> bool:
    return type(value).__name__ == "dtype" and type(value).__module__ == "torch"


def _dtype(text: str, label: str) -> Any:
    """``float64`` or ``torch.float64`` as the torch dtype (a class's dtype setting; torch is loaded by then)."""
    import torch

    found = getattr(torch, text.removeprefix("torch."), None)
    if not isinstance(found, torch.dtype):
        raise InvalidValueError(f"{label}: expected a torch dtype such as float32 or bfloat16")
    return found


def _registered_class(text: str, label: str) -> Any:
    """A class-valued setting (a wrapper's base optimizer) named by a registered optimizer's name."""
    from optbench.registry import OPTIMIZERS

    if text not in OPTIMIZERS.names():
        raise InvalidValueError(
            f"{label}: expected the name of a registered optimizer (see `optbench list`), e.g. torch-sgd"
        )
    return OPTIMIZERS.get(text).target


def _number(text: str, *, integer: bool, float_only: bool, label: str) -> int | float:
    if not validate.plain_number(text):
        kind, example = ("an integer", "100") if integer else ("a number", "0.1")
        raise InvalidValueError(f"{label}: expected {kind} in plain digits, e.g. {example}")
    try:
        value = int(text)
        return float(value) if float_only else value
    except ValueError:
        if integer:
            raise InvalidValueError(f"{label}: expected an integer") from None
    try:
        number = float(text)
    except ValueError:
        raise InvalidValueError(f"{label}: expected a number") from None
    if math.isnan(number):
        raise InvalidValueError(f"{label}: expected a number, not NaN")
    return number


def _literal(text: str) -> Any:
    low = text.lower()
    if low == "none":
        return None
    if low in ("true", "false"):
        return low == "true"
    if not validate.plain_number(text):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _text(value: Any) -> str:
    """A scalar as a flag would spell it: ``true``, ``3``, ``0.1`` (repr: exact for floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple | list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple | list) else str(value)


def validate_lr(lr: Any, label: str = "--lr") -> float:
    """A learning rate must be a finite number > 0 (:func:`optbench.settings.validate.lr`)."""
    from optbench.settings import validate

    return validate.lr(lr, label)


def validate_device_name(device: Any, label: str = "--device") -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` judged by its spelling alone; its canonical name (``cuda`` is
    ``cuda:0``). Whether that GPU exists needs torch: :func:`optbench.core.spec.validate_device`."""
    if device == "cpu":
        return device
    index = device.partition(":")[2] if isinstance(device, str) and device.startswith("cuda:") else None
    if device != "cuda" and not (index and index.isdigit()):
        raise InvalidValueError(f"{label} {device!r} is not valid; valid: cpu, cuda, cuda:N")
    return f"cuda:{index or 0}"


EPOCHS_SCALE = "OPTBENCH_EPOCHS_SCALE"


def scaled_epochs(epochs: int) -> int:
    """``epochs`` times the environment's ``OPTBENCH_EPOCHS_SCALE`` (unset: 1), rounded, at least 1.

    For a quick look and for tests (the README's blocks run with it): every run, from the CLI or
    the Python API, trains that share of its epochs; with ``OPTBENCH_EPOCHS_SCALE=0.05``, 100 epochs
    become 5 and 3 become 1. The CLI says so on stderr.
    """
    text = os.environ.get(EPOCHS_SCALE, "").strip()
    if not text:
        return epochs
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise InvalidValueError(f"{EPOCHS_SCALE}={text!r} is not valid; expected a number > 0 such as 0.1")
    return max(1, round(epochs * scale))
