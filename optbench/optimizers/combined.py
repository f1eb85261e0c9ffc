"""The optimizer a composite name builds (:mod:`optbench.registry.composite`): hybrids and wrappers.

:func:`build_optimizer` is how the core builds every optimizer: it gives each its parameters by
role. An optimizer that declares roles (``torch-muon``: ``matrix``) alone gets only problems whose
parameters all have them; a hybrid ``A+B`` gives ``A`` the parameters of its roles and ``B`` the
rest; a wrapper ``W(B)`` builds ``B`` over the parameters, then ``W`` around it: in the parameters'
place (Lookahead), by the keyword the wrapper takes it by (heavyball's ``wrapped_optimizer``), or,
for a wrapper that takes its base as a class, ``base_optimizer`` as the SAM family does, ``W``
given ``B``'s class and settings (:func:`optbench.registry.composite.wrapper_keyword`).

:class:`Combined` is a torch.optim.Optimizer over its parts' param groups (so a scheduler sets
every part's learning rate). Its ``step(closure)`` calls the closure at most once, before any part
moves, and steps each part without it: both parts of a hybrid update from the gradients at the
same point, and none pays for a second evaluation. A part whose step needs a closure (a line
search, SAM) cannot be a hybrid's part: it is refused when built. A wrapper alone gets the closure.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from optbench.errors import InvalidValueError
from optbench.optimizers.protocol import class_needs_closure, has_modes, step_takes_closure
from optbench.registry.composite import BASE_CLASS, CompositeEntry, Node, first_part_roles, wrapper_keyword
from optbench.registry.entries import Entry, build
from optbench.registry.switches import around_steps, split, switched

Tensor = torch.Tensor


class Combined(torch.optim.Optimizer):
    """Several optimizers stepped as one; ``param_groups`` are theirs, in order."""

    def __init__(self, parts: Sequence[Any], name: str = "composite", modal: Sequence[Any] = ()):
        for part in parts if len(parts) > 1 else ():
            if class_needs_closure(type(part)):
                raise InvalidValueError(
                    f"optimizer {name!r}: {type(part).__name__}.step needs a closure (it re-evaluates the loss), "
                    "so it cannot share a step with another optimizer; run it alone"
                )
        groups = [g for part in parts for g in part.param_groups]
        super().__init__([p for g in groups for p in g["params"]], {})
        self.parts = list(parts)
        self.param_groups = groups  # the parts' own dicts: a scheduler's lr reaches them
        modal = [*modal, *(part for part in parts if has_modes(part) and part not in modal)]
        if modal:  # a schedule-free part, at any depth: the loop switches its modes through this optimizer
            self.train = lambda: [part.train() for part in modal]
            self.eval = lambda: [part.eval() for part in modal]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if len(self.parts) == 1:  # a wrapper: its own step, closure and all (SAM evaluates it twice)
            part = self.parts[0]
            return part.step(closure) if closure is not None and step_takes_closure(part) else part.step()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for part, state in zip(self.parts, state_dict["parts"], strict=True):
            part.load_state_dict(state)


def takes_base_class(wrapper: Entry) -> bool:
    """A wrapper that builds its base itself from a class (``base_optimizer``), as the SAM family does,
    rather than wrapping a built optimizer (Lookahead, OrthoGrad, schedule-free wrappers, heavyball's
    SAMWrapper)."""
    return wrapper_keyword(wrapper) == BASE_CLASS


def build_optimizer(
    entry: Entry, settings: Mapping[str, Any], leaves: list[Tensor], roles: list[str], where: str
) -> Any:
    """``entry``'s optimizer over ``leaves`` (their ``roles`` in order; ``where``: the problem, for
    messages). Module switches among the settings (:mod:`optbench.registry.switches`) are set while
    it is built and around each of its steps, not passed to a constructor."""
    settings, switches = split(settings)
    with switched(switches):
        if isinstance(entry, CompositeEntry):
            opt = build_composite(entry, leaves, roles, settings)
        else:
            _check_roles(entry, roles, where)
            opt = build(entry, settings, param_groups(entry, leaves, roles))
    return around_steps(opt, switches)


def param_groups(entry: Entry, leaves: list[Tensor], roles: list[str]) -> Any:
    """What ``entry``'s constructor is given: the parameters, or, for a class that follows the
    ``use_muon`` convention (Keller Jordan's MuonWithAuxAdam, pytorch-optimizer's Muon family: Muon
    for groups flagged True, its own AdamW for the rest), a group of the matrices flagged True and a
    group of the rest flagged False."""
    if not _uses_muon_flag(entry.target):
        return leaves
    groups = [
        {"params": [p for p, r in zip(leaves, roles, strict=True) if (r == "matrix") == flag], "use_muon": flag}
        for flag in (True, False)
    ]
    return [g for g in groups if g["params"]]


@functools.cache
def _uses_muon_flag(cls: Any) -> bool:
    """Whether the class, or a class it inherits its convention from, reads ``use_muon`` in its constructor."""
    for klass in getattr(cls, "__mro__", ()):
        if klass is torch.optim.Optimizer:
            break
        try:
            if "__init__" in vars(klass) and "use_muon" in inspect.getsource(klass.__init__):
                return True
        except (TypeError, OSError):
            continue
    return False


def _check_roles(entry: Entry, roles: list[str], where: str) -> None:
    if entry.roles is None:
        return
    other = sorted({r for r in roles if r not in entry.roles})
    if other:
        raise InvalidValueError(
            f"optimizer {entry.name!r} takes {' and '.join(entry.roles)} parameters only; {where} also has "
            f"{', '.join(other)} ones: give those to another optimizer, e.g. --optimizer {entry.name}+torch-adamw"
        )


def build_composite(entry: CompositeEntry, leaves: list[Tensor], roles: list[str], settings: Mapping[str, Any]) -> Any:
    """The :class:`Combined` of a composite over ``leaves`` (``roles``: theirs, in order)."""
    made: list[Any] = []  # every optimizer built, at any depth (a schedule-free base inside a wrapper)
    built = _build_node(entry.node, entry, entry.by_component(settings), leaves, roles, made)
    if isinstance(built, Combined):  # a hybrid: it switches the modes of what it was built from
        return built
    return Combined([built], entry.name, [opt for opt in made if has_modes(opt) and opt is not built])


def _build_node(
    node: Node,
    entry: CompositeEntry,
    parts: Mapping[str, dict[str, Any]],
    leaves: list[Tensor],
    roles: list[str],
    made: list[Any],
) -> Any:
    """The optimizer of ``node`` over ``leaves``; every optimizer built is appended to ``made``."""
    where = f"{entry.name!r}'s problem"
    if node.kind == "plain":
        own = entry.parts[node.name]
        _check_roles(own, roles, where)
        opt = build(own, parts[node.name], param_groups(own, leaves, roles))
    elif node.kind == "wrapper":
        wrapper, inner = entry.parts[node.name], node.inner[0]
        if takes_base_class(wrapper):  # SAM-style: W(params, base_optimizer=Class, **the base's settings)
            if inner.kind != "plain":
                raise InvalidValueError(
                    f"optimizer {entry.name!r}: {node.name} builds its base from a class, so the base must be "
                    f"one optimizer, not {inner.text()!r}"
                )
            base = entry.parts[inner.name]
            _check_roles(base, roles, where)
            both = sorted(set(parts[inner.name]) & set(parts[node.name]))
            if both:  # the wrapper passes its keywords on to the base: one name, two values
                raise InvalidValueError(
                    f"optimizer {entry.name!r}: {node.name} and {inner.name} both take {both[0]!r}, and "
                    f"{node.name} passes its settings on to {inner.name}, so only one value could reach it"
                )
            settings = {**parts[inner.name], **parts[node.name], BASE_CLASS: base.target}
            opt = build(wrapper, settings, leaves)
        else:
            base = _build_node(inner, entry, parts, leaves, roles, made)
            keyword = wrapper_keyword(wrapper)
            if keyword:  # W(params, wrapped_optimizer=base): it takes the parameters too
                opt = build(wrapper, parts[node.name], leaves, **{keyword: base})
            else:  # W(base): Lookahead's shape, the base where the parameters go
                opt = build(wrapper, parts[node.name], base)
    else:
        opt = _hybrid(node, entry, parts, leaves, roles, made)
    made.append(opt)
    return opt


def _hybrid(
    node: Node,
    entry: CompositeEntry,
    parts: Mapping[str, dict[str, Any]],
    leaves: list[Tensor],
    roles: list[str],
    made: list[Any],
) -> Combined:
    first, rest = node.inner
    lead = first.components()[0]
    takes = first_part_roles(entry.parts[lead.name])
    mine = [i for i, r in enumerate(roles) if r in takes]
    others = [i for i, r in enumerate(roles) if r not in takes]
    if not mine or not others:
        has = ", ".join(sorted(set(roles)))
        which = first.text() if not mine else rest.text()
        raise InvalidValueError(
            f"optimizer {entry.name!r}: {which} gets no parameters: {first.text()} takes the "
            f"{' and '.join(takes)} ones and this problem's are {has}"
        )
    built = [
        _build_node(part, entry, parts, [leaves[i] for i in picked], [roles[i] for i in picked], made)
        for part, picked in ((first, mine), (rest, others))
    ]
    return Combined(built, entry.name, [opt for opt in made if has_modes(opt)])
