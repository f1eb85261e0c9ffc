"""The package's shape: no import cycle (counting imports inside functions), few top-level modules.

The graph is read from the source with ``ast``, so it sees every import a module can make, also the
lazy ones inside functions that keep ``optbench --help`` fast. ``from pkg import name`` counts as an
import of the submodule ``pkg.name`` where there is one, else of ``pkg``; a package's ``__init__``
is the node ``pkg``. Importing a submodule runs its parents' ``__init__`` too, but that is not an
edge here: every submodule would otherwise sit in a cycle with a package that re-exports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

PACKAGE = ROOT / "optbench"

# Cycles this branch does not own, each as its modules in order. The lead deletes the line when the
# core's runner, engine and loop stop importing each other; any other cycle fails the test.
MAX_TOP_LEVEL_MODULES = 6


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its body (top level or in functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def path_through(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle inside ``component``, as the modules to read in order (first repeated at the end)."""
    start, inside = component[0], set(component)
    trail, seen = [start], {start}
    while True:
        step = sorted(edges[trail[-1]] & inside)
        back = [w for w in step if w in trail]
        if back:
            return [*trail[trail.index(back[0]) :], back[0]]
        fresh = [w for w in step if w not in seen]
        trail.append(fresh[0])
        seen.add(fresh[0])


def test_the_import_graph_has_no_cycle():
    edges = graph()
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(path_through(edges, c)) for c in found)


def test_the_graph_sees_function_level_relative_and_submodule_imports():
    """What the cycle test rests on: the edges it must see are seen (it would pass vacuously otherwise)."""
    edges = graph()
    assert "optbench.registry.plugins" in edges["optbench.registry.entries"]  # `from optbench.registry import plugins`
    assert "optbench.reports.frames" in edges["optbench.reports.animation"]  # top level
    assert "optbench.studies.sweeps" in edges["optbench.cli.sweeps"]  # inside a command function
    assert "optbench.core.engine" in edges["optbench.core.runner"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert path_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_plugins_know_nothing_of_the_registry():
    """Discovery returns what it found and the Registry stores it: the dependency runs one way."""
    registry = {m for m in graph() if m == "optbench.registry" or m.startswith("optbench.registry.")}
    assert not graph()["optbench.registry.plugins"] & (registry - {"optbench.registry.plugins"})


def test_at_most_six_modules_beside_the_subpackages():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
