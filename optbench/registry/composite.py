"""Optimizers made of optimizers, named as one: hybrids ``A+B`` and wrappers ``W(B)``.

- **Hybrid** ``torch-muon+torch-adamw``: the first part takes the parameters of the roles it takes
  (its entry's ``roles``; a part that declares none takes ``matrix``, the hidden weight matrices),
  the second part takes the rest (:mod:`optbench.problems.base` says how a problem labels them).
  Both step at the same point: the loss and gradients are computed once a step.
- **Wrapper** ``pytorch_optimizer:Lookahead(torch-adam)``: the base is built over the parameters,
  then the wrapper around it (the base optimizer is its first argument, as Lookahead, the SAM family
  and schedule-free wrappers take it). A base may itself be a hybrid, and a hybrid's part a wrapper.

Every component's settings are addressed as ``COMPONENT.KEY`` (``torch-adamw.weight_decay``), and
the first component in reading order that takes a learning rate (the *lead*: a hybrid's first part;
in ``W(B)`` the wrapper if it takes one, else its base) has its ``lr`` as the composite's own
``lr``, so ``--lr``, lr grids and the ``lr`` column mean what they mean for one optimizer;
``torch-muon.lr`` is another name for it. The name is canonical without spaces, so one composite
has one run key however it was typed.

Nothing here imports torch: the composite's entry is made from its components' entries; the
optimizer it builds is :class:`optbench.optimizers.combined.Combined`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from optbench.errors import InvalidValueError
from optbench.registry.entries import Entry

MAX_DEPTH = 8  # wrappers inside wrappers: deeper than any real composite, far below Python's recursion limit
MAX_LENGTH = 500  # characters of a composite name, spaces included
BASE_CLASS = "base_optimizer"  # how a SAM-style wrapper takes its base: as a class, to build itself
# Keywords wrappers are known to take their base by, read from a constructor that declares none: the SAM
# family's class (BASE_CLASS), heavyball's built optimizer (SAMWrapper's wrapped_optimizer).
BASE_KEYWORDS = (BASE_CLASS, "wrapped_optimizer")
DEFAULT_FIRST_ROLES = ("matrix",)  # what a hybrid's first part takes when its entry declares no roles


@dataclass(frozen=True)
class Node:
    """One node of a composite name: a ``plain`` optimizer, a ``wrapper`` around ``inner[0]``, or a
    ``hybrid`` of ``inner``; ``name`` is a plain or wrapper node's registry name."""

    kind: str
    name: str = ""
    inner: tuple[Node, ...] = ()

    def text(self) -> str:
        if self.kind == "plain":
            return self.name
        if self.kind == "wrapper":
            return f"{self.name}({self.inner[0].text()})"
        return "+".join(part.text() for part in self.inner)

    def components(self) -> list[Node]:
        """The nodes with an optimizer of their own (plain and wrapper), in reading order."""
        own = [] if self.kind == "hybrid" else [self]
        return own + [c for part in self.inner for c in part.components()]


