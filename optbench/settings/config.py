"""Sweep TOML files: read, and checked exactly as the flags they stand for.

Every value goes through the same checks as its flag (:mod:`optbench.settings.validate`, and
:func:`optbench.core.runner.prepare` for hyperparameters and problem options), with a message that
names the file and the key. Problems and optimizers must be registered names: a file never
imports a module on its own (``allow_import_paths`` lifts that, from ``--allow-import-paths``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean
from optbench.settings import declared, validate
from optbench.settings.grid import Grid, as_values
from optbench.settings.validate import MAX_RUNS

TOML_KEYS = {
    "problems",
    "optimizers",
    "seeds",
    *declared.NAMES,  # the run settings: one value each for the whole grid
    "lr",
    "opt",
    "problem_opt",
    "tune_seeds",
    "eval_seeds",
    "select",
}
SELECT = ("final", "time", "validation")  # final training objective, steps to target, final val_loss


def load_grid_file(
    path: str | Path, *, allow_import_paths: bool = False, limit: int | None = MAX_RUNS
) -> tuple[Grid, dict[str, Any]]:
    """A sweep TOML file: the grid, and the tuning keys (tune_seeds, eval_seeds, select) if any, with
    ``named``: the run settings the file gives."""
    from optbench.settings.inputs import read_toml

    where = str(path)
    raw = read_toml(path)
    for key in raw:
        if key not in TOML_KEYS:
            raise InvalidValueError(
                f"{where}: unknown key {key!r}{did_you_mean(key, TOML_KEYS)}; "
                f"valid keys: {', '.join(sorted(TOML_KEYS))}"
            )
    if "problems" not in raw or "optimizers" not in raw:
        raise InvalidValueError(f"{where}: needs problems and optimizers")
    problems = _names(raw["problems"], "problem", where, allow_import_paths)
    optimizers = _names(raw["optimizers"], "optimizer", where, allow_import_paths)
    opt = _tables(raw, "opt", optimizers, where, limit)
    problem_opt = _tables(raw, "problem_opt", problems, where, limit)
    grid = Grid(
        problems=problems,
        optimizers=optimizers,
        seeds=as_values(raw.get("seeds", [0]), f"{where}: seeds", limit),
        lr=None if "lr" not in raw else as_values(raw["lr"], f"{where}: lr", limit),
        opt=opt,
        problem_opt=problem_opt,
        source=where,
        **{name: raw[name] for name in declared.NAMES if name in raw},
    )
    tuning = {k: raw[k] for k in ("tune_seeds", "eval_seeds", "select") if k in raw}
    for key in ("tune_seeds", "eval_seeds"):
        if key in tuning:
            tuning[key] = [validate.seed(s, f"{where}: {key}") for s in as_values(tuning[key], f"{where}: {key}")]
    if "select" in tuning and tuning["select"] not in SELECT:
        raise InvalidValueError(f"{where}: select {tuning['select']!r} is not valid; valid: {', '.join(SELECT)}")
    tuning["named"] = [name for name in declared.NAMES if name in raw]  # tune's fair schedule: unless named
    return grid, tuning


def _names(value: Any, kind: str, where: str, allow_import_paths: bool) -> list[str]:
    from optbench.registry import canonical_name

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise InvalidValueError(f"{where}: {kind}s must be a name or a non-empty list of names")
    checked = [validate.registered_name(kind, n, where, allow_import_paths) for n in names]
    return [canonical_name(n) for n in checked] if kind == "optimizer" else checked


def _tables(
    raw: dict[str, Any], key: str, names: list[str], where: str, limit: int | None
) -> dict[str, dict[str, list[Any]]]:
    """``[opt.NAME]`` / ``[problem_opt.NAME]``: tables of grids, for a name the grid has."""
    tables = raw.get(key, {})
    if not isinstance(tables, dict):
        raise InvalidValueError(f"{where}: {key} must be tables such as [{key}.{names[0]}]")
    kind = "optimizer" if key == "opt" else "problem"
    out = {}
    for given, table in tables.items():
        name = _canonical(given, f"{where}: [{key}.NAME]") if key == "opt" else given  # "A + B" is "A+B"
        if name in out:
            raise InvalidValueError(f"{where}: [{key}.{given}] is [{key}.{name}] again; give its settings once")
        if name not in names:
            raise InvalidValueError(
                f"{where}: [{key}.{name}] is not one of this grid's {kind}s{did_you_mean(name, names)}; "
                f"its {kind}s: {', '.join(names)}"
            )
        if not isinstance(table, dict):
            raise InvalidValueError(f"{where}: {key}.{name} must be a table of settings, e.g. [{key}.{name}]")
        out[name] = {k: as_values(v, f"{where}: {key}.{name}.{k}", limit) for k, v in table.items()}
    return out


def _canonical(name: str, where: str) -> str:
    """An optimizer name as the grid holds it (a composite without spaces), or one line naming ``where``."""
    from optbench.registry import canonical_name

    try:
        return canonical_name(name)
    except InvalidValueError as exc:
        raise InvalidValueError(f"{where}: {exc}") from None
