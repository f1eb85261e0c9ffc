"""Quality matrices: TOML tables of cells (problems x optimizers x learning rates, over seeds), checked
value by value as the flags they stand for, and expanded into cells with readable ids.

The same checks read a matrix from its TOML file and from the copy a baseline file keeps, so a
hand-edited or damaged baseline gets one line, not a traceback, and never imports a module on its
own (names must be registered unless ``allow_import_paths``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean
from optbench.settings import declared, validate

# The run settings a matrix may give (every declared one but the device: `check --device` chooses it).
RUN_SETTINGS = tuple(name for name in declared.NAMES if name != "device")
# Matrix keys: settings any level may give, and what only a [[cells]] table holds.
SETTINGS = {
    **{name: declared.setting(name).default for name in RUN_SETTINGS},
    "epochs": 50,
    "seeds": [0, 1],
    "float64": True,
    "rtol": 0.05,
    "atol": 1e-9,
    "steps_rtol": 0.1,
    "target": 0.1,
}
CELL_KEYS = {"problems", "optimizers", "lr", "opt", "problem_opt"}


@dataclass
class Cell:
    """One problem x optimizer x settings combination, run over several seeds."""

    id: str
    problem: str
    optimizer: str
    lr: float | None
    opt: dict[str, Any]
    problem_opt: dict[str, Any]
    settings: dict[str, Any]


def load_matrix(path: str | os.PathLike[str], **checks: Any) -> dict[str, Any]:
    """Read and validate a matrix TOML file; returns its normalized form (``checks``: :func:`normalize_matrix`'s)."""
    from optbench.settings.inputs import read_toml

    return normalize_matrix(read_toml(path), str(path), **checks)


def normalize_matrix(
    raw: Mapping[str, Any],
    where: str = "matrix",
    *,
    allow_import_paths: bool = False,
    max_epochs: int | None = validate.MAX_EPOCHS,
) -> dict[str, Any]:
    """Every cell with the defaults filled in, each value checked as its flag would be; names must be
    registered ones unless ``allow_import_paths`` (a matrix or baseline never imports a module on its own)."""
    if not isinstance(raw, Mapping):
        raise InvalidValueError(f"{where}: expected a table of settings and [[cells]]")
    _known(raw, set(SETTINGS) | {"cells"}, where)
    cells = raw.get("cells")
    if not isinstance(cells, list) or not cells:
        raise InvalidValueError(f"{where}: needs at least one [[cells]] table with problems and optimizers")
    defaults = {**SETTINGS, **{k: v for k, v in raw.items() if k != "cells"}}
    out = []
    for i, cell in enumerate(cells, start=1):
        label = f"{where} [[cells]] #{i}"
        if not isinstance(cell, Mapping):
            raise InvalidValueError(f"{label}: expected a table with problems and optimizers")
        _known(cell, set(SETTINGS) | CELL_KEYS, label)
        for key in ("problems", "optimizers"):
            if not cell.get(key):
                raise InvalidValueError(f"{label}: needs {key} (a name or a list of names)")
        merged = {**defaults, **cell}
        _check_cell(merged, label, allow_import_paths, max_epochs)
        out.append(merged)
    return {"cells": out}


def _check_cell(cell: Mapping[str, Any], label: str, allow_import_paths: bool, max_epochs: int | None) -> None:
    """The checks of the flags these keys stand for (:mod:`optbench.settings.validate`), before any run."""
    for kind, key in (("problem", "problems"), ("optimizer", "optimizers")):
        for name in _as_list(cell[key]):
            validate.registered_name(kind, name, label, allow_import_paths)
    declared.resolve({name: cell[name] for name in RUN_SETTINGS if cell[name] is not None}, lambda k: f"{label}: {k}")
    validate.epochs(cell["epochs"], f"{label}: epochs", max_epochs)
    seeds = _as_list(cell["seeds"])
    if not seeds:
        raise InvalidValueError(f"{label}: seeds is empty; give at least one seed")
    for seed in seeds:
        validate.seed(seed, f"{label}: seeds")
    validate.flag(cell["float64"], f"{label}: float64")
    for key in ("rtol", "atol", "steps_rtol", "target"):
        validate.number(cell[key], f"{label}: {key}")
    lrs = _as_list(cell.get("lr"))
    if not lrs:
        raise InvalidValueError(f"{label}: lr is empty; give a number, a list of numbers, or leave it out")
    for lr in lrs:
        if lr is not None:
            validate.lr(lr, f"{label}: lr")
    for key in ("opt", "problem_opt"):
        if not isinstance(cell.get(key, {}), Mapping):
            raise InvalidValueError(f"{label}: {key} must be a table, e.g. {key} = {{ n = 200 }}")


def _known(table: Mapping[str, Any], valid: set[str], where: str) -> None:
    for key in table:
        if key not in valid:
            raise InvalidValueError(
                f"{where}: unknown key {key!r}{did_you_mean(key, valid)}; valid keys: {', '.join(sorted(valid))}"
            )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def expand(matrix: Mapping[str, Any]) -> list[Cell]:
    """Every problem x optimizer x lr of every [[cells]] table, with a readable unique id."""
    cells: dict[str, Cell] = {}
    for table in matrix["cells"]:
        settings = {k: table[k] for k in SETTINGS}
        for problem, optimizer, lr in itertools.product(
            _as_list(table["problems"]), _as_list(table["optimizers"]), _as_list(table.get("lr"))
        ):
            opt, problem_opt = dict(table.get("opt", {})), dict(table.get("problem_opt", {}))
            parts = [problem, optimizer] + ([f"lr={lr}"] if lr is not None else [])
            parts += [f"{k}={v}" for k, v in {**opt, **problem_opt}.items()]
            cell_id = "/".join(str(p) for p in parts)
            if cell_id in cells:
                raise InvalidValueError(f"matrix: cell {cell_id!r} is declared twice")
            cells[cell_id] = Cell(cell_id, problem, optimizer, lr, opt, problem_opt, settings)
    return list(cells.values())
