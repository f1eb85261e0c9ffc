"""Answers before torch: what every command checks in its input before it imports anything heavy.

Importing torch takes one to three seconds; a misspelt optimizer, a learning rate of 0 or an
``--out`` folder that does not exist should not wait for it. So each command first hands its
flags to these checks, which use only torch-free modules: names against the registries' names
(the built-ins' import strings and installed entry points, :meth:`~optbench.registry.Registry.names`),
numbers and grids (:mod:`optbench.settings.options`, :mod:`optbench.settings.grid`), and paths
(:mod:`optbench.results.files`); the run settings' flags are checked by their own callbacks
(:mod:`optbench.settings.declared`). A bad value is the same one line, exit 2, that the library
would raise later, in tens of milliseconds.

The same goes for sizes: a built-in problem's options are resolved against its constructor's
signature read from source, and what they cost is its torch-free cost function
(:meth:`~optbench.registry.Registry.declared`), so an oversized request is refused by
:func:`optbench.settings.validate.memory` with the one line that the check before a run is built
would give (:func:`sizes`, :func:`grid_sizes`).

What needs the real classes is checked where they are built: a setting's type, the setting names
of a plugin's optimizer (a built-in's are read from its class's source), an import path
``module:Class``, the names a ``--plugin`` file adds (a ``--plugin`` file is imported as soon as
click reads the flag, so the names it adds are known here), whether a CUDA device exists, and the
size of a plugin's problem (or a run whose batch size only a plugin optimizer's class tells).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from optbench.errors import InvalidValueError, OptbenchError, UnknownNameError
from optbench.registry import OPTIMIZERS, PROBLEMS, builtin_settings
from optbench.registry.entries import is_composite
from optbench.results.files import existing_file
from optbench.settings import validate
from optbench.settings.grid import Grid, product
from optbench.settings.options import parse_assignments, resolve_settings, unknown_setting, validate_lr


def split_names(text: str) -> list[str]:
    """``"gd, torch-adam"`` -> ``["gd", "torch-adam"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def known_anywhere(name: str) -> None:
    """A problem or an optimizer (``describe``)."""
    if is_composite(name):  # a hybrid or a wrapper: its parts must be known
        OPTIMIZERS.require_known([name])
        return
    if ":" not in name and name not in PROBLEMS.names() and name not in OPTIMIZERS.names():
        raise UnknownNameError("problem or optimizer", name, PROBLEMS.names() + OPTIMIZERS.names())


def suite(name: str) -> None:
    """A suite shipped in ``optbench/suites`` (``quick``, ``standard``) or a ``.toml`` file that exists."""
    from importlib import resources

    from optbench.errors import did_you_mean

    files = resources.files("optbench.suites").iterdir()
    shipped = sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))
    if Path(name).suffix == ".toml":
        existing_file(name, "--suite")
    elif name not in shipped:
        raise InvalidValueError(
            f"--suite {name!r} is not a suite{did_you_mean(name, shipped)}; valid: {', '.join(shipped)} or a .toml file"
        )


def run_options(params: Mapping[str, Any], optimizers: list[str]) -> None:
    """The @run_options of ``run`` and ``animate`` (``optimizers``: the names ``--optimizer`` gave)."""
    if not optimizers:
        raise InvalidValueError("--optimizer: name at least one optimizer")
    PROBLEMS.require_known([params["problem"]])
    OPTIMIZERS.require_known(optimizers)
    if params["lr"] is not None:
        validate_lr(params["lr"])
    opts = parse_assignments(params["opts"], "--opt")
    for name in optimizers:
        settings(name, opts, "--opt")
    problem_options = parse_assignments(params["problem_opts"], "--problem-opt")
    sizes(params["problem"], problem_options, optimizers, params["batch_size"], "--problem-opt")


def sizes(
    problem: str, given: Mapping[str, Any], optimizers: Iterable[str], batch_size: int | None, label: str
) -> None:
    """Refuse ``given`` options of ``problem`` that need more memory than the limit, before torch
    loads, for each batch size its runs may take (``batch_size``, else each optimizer's default, else
    the problem's: :func:`optbench.settings.validate.default_batch`).
    A problem only its import describes (a plugin), or options that do not resolve (the check after
    the import says why), pass here: they are checked where the run is prepared."""
    entry = PROBLEMS.declared(problem)
    if entry is None:
        return
    try:
        options = resolve_settings(entry, given, label)
    except OptbenchError:
        return
    for size in _batch_sizes(batch_size, optimizers):
        validate.memory(entry, options, dict(given), size, label)


def grid_sizes(grid: Grid, limit: int | None) -> None:
    """:func:`sizes` for every problem option combination of a sweep or tune grid (flags or a file),
    as its runs will be prepared; a grid of more than ``limit`` combinations is left to the run count."""
    label = f"{grid.source}: problem_opt" if grid.source else "--problem-opt"
    for problem in grid.problems:
        entry = PROBLEMS.declared(problem)
        if entry is None:
            continue
        option_grid = grid.option_grid(problem, entry.hyperparameters())
        if limit is not None and math.prod(len(v) for v in option_grid.values()) > limit:
            continue
        for options in product(option_grid):
            sizes(problem, options, grid.optimizers, grid.batch_size, label)


def matrix_sizes(matrix: Mapping[str, Any], where: str) -> None:
    """:func:`sizes` for every cell of a quality matrix (``baseline``'s file, or the one a baseline
    stores, for ``check``), before torch loads."""
    from optbench.quality.matrix import expand

    for cell in expand(matrix):
        batch_size = cell.settings.get("batch_size")
        sizes(cell.problem, cell.problem_opt, [cell.optimizer], batch_size, f"{where}: problem_opt")


def _batch_sizes(batch_size: int | None, optimizers: Iterable[str]) -> list[int | None]:
    """The batch sizes the check after the import reads for runs of ``optimizers`` (None: the
    problem's default, else full batch), where they are known before torch loads (a plugin
    optimizer's class may declare its own)."""
    if batch_size is not None:
        return [batch_size]
    found: list[int | None] = []
    for name in optimizers:
        try:
            size = OPTIMIZERS.declared_batch_size(name)
        except LookupError:
            continue
        if size not in found:
            found.append(size)
    return found


def settings(name: str, given: Mapping[str, Any], flag: str) -> None:
    """A built-in optimizer's setting names, read from its class's source (a plugin's, and any the
    source cannot tell, are checked against the class once it is imported)."""
    known = builtin_settings(name)
    for key in given if known is not None else ():
        if key not in known:
            raise unknown_setting("optimizer", name, key, known, flag)
