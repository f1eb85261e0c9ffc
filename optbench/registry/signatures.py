"""A class's constructor arguments read from its source file, without importing it (or torch).

What lets a misspelt ``--opt`` key of a built-in be answered before torch loads, with no hand-kept
copy of the settings: the module's file is found on ``sys.path`` by hand (``importlib.util.find_spec``
of a submodule would import its parents), parsed with :mod:`ast`, and ``from x import Name`` is
followed (``torch.optim:SGD`` lives in ``torch/optim/sgd.py``). Where the source does not say
(no ``__init__`` of its own, ``**kwargs``, a name bound some other way) the answer is None and the
class itself is read once it is imported. A built-in problem's whole signature is read the same way
(:func:`constructor_signature`: defaults that are literals), so its options are resolved, and what
they cost checked, before torch loads (:class:`SourceClass`). ``tests/test_registry.py`` checks the
answers against :func:`inspect.signature` of every built-in.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
from pathlib import Path

_HOPS = 6  # re-exports followed before giving up


def constructor_arguments(target: str) -> tuple[str, ...] | None:
    """The keyword arguments of ``module:Class``'s ``__init__`` in order (``self`` left out), or None
    when the source alone cannot tell (see the module's docs)."""
    init = _init(target)
    if init is None:
        return None
    return tuple(a.arg for a in _arguments(init)[1:])  # without self


@functools.cache
def constructor_signature(target: str) -> inspect.Signature | None:
    """The signature of ``module:Class``'s constructor as :func:`inspect.signature` gives it once the
    class is imported under ``from __future__ import annotations`` (``self`` left out, each
    annotation as its text), or None where the source cannot tell: besides :func:`constructor_arguments`'
    cases, ``*args`` or a default that is not a literal (``ast.literal_eval``)."""
    init = _init(target)
    if init is None or init.args.vararg is not None:
        return None
    positional = [*init.args.posonlyargs, *init.args.args]
    defaults = [None] * (len(positional) - len(init.args.defaults)) + list(init.args.defaults)
    kinds = [inspect.Parameter.POSITIONAL_ONLY] * len(init.args.posonlyargs)
    kinds += [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(init.args.args)
    rows = list(zip(positional, defaults, kinds, strict=True))[1:]  # without self
    rows += [
        (a, d, inspect.Parameter.KEYWORD_ONLY) for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True)
    ]
    parameters = []
    for arg, default, kind in rows:
        try:
            value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        hint = inspect.Parameter.empty if arg.annotation is None else ast.unparse(arg.annotation)
        parameters.append(inspect.Parameter(arg.arg, kind, default=value, annotation=hint))
    return inspect.Signature(parameters)


class SourceClass:
    """A class not imported yet, as its source and its registration tell it: what
    :func:`inspect.signature` reads (its constructor's signature) and the attributes given (a
    problem's torch-free ``cost``). The checks that run before torch read it; nothing builds it."""

    def __init__(self, target: str, signature: inspect.Signature, **attributes: object):
        self.__signature__, self.target = signature, target
        vars(self).update(attributes)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise TypeError(f"{self.target} is read from its source, not imported; the registry's get() builds it")


@functools.cache
def _init(target: str) -> ast.FunctionDef | None:
    """The ``__init__`` of ``module:Class`` in its source, or None (see the module's docs)."""
    module, _, name = target.partition(":")
    for _ in range(_HOPS):
        path = _source_file(module)
        if path is None or "." in name:
            return None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _binding(tree, name, module, path.name == "__init__.py")
        if isinstance(found, ast.ClassDef):
            init = next((n for n in found.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            return None if init is None or init.args.kwarg is not None else init
        if found is None:
            return None
        module, name = found
    return None


def _arguments(init: ast.FunctionDef) -> list[ast.arg]:
    return [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]


def _source_file(module: str) -> Path | None:
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    folders = list(spec.submodule_search_locations or [])
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        for folder in folders:
            package = Path(folder) / part
            if (package / "__init__.py").is_file():
                if last:
                    return package / "__init__.py"
                folders = [str(package)]
                break
            if last and (Path(folder) / f"{part}.py").is_file():
                return Path(folder) / f"{part}.py"
        else:
            return None
    return None


def _binding(tree: ast.Module, name: str, module: str, is_package: bool) -> ast.ClassDef | tuple[str, str] | None:
    """What binds ``name`` at the module's top level: its class, or where it is imported from."""
    for node in reversed(tree.body):  # the last binding wins, as at run time
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _absolute(node, module, is_package), alias.name
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.FunctionDef) and name in _assigned(node):
            return None
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    anchor = parts[: len(parts) - node.level + (1 if is_package else 0)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _assigned(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    unpacked = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else [t])]
    return {t.id for t in unpacked if isinstance(t, ast.Name)}  # not `SGD.__doc__ = ...`: that binds no name