def parse(text: str) -> Node:
    """``"torch-muon + torch-adamw"`` -> a hybrid node; a malformed name is one line saying how to write one.

    Every composite name, from a flag or a file, is parsed here, so here its size is bounded: at most
    :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of parentheses, checked in one pass
    before anything recurses."""
    bounded(text)
    spelled = re.sub(r"\s+", "", text)
    node = _parse(spelled, text)
    names = [c.name for c in node.components()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidValueError(
            f"optimizer {text!r} names {twice[0]!r} twice; a composite's settings are addressed by "
            "component name, so each may appear once (register a second name for it to use it twice)"
        )
    return node


def bounded(text: str, kind: str = "optimizer") -> None:
    """Refuse a name longer than :data:`MAX_LENGTH` or nested deeper than :data:`MAX_DEPTH` (the registry
    and the files' reader call it for every name first, so no message repeats a huge one)."""
    if len(text) > MAX_LENGTH:
        raise InvalidValueError(
            f"{kind} {_short(text)} is {len(text):,} characters long; a name may have at most {MAX_LENGTH}"
        )
    depth = deepest = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise InvalidValueError(
            f"{kind} {_short(text)} nests wrappers {deepest} deep; a composite name may nest at most {MAX_DEPTH}"
        )


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."


def _parse(text: str, original: str) -> Node:
    parts = _split(text, original)
    if len(parts) > 2:
        raise InvalidValueError(
            f"optimizer {original!r}: a hybrid has two parts (the first takes its roles, the second the rest), "
            f"not {len(parts)}"
        )
    if len(parts) == 2:
        return Node("hybrid", inner=tuple(_parse(p, original) for p in parts))
    part = parts[0]
    if part.endswith(")"):
        name, _, inner = part[:-1].partition("(")
        if not name or not inner:
            raise InvalidValueError(_malformed(original))
        return Node("wrapper", name, (_parse(inner, original),))
    if not part or "(" in part or ")" in part:
        raise InvalidValueError(_malformed(original))
    return Node("plain", part)


def _split(text: str, original: str) -> list[str]:
    """``text`` split at its top-level ``+`` (not inside a wrapper's parentheses)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise InvalidValueError(_malformed(original))
        if ch == "+" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise InvalidValueError(_malformed(original))
    parts.append(text[start:])
    if any(not p for p in parts):
        raise InvalidValueError(_malformed(original))
    return parts


def _malformed(text: str) -> str:
    return (
        f"optimizer {text!r} is not a composite name; write a hybrid as FIRST+REST "
        "(e.g. torch-muon+torch-adamw) and a wrapper as WRAPPER(BASE) (e.g. pytorch_optimizer:Lookahead(torch-adam))"
    )


@dataclass(frozen=True)
class CompositeEntry(Entry):
    """A hybrid's or a wrapper's entry: its settings are its components', addressed by component."""

    node: Node = field(default_factory=lambda: Node("plain"))
    parts: Mapping[str, Entry] = field(default_factory=dict)  # component name -> its entry

    @property
    def lead(self) -> str | None:
        """The component whose ``lr`` is the composite's ``lr`` (None: no component takes one)."""
        return _lead(self.node, self.parts)

    def split_key(self, key: str) -> tuple[str, str]:
        """``"torch-adamw.betas"`` -> ``("torch-adamw", "betas")``; ``"lr"`` -> the lead's lr."""
        if key == "lr" and self.lead is not None:
            return self.lead, "lr"
        for name in sorted(self.parts, key=len, reverse=True):  # the longest name that prefixes the key
            if key.startswith(name + "."):
                return name, key[len(name) + 1 :]
        return "", key

    def key(self, component: str, setting: str) -> str:
        return "lr" if (component, setting) == (self.lead, "lr") else f"{component}.{setting}"

    def aliases(self) -> dict[str, str]:
        return {} if self.lead is None else {f"{self.lead}.lr": "lr"}

    def hyperparameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.node.components():
            for k, v in self.parts[c.name].hyperparameters().items():
                if not (c.kind == "wrapper" and k == wrapper_keyword(self.parts[c.name])):  # the composite sets it
                    out[self.key(c.name, k)] = v
        return dict(sorted(out.items(), key=lambda kv: kv[0] != "lr"))

    def annotations(self) -> dict[str, str]:
        return {
            self.key(c.name, k): v for c in self.node.components() for k, v in self.parts[c.name].annotations().items()
        }

    def accepts_any_keyword(self) -> bool:
        return False  # every key must name a component's setting

    def by_component(self, settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Resolved settings split into each component's own keywords (``betas.0``-style keys aside)."""
        out: dict[str, dict[str, Any]] = {c.name: {} for c in self.node.components()}
        for key, value in settings.items():
            component, setting = self.split_key(key)
            if component not in out:
                raise InvalidValueError(f"optimizer {self.name!r} has no component for setting {key!r}")
            out[component][setting] = value
        return out


def entry(text: str, get: Callable[[str], Entry]) -> CompositeEntry:
    """The composite entry of ``text``, its components' entries found with ``get`` (the registry's)."""
    node = parse(text)
    parts = {c.name: get(c.name) for c in node.components()}
    for c in node.components():
        if isinstance(parts[c.name], CompositeEntry):
            raise InvalidValueError(f"optimizer {text!r}: component {c.name!r} is itself composite")
    lead = _lead(node, parts)
    first = node.components()[0].name
    spaces = _space(node, parts, lead)
    described = " + ".join(f"{c.name} ({parts[c.name].description})" for c in node.components())
    return CompositeEntry(
        name=node.text(),
        target=_builder(node),
        kind="optimizer",
        description=f"composite: {described}",
        batch_size=parts[lead or first].batch_size,
        source=f"composite of {', '.join(parts)}",
        space=spaces,
        node=node,
        parts=MappingProxyType(parts),
    )


def wrapper_keyword(wrapper: Entry) -> str | None:
    """The keyword ``wrapper`` takes its base by in ``W(B)``: declared (its entry's ``wraps``), else the
    first of :data:`BASE_KEYWORDS` its constructor takes. None: the base goes where the parameters
    go, ``W(base, **settings)``, as Lookahead takes it. :data:`BASE_CLASS` is given the base's class
    (and its settings: the SAM family builds the base itself); any other keyword the built base,
    beside the parameters: ``W(params, wrapped_optimizer=base, **settings)``."""
    if wrapper.wraps:
        return wrapper.wraps
    settings = wrapper.hyperparameters()
    return next((k for k in BASE_KEYWORDS if k in settings), None)


def _lead(node: Node, parts: Mapping[str, Entry]) -> str | None:
    """The first component in reading order that takes a learning rate."""
    return next((c.name for c in node.components() if "lr" in parts[c.name].hyperparameters()), None)


def _space(node: Node, parts: Mapping[str, Entry], lead: str | None) -> Mapping[str, str] | None:
    """The components' search spaces, keyed as the composite's settings (None: none declares one)."""
    out: dict[str, str] = {}
    for c in node.components():
        for k, v in (parts[c.name].space or {}).items():
            out["lr" if (c.name, k) == (lead, "lr") else f"{c.name}.{k}"] = v
    return MappingProxyType(out) if out else None


def _builder(node: Node) -> Callable[..., Any]:
    """The entry's target: a name for the composite (it is built by
    :func:`optbench.optimizers.combined.build_optimizer`, which gives each part its parameters)."""

    def composite(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{node.text()!r} is built by optbench.optimizers.combined.build_optimizer")

    composite.__qualname__ = composite.__name__ = f"composite[{node.text()}]"
    return composite


def setting_names(text: str, names_of: Callable[[str], tuple[str, ...] | None]) -> tuple[str, ...] | None:
    """A composite's setting names from its components' (``names_of``: the registry's, read from a
    built-in's source before anything is imported); None where a component's cannot be told so."""
    out: list[str] = []
    lead = None
    for c in parse(text).components():
        own = names_of(c.name)
        if own is None:
            return None
        if lead is None and "lr" in own:
            lead = c.name
        own = tuple(k for k in own if not (c.kind == "wrapper" and k in BASE_KEYWORDS))  # the composite sets it
        out += ["lr" if (c.name == lead and k == "lr") else f"{c.name}.{k}" for k in own]
    return tuple(out) + ((f"{lead}.lr",) if lead else ())


def roles_text(entry: CompositeEntry) -> str:
    """Which component gets which parameters, in words (``optbench describe``)."""
    node = entry.node
    while node.kind == "wrapper":
        node = node.inner[0]
    if node.kind != "hybrid":
        return "every role, to the base"
    first, rest = node.inner
    takes = first_part_roles(entry.parts[first.components()[0].name])
    return f"{' and '.join(takes)} to {first.text()}, the rest to {rest.text()}"


def first_part_roles(entry: Entry) -> tuple[str, ...]:
    """The roles a hybrid's first part takes: its entry's, else :data:`DEFAULT_FIRST_ROLES`."""
    return tuple(entry.roles) if entry.roles else DEFAULT_FIRST_ROLES
