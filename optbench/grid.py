"""Sweep grids: value syntax, TOML files, and expansion into runs.

Values, in flags and in TOML strings:

- a list: ``0.001,0.01,0.1``
- an integer range, both ends included: ``0-9``
- log-spaced values, both ends included: ``1e-4:1:5`` (start:stop:count) is 1e-4, 1e-3, ..., 1
- any mix of these: ``0-4,10,20-22``
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean

_INT_RANGE = re.compile(r"^(\d+)-(\d+)$")
TOML_KEYS = {
    "problems",
    "optimizers",
    "seeds",
    "epochs",
    "batch_size",
    "eval_every",
    "device",
    "schedule",
    "warmup_steps",
    "lr",
    "opt",
    "problem_opt",
    "tune_seeds",
    "eval_seeds",
    "select",
}


def parse_values(text: str, label: str) -> list[Any]:
    """Expand a grid value (see the module docs) into a list of ints, floats or strings."""
    values: list[Any] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            raise InvalidValueError(f"{label} {text!r}: an empty item; expected e.g. 0.01,0.1 or 0-9 or 1e-4:1:5")
        if match := _INT_RANGE.match(part):
            start, stop = int(match[1]), int(match[2])
            if stop < start:
                raise InvalidValueError(
                    f"{label} {part!r}: the range runs backwards; expected START-STOP with START <= STOP"
                )
            values += range(start, stop + 1)
        elif part.count(":") == 2 and not part.startswith(("-", ":")):
            values += _logspace(part, label)
        else:
            values.append(_scalar(part))
    return values


def _logspace(part: str, label: str) -> list[float]:
    start_text, stop_text, count_text = part.split(":")
    try:
        start, stop, count = float(start_text), float(stop_text), int(count_text)
    except ValueError:
        raise InvalidValueError(f"{label} {part!r}: expected START:STOP:COUNT such as 1e-4:1:5") from None
    if not (start > 0 and stop > 0 and count >= 2 and math.isfinite(start) and math.isfinite(stop)):
        raise InvalidValueError(f"{label} {part!r}: log spacing needs START, STOP > 0 and COUNT >= 2")
    ratio = (stop / start) ** (1 / (count - 1))
    return [float(f"{start * ratio**i:.12g}") for i in range(count)]


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _as_values(value: Any, label: str) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in (parse_values(item, label) if isinstance(item, str) else [item])]
    if isinstance(value, str):
        return parse_values(value, label)
    return [value]


@dataclass
class Grid:
    """What to run: problems x their option grids x optimizers x their hyperparameter grids x seeds."""

    problems: list[str]
    optimizers: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 100
    batch_size: int | None = None
    eval_every: int | None = None
    device: str = "cpu"
    schedule: str = "constant"
    warmup_steps: int = 0
    lr: list[float] | None = None  # None: each optimizer's default
    opt: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # optimizer -> setting -> values
    problem_opt: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    shared_opt: dict[str, list[Any]] = field(default_factory=dict)  # for every optimizer that takes it
    shared_problem_opt: dict[str, list[Any]] = field(default_factory=dict)  # for every problem that takes it

    def __post_init__(self) -> None:
        for label, values in (("--problem", self.problems), ("--optimizer", self.optimizers), ("--seeds", self.seeds)):
            if not values:
                raise InvalidValueError(f"{label}: the grid is empty; give at least one value")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise InvalidValueError(f"--seeds {self.seeds!r}: expected whole numbers >= 0, e.g. 0-9")

    def jobs(self) -> list[dict[str, Any]]:
        """Every run of the grid as plain data (picklable, hashable by :func:`run_key`)."""
        from optbench.registry import OPTIMIZERS, PROBLEMS

        out = []
        for problem in self.problems:
            accepts = PROBLEMS.get(problem).hyperparameters()
            option_grid = {k: v for k, v in self.shared_problem_opt.items() if k in accepts}
            option_grid |= self.problem_opt.get(problem, {})
            for options in _product(option_grid):
                for optimizer in self.optimizers:
                    takes = OPTIMIZERS.get(optimizer).hyperparameters()
                    grid = {k: v for k, v in self.shared_opt.items() if k in takes}
                    grid |= self.opt.get(optimizer, {})
                    lrs = grid.pop("lr", self.lr)
                    for settings in _product(grid):
                        for lr in lrs if lrs is not None else [None]:
                            hp = settings | ({} if lr is None else {"lr": lr})
                            for seed in self.seeds:
                                out.append(
                                    {
                                        "problem": problem,
                                        "optimizer": optimizer,
                                        "problem_options": options,
                                        "hyperparameters": hp,
                                        "seed": seed,
                                        "epochs": self.epochs,
                                        "batch_size": self.batch_size,
                                        "eval_every": self.eval_every,
                                        "device": self.device,
                                        "schedule": self.schedule,
                                        "warmup_steps": self.warmup_steps,
                                    }
                                )
        unused = [
            k for k in self.shared_opt if not any(k in OPTIMIZERS.get(o).hyperparameters() for o in self.optimizers)
        ]
        if unused:
            raise InvalidValueError(f"--opt {unused[0]}: none of the optimizers {', '.join(self.optimizers)} takes it")
        unused = [
            k for k in self.shared_problem_opt if not any(k in PROBLEMS.get(p).hyperparameters() for p in self.problems)
        ]
        if unused:
            raise InvalidValueError(
                f"--problem-opt {unused[0]}: none of the problems {', '.join(self.problems)} takes it"
            )
        return out


def _product(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def run_key(job: Mapping[str, Any]) -> str:
    """A run's identity: a hash of its full configuration (what resume matches on)."""
    text = json.dumps(job, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_grid_file(path: str | Path) -> tuple[Grid, dict[str, Any]]:
    """A sweep TOML file: the grid, and the tuning keys (tune_seeds, eval_seeds, select) if any."""
    from optbench.options import read_toml

    raw = read_toml(path)
    for key in raw:
        if key not in TOML_KEYS:
            raise InvalidValueError(
                f"{path}: unknown key {key!r}{did_you_mean(key, TOML_KEYS)}; valid keys: {', '.join(sorted(TOML_KEYS))}"
            )
    if "problems" not in raw or "optimizers" not in raw:
        raise InvalidValueError(f"{path}: needs problems and optimizers")

    def names(key: str) -> list[str]:
        value = raw[key]
        return [value] if isinstance(value, str) else list(value)

    grid = Grid(
        problems=names("problems"),
        optimizers=names("optimizers"),
        seeds=_as_values(raw.get("seeds", [0]), "seeds"),
        epochs=raw.get("epochs", 100),
        batch_size=raw.get("batch_size"),
        eval_every=raw.get("eval_every"),
        device=raw.get("device", "cpu"),
        schedule=raw.get("schedule", "constant"),
        warmup_steps=raw.get("warmup_steps", 0),
        lr=None if "lr" not in raw else [float(v) for v in _as_values(raw["lr"], "lr")],
        opt={
            o: {k: _as_values(v, f"opt.{o}.{k}") for k, v in table.items()} for o, table in raw.get("opt", {}).items()
        },
        problem_opt={
            p: {k: _as_values(v, f"problem_opt.{p}.{k}") for k, v in table.items()}
            for p, table in raw.get("problem_opt", {}).items()
        },
    )
    tuning = {k: raw[k] for k in ("tune_seeds", "eval_seeds", "select") if k in raw}
    return grid, tuning


def parse_shared_opts(items: Sequence[str], flag: str = "--opt") -> dict[str, list[Any]]:
    """``--opt momentum=0,0.9`` -> ``{"momentum": [0, 0.9]}``."""
    from optbench.options import parse_assignments

    return {k: parse_values(v, f"{flag} {k}") for k, v in parse_assignments(items, flag).items()}
