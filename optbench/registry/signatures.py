"""A class's constructor arguments read from its source file, without importing it (or torch).

What lets a misspelt ``--opt`` key of a built-in be answered before torch loads, with no hand-kept
copy of the settings: the module's file is found on ``sys.path`` by hand (``importlib.util.find_spec``
of a submodule would import its parents), parsed with :mod:`ast`, and ``from x import Name`` is
followed (``torch.optim:SGD`` lives in ``torch/optim/sgd.py``). Where the source does not say
(no ``__init__`` of its own, ``**kwargs``, a name bound some other way) the answer is None and the
class itself is read once it is imported. ``tests/test_registry.py`` checks the answer against
:func:`inspect.signature` of every built-in.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

_HOPS = 6  # re-exports followed before giving up


@functools.cache
def constructor_arguments(target: str) -> tuple[str, ...] | None:
    """The keyword arguments of ``module:Class``'s ``__init__`` in order (``self`` left out), or None
    when the source alone cannot tell (see the module's docs)."""
    module, _, name = target.partition(":")
    for _ in range(_HOPS):
        path = _source_file(module)
        if path is None or "." in name:
            return None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _binding(tree, name, module, path.name == "__init__.py")
        if isinstance(found, ast.ClassDef):
            return _init_arguments(found)
        if found is None:
            return None
        module, name = found
    return None


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


def _init_arguments(cls: ast.ClassDef) -> tuple[str, ...] | None:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None or init.args.kwarg is not None:
        return None
    args = [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]
    return tuple(a.arg for a in args[1:])  # without self
