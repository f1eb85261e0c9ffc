"""Sweep grids: value syntax, the grid, its size (counted before it is built) and its runs.

Values, in flags and in TOML strings (:mod:`optbench.settings.config` reads the TOML files):

- a list: ``0.001,0.01,0.1``
- an integer range, both ends included: ``0-9``
- log-spaced values, both ends included: ``1e-4:1:5`` (start:stop:count) is 1e-4, 1e-3, ..., 1
- any mix of these: ``0-4,10,20-22``
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from optbench.errors import InvalidValueError
from optbench.registry import switches
from optbench.settings import declared, validate
from optbench.settings.validate import MAX_RUNS

_INT_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_values(text: str, label: str, limit: int | None = MAX_RUNS) -> list[Any]:
    """Expand a grid value (see the module docs) into a list of ints, floats or strings.

    The values are counted before any list is built: more than ``limit`` (a grid's run limit) is
    refused at once, so ``0-999999999`` costs nothing.
    """
    parts = [p.strip() for p in str(text).split(",")]
    count = 0
    for part in parts:
        count += _size(part, label, text)
    if limit is not None and count > limit:
        raise InvalidValueError(
            f"{label} {text!r} gives {count:,} values, so more than the limit of {limit:,} runs; "
            f"pass --max-runs {count} to allow it"
        )
    values: list[Any] = []
    for part in parts:
        if match := _INT_RANGE.match(part):
            values += range(int(match[1]), int(match[2]) + 1)
        elif _is_logspace(part):
            values += _logspace(part, label)
        else:
            values.append(_scalar(part))
    return values


def _is_logspace(part: str) -> bool:
    return part.count(":") == 2 and not part.startswith(("-", ":"))


def _size(part: str, label: str, text: str) -> int:
    """How many values one comma-separated item gives (checked, not expanded)."""
    if not part:
        raise InvalidValueError(f"{label} {text!r}: an empty item; expected e.g. 0.01,0.1 or 0-9 or 1e-4:1:5")
    if match := _INT_RANGE.match(part):
        start, stop = int(match[1]), int(match[2])
        if stop < start:
            raise InvalidValueError(
                f"{label} {part!r}: the range runs backwards; expected START-STOP with START <= STOP"
            )
        return stop - start + 1
    if _is_logspace(part):
        return _logspace_count(part, label)
    return 1


def _logspace_count(part: str, label: str) -> int:
    start_text, stop_text, count_text = part.split(":")
    try:
        start, stop, count = float(start_text), float(stop_text), int(count_text)
    except ValueError:
        raise InvalidValueError(f"{label} {part!r}: expected START:STOP:COUNT such as 1e-4:1:5") from None
    if not (start > 0 and stop > 0 and count >= 2 and math.isfinite(start) and math.isfinite(stop)):
        raise InvalidValueError(f"{label} {part!r}: log spacing needs START, STOP > 0 and COUNT >= 2")
    return count


def _logspace(part: str, label: str) -> list[float]:
    count = _logspace_count(part, label)
    start, stop = (float(x) for x in part.split(":")[:2])
    ratio = (stop / start) ** (1 / (count - 1))
    return [float(f"{start * ratio**i:.12g}") for i in range(count)]


def _scalar(text: str) -> Any:
    if not validate.plain_number(text):  # "1_0" or Arabic-Indic digits stay text (refused as numbers later)
        return {"true": True, "false": False}.get(text.lower(), text)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def as_values(value: Any, label: str, limit: int | None = MAX_RUNS) -> list[Any]:
    """A TOML value as a grid: a list (whose strings may be grid syntax), grid syntax, or one value."""
    if isinstance(value, list):
        out = [v for item in value for v in (parse_values(item, label, limit) if isinstance(item, str) else [item])]
        if limit is not None and len(out) > limit:
            raise InvalidValueError(f"{label}: {len(out):,} values, more than the limit of {limit:,} runs")
        return out
    if isinstance(value, str):
        return parse_values(value, label, limit)
    if isinstance(value, dict):
        raise InvalidValueError(f"{label}: a table is not a value; expected a value or a list of values")
    return [value]


class Grid:
    """What to run: problems x their option grids x optimizers x their hyperparameter grids x seeds.

    ``settings`` are the run settings (:data:`optbench.settings.declared.SETTINGS`: ``epochs``,
    ``batch_size``, ...), one value each for the whole grid, checked as their flags are; each is
    also an attribute (``grid.epochs``). ``lr`` None: each optimizer's default. ``opt`` and
    ``problem_opt`` map a name to its own setting grids; ``shared_opt`` and ``shared_problem_opt``
    hold grids for every optimizer or problem that takes the setting. ``source`` is the file the
    grid came from, for messages ("" for flags and Python).
    """

    def __init__(
        self,
        problems: list[str],
        optimizers: list[str],
        seeds: list[int] | None = None,
        *,
        lr: list[float] | None = None,
        opt: dict[str, dict[str, list[Any]]] | None = None,
        problem_opt: dict[str, dict[str, list[Any]]] | None = None,
        shared_opt: dict[str, list[Any]] | None = None,
        shared_problem_opt: dict[str, list[Any]] | None = None,
        source: str = "",
        **settings: Any,
    ):
        from optbench.registry import canonical_name

        self.problems, self.optimizers = list(problems), [canonical_name(o) for o in optimizers]
        self.seeds = [0] if seeds is None else list(seeds)
        self.lr = None if lr is None else list(lr)
        self.opt, self.problem_opt = dict(opt or {}), dict(problem_opt or {})
        self.shared_opt, self.shared_problem_opt = dict(shared_opt or {}), dict(shared_problem_opt or {})
        self.source = source
        for key, values in (("problem", self.problems), ("optimizer", self.optimizers), ("seeds", self.seeds)):
            if not values:
                raise InvalidValueError(f"{self.label(key)}: the grid is empty; give at least one value")
        for seed in self.seeds:
            validate.seed(seed, self.label("seeds"))
        self.settings = declared.resolve({k: v for k, v in settings.items() if v is not None}, self.label)
        if self.lr is not None:
            if not self.lr:
                raise InvalidValueError(f"{self.label('lr')}: the grid is empty; give at least one value")
            self.lr = [validate.lr(v, self.label("lr")) for v in self.lr]
        for key, grids in (("opt", self.opt), ("problem_opt", self.problem_opt)):
            for name, table in grids.items():
                for setting, values in table.items():
                    if not values:
                        raise InvalidValueError(f"{self.label(f'{key}.{name}.{setting}')}: the grid is empty")
        for flag, table in (("--opt", self.shared_opt), ("--problem-opt", self.shared_problem_opt)):
            for key, values in table.items():
                if not values:
                    raise InvalidValueError(f"{flag} {key}: the grid is empty; give at least one value")
        if self.lr is not None and "lr" in self.shared_opt:
            raise InvalidValueError("--lr and --opt lr= both set the learning rate; give only one of them")

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(f"'Grid' object has no attribute {name!r}")

    def replace(self, **changes: Any) -> Grid:
        """A copy with ``changes`` (any constructor argument or run setting), checked again."""
        fields = ("problems", "optimizers", "seeds", "lr", "opt", "problem_opt", "shared_opt", "shared_problem_opt")
        given = {name: getattr(self, name) for name in fields} | {"source": self.source} | dict(self.settings)
        return Grid(**(given | changes))

    def label(self, key: str) -> str:
        """How messages name a setting: ``--batch-size`` for flags, ``sweep.toml: batch_size`` for a file."""
        return f"{self.source}: {key}" if self.source else f"--{key.replace('_', '-')}"

    def option_grid(self, problem: str, accepts: Collection[str]) -> dict[str, list[Any]]:
        """``problem``'s option grid: the shared one's options it ``accepts`` (its option names), then its own."""
        return {k: v for k, v in self.shared_problem_opt.items() if k in accepts} | self.problem_opt.get(problem, {})

    def _slots(self) -> Iterator[tuple[str, dict[str, list[Any]], str, dict[str, list[Any]], list[Any]]]:
        """(problem, its option grid, optimizer, its hyperparameter grid, its lrs) for every pair."""
        from optbench.registry import OPTIMIZERS, PROBLEMS

        unused = [k for k in self.shared_opt if not any(_takes(OPTIMIZERS.get(o), k) for o in self.optimizers)]
        if unused:
            raise InvalidValueError(f"--opt {unused[0]}: none of the optimizers {', '.join(self.optimizers)} takes it")
        unused = [
            k for k in self.shared_problem_opt if not any(k in PROBLEMS.get(p).hyperparameters() for p in self.problems)
        ]
        if unused:
            raise InvalidValueError(
                f"--problem-opt {unused[0]}: none of the problems {', '.join(self.problems)} takes it"
            )
        for problem in self.problems:
            option_grid = self.option_grid(problem, PROBLEMS.get(problem).hyperparameters())
            for optimizer in self.optimizers:
                entry = OPTIMIZERS.get(optimizer)
                takes, aliases = entry.hyperparameters(), entry.aliases()
                grid = {aliases.get(k, k): v for k, v in self.shared_opt.items() if _takes(entry, k)}
                grid |= {aliases.get(k, k): v for k, v in self.opt.get(optimizer, {}).items()}
                grid = {k: _tuples(v, takes.get(k), self.label(f"opt {k}")) for k, v in grid.items()}
                named = [k for k in (*self.shared_opt, *self.opt.get(optimizer, {})) if aliases.get(k) == "lr"]
                if named and self.lr is not None:
                    raise InvalidValueError(
                        f"--lr and --opt {named[0]} both set the learning rate of {optimizer}; give only one of them"
                    )
                lrs = grid.pop("lr", self.lr)
                yield problem, option_grid, optimizer, grid, [None] if lrs is None else list(lrs)

    def count(self) -> int:
        """How many runs :meth:`jobs` would give, without building them."""
        total = 0
        for _, options, _, settings, lrs in self._slots():
            total += (
                math.prod(len(v) for v in options.values()) * math.prod(len(v) for v in settings.values()) * len(lrs)
            )
        return total * len(self.seeds)

    def jobs(self) -> list[dict[str, Any]]:
        """Every run of the grid as plain data (picklable; :func:`optbench.results.schema.run_key` names it)."""
        out = []
        for problem, option_grid, optimizer, grid, lrs in self._slots():
            for options in product(option_grid):
                for settings in product(grid):
                    for lr in lrs:
                        hp = settings | ({} if lr is None else {"lr": lr})
                        for seed in self.seeds:
                            out.append(
                                {
                                    "problem": problem,
                                    "optimizer": optimizer,
                                    "problem_options": options,
                                    "hyperparameters": hp,
                                    "seed": seed,
                                    **self.settings,
                                }
                            )
        return out


def _tuples(values: list[Any], default: Any, label: str) -> list[Any]:
    """A grid of a tuple-valued setting (Adam's ``betas``): ``0.9,0.99`` is one value, not two;
    several are separated by ``;`` (``0.9,0.99;0.8,0.9``) or given as a list of lists in a file."""
    if not isinstance(default, tuple | list) or not default:
        return values
    if all(isinstance(v, list | tuple) for v in values):
        return [tuple(v) for v in values]
    flat: list[Any] = []  # "0.99;0.8" (a ';' inside one comma-separated item) is two values
    for v in values:
        flat += [_scalar(p.strip()) for p in v.split(";")] if isinstance(v, str) else [v]
    groups = [flat[i : i + len(default)] for i in range(0, len(flat), len(default))]
    if not flat or len(flat) % len(default):
        raise InvalidValueError(
            f"{label}: a grid of {len(default)}-tuples; give {len(default)} comma-separated values, and "
            f"separate several with ';' (e.g. {','.join(map(str, default))};{','.join(map(str, default))})"
        )
    return [tuple(g) for g in groups]


def product(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """``{"a": [1, 2], "b": [3]}`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def parse_shared_opts(items: Sequence[str], flag: str = "--opt", limit: int | None = MAX_RUNS) -> dict[str, list[Any]]:
    """``--opt momentum=0,0.9`` -> ``{"momentum": [0, 0.9]}``."""
    from optbench.settings.options import parse_assignments

    return {k: parse_values(v, f"{flag} {k}", limit) for k, v in parse_assignments(items, flag).items()}


def _takes(entry: Any, key: str) -> bool:
    """Whether an optimizer takes setting ``key``: a name of its, another name of one (a composite's
    ``torch-muon.lr``), or a switch of its own package's modules (:mod:`optbench.registry.switches`)."""
    return key in {*entry.hyperparameters(), *entry.aliases()} or switches.takes(entry, key)
