"""A bench's suite: the problems, each with its budget and target, the grid and the seeds.

A suite is a TOML file (``optbench/suites/quick.toml``, ``standard.toml``, or your own)::

    description = "what it is for"
    lr = "1e-4:1:9"            # the learning-rate grid every optimizer searches
    tune_seeds = "0-2"
    eval_seeds = "100-109"     # enough that 2 / 2^seeds x problems < 0.05, else the suite is refused
    extend_edges = 6           # a best lr on the grid's edge: searched past it, a grid step at a time, up to 6
    speedup = true             # baselines rerun at 1/4, 1/2, 2 and 4x the budget: each comparison's speedup
    search = "halton"          # (default) tune each optimizer's space (lr, momentum or beta1, weight decay):
    trials = 16                #   16 configurations each, quasi-random; "grid": on a grid; "lr": the lr grid alone
    studies = 3                # independent tuning studies (default 3): a verdict must hold in each
    tolerance = 0.01           # refinement stops when no step improves the tuning objective by more (relative)
    max_trials = 32            # settings per optimizer and study, exploration and refinement together
    refine = true              # compass search past every range's edge after exploring (default true)
    margin = 0.1               # a difference matters beyond 10% of the final objective (where f* is known)
    margin_loss = 3e-3         # ... or beyond 3e-3 of the loss (where it is not: Wen et al.'s threshold)
    schedule = "cosine"        # any run setting but the device, for every problem; a suite that names no
    warmup_steps = 5           #   schedule and no warm-up gets these two (the fair protocol's)
    [[problems]]
    problem = "linreg"
    epochs = 50
    target_objective = 1e-3    # steps/seconds to suboptimality <= 1e-3 (f* known: absolute)
    # target = "baseline"      # (no f*) to the best baseline's median final; target = 0.01: 1% of the start
    options = { n = 100 }      # problem options (optional); batch_size = 32 (optional)
    # select = "validation"    # choose on val_loss (held-out rows: options val_fraction = 0.2), not the training loss
    # schedule, warmup_steps, eval_every, margin, margin_loss here override the suite's for this problem
    [spaces.torch-adam]        # last (a TOML table takes the keys below it): replace or add dimensions
    lr = "log:1e-4:1"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.errors import InvalidValueError
from optbench.settings import declared, validate

if TYPE_CHECKING:
    from optbench.results.outcomes import Target

SUITES = ("quick", "standard", "lm")
FAIR_SCHEDULE = {"schedule": "cosine", "warmup_steps": 5}  # a suite that names neither gets these
MARGIN = 0.1  # relative: a final objective 10% lower or higher matters (problems with a known f*)
MARGIN_LOSS = 3e-3  # absolute, in loss units (problems without f*), as Wen et al. 2025

EXTEND_EDGES = 6  # at the quick grid's half-decade steps: up to 1,000x past either end
BASELINE_TARGET = "baseline"  # a suite's target = "baseline": the best baseline's median final (targets())


@dataclass(frozen=True)
class Entry:
    """One problem of a suite: the problem with its options, its budget and its target."""

    problem: str
    epochs: int
    target: float | str = 0.01  # a share of each run's start, or "baseline" (see fixed_target)
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # its other run settings: schedule, warm-up, ...
    target_objective: float | None = None  # an absolute objective: suboptimality where f* is known
    select: str = "final"  # what tuning chooses on: the final training objective, or "validation" (val_loss)
    margin: float = MARGIN  # relative margin of importance where f* is known
    margin_loss: float = MARGIN_LOSS  # absolute margin (loss units) where it is not

    def fixed_target(self) -> Target | None:
        """The target known before any run: an absolute objective (``target_objective``), or a share of
        each run's start (``target``); None for ``target = "baseline"``, which :func:`targets` derives."""
        from optbench.results.outcomes import Target  # pandas: not needed to read a suite

        if self.target_objective is not None:
            return Target(self.target_objective, relative=False)
        return None if self.target == BASELINE_TARGET else Target(float(self.target))

    @property
    def label(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.problem} {shown}".strip()


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    lr: list[float]
    tune_seeds: list[int]
    eval_seeds: list[int]
    entries: list[Entry]
    extend_edges: int = EXTEND_EDGES  # grid steps a best lr on the edge is searched past (tune's extend)
    speedup: bool = True  # rerun the baselines over a ladder of budgets for each comparison's speedup
    search: str = "halton"  # "halton" or "grid": each optimizer's space (studies.spaces); "lr": the lr grid alone
    trials: int = 16  # configurations per optimizer when a space is searched: the same for every one
    studies: int = 3  # independent tuning studies (studies.search)
    tolerance: float = 0.01  # refinement's relative tolerance
    max_trials: int = 32  # settings per optimizer and study, refinement included
    refine: bool = True
    spaces: dict[str, dict[str, str]] = field(default_factory=dict)  # the suite's overrides, by optimizer
    baselines: tuple[str, ...] | None = None  # what it compares against unless --baselines says; None: the default
    source: str = ""  # the file (or shipped suite) it was read from, as given: what messages name

    def protocol(self) -> Any:
        """How a space search tunes (:class:`optbench.studies.search.Protocol`)."""
        from optbench.studies.search import Protocol

        return Protocol(self.trials, self.search, self.studies, self.tolerance, self.max_trials, self.refine)


def load_suite(name: str, *, allow_import_paths: bool = False) -> Suite:
    """A built-in suite by name, or a TOML file by path.

    Its problems must be registered names: a suite file someone sent you must not run their code
    (``problem = "torch.hub:load"`` would), unless ``allow_import_paths`` (``--allow-import-paths``)."""
    from optbench.settings.inputs import read_toml
    from optbench.settings.validate import registered_name

    if name in SUITES:
        path = resources.files("optbench.suites") / f"{name}.toml"
        with resources.as_file(path) as file:
            raw = read_toml(file, "--suite")
    elif Path(name).suffix == ".toml":
        raw = read_toml(name, "--suite")
    else:
        from optbench.errors import did_you_mean

        raise InvalidValueError(
            f"--suite {name!r} is not a suite{did_you_mean(name, SUITES)}; valid: {', '.join(SUITES)} or a .toml file"
        )
    # Run settings (schedule, warmup_steps, eval_every, ...: optbench.settings.declared) may be given for
    # every problem at the top and per problem; the device is the command's (--device).
    run_keys = [k for k in declared.NAMES if k != "device"]
    known = {"description", "lr", "tune_seeds", "eval_seeds", "extend_edges", "speedup", "problems", *run_keys}
    known |= {"search", "trials", "spaces", "baselines", *PROTOCOL_KEYS, "margin", "margin_loss"}
    known -= {"epochs", "batch_size"}
    unknown = set(raw) - known
    if unknown:
        raise InvalidValueError(
            f"suite {name!r}: unknown key {sorted(unknown)[0]!r}; valid: {', '.join(sorted(known))}"
        )
    entries = []
    problems = raw.get("problems", [])
    if not isinstance(problems, list):
        raise InvalidValueError(f"suite {name!r}: problems must be [[problems]] tables, not {validate.shown(problems)}")
    for i, item in enumerate(problems):
        if not isinstance(item, dict) or "problem" not in item or "epochs" not in item:
            raise InvalidValueError(f"suite {name!r}: problems[{i}] needs a problem and epochs")
        extra = set(item) - {"problem", "target", "target_objective", "select", "options", "margin", "margin_loss"}
        extra -= set(run_keys)
        if extra:
            raise InvalidValueError(f"suite {name!r}: problems[{i}] has an unknown key {sorted(extra)[0]!r}")
        where = f"suite {name!r}: problems[{i}]"
        problem = registered_name("problem", item["problem"], where, allow_import_paths)
        given = {k: raw[k] for k in run_keys if k in raw} | {k: item[k] for k in run_keys if k in item}
        if not set(FAIR_SCHEDULE) & given.keys():  # the fair protocol's schedule unless the suite names one
            given = FAIR_SCHEDULE | given
        settings = declared.resolve(given, lambda key, where=where: f"{where}: {key}")
        options = item.get("options", {})
        if not isinstance(options, dict):
            raise InvalidValueError(f"{where}: options must be a table such as {{ n = 200 }}, not {options!r}")
        problem_options(problem, options, f"{where}: options")
        entries.append(
            Entry(
                problem,
                settings["epochs"],
                _target(item, where),
                options,
                settings["batch_size"],
                {k: settings[k] for k in run_keys if k not in ("epochs", "batch_size")},
                validate.lr(item["target_objective"], f"{where}: target_objective")
                if "target_objective" in item
                else None,
                _select(item.get("select", "final"), where),
                _margin(item.get("margin", raw.get("margin", MARGIN)), "margin", where),
                _margin(item.get("margin_loss", raw.get("margin_loss", MARGIN_LOSS)), "margin_loss", where),
            )
        )
    if not entries:
        raise InvalidValueError(f"suite {name!r} has no [[problems]]")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InvalidValueError(f"suite {name!r}: description must be text, not {validate.shown(description)}")
    return Suite(
        name=Path(name).stem,
        description=description,
        lr=_values(raw, "lr", "1e-4:1:9", name, validate.lr),
        tune_seeds=_values(raw, "tune_seeds", "0-2", name, validate.seed),
        eval_seeds=_values(raw, "eval_seeds", "100-109", name, validate.seed),
        entries=entries,
        extend_edges=_extend(raw.get("extend_edges", EXTEND_EDGES), name),
        speedup=_flag(raw.get("speedup", True), "speedup", name),
        baselines=_baselines(raw.get("baselines"), name, allow_import_paths),
        source=name,
        **_search(raw, name),
    )


def problem_options(problem: str, options: dict[str, Any], label: str) -> dict[str, Any]:
    """A suite problem's options checked against the problem (names and types), every message naming
    the file and key (``label``); the options with the problem's defaults filled in."""
    from optbench.settings.options import resolve_settings

    return resolve_settings(_problem_entry(problem), options, label)


def check_sizes(suite: Suite) -> None:
    """Refuse, before any work, a suite problem whose options need more memory than the limit
    (:func:`optbench.settings.validate.memory`; its batch size, else the problem's own default, else full
    batch: the baselines' runs; a run of an optimizer that declares its own batch is checked when prepared)."""
    for i, entry in enumerate(suite.entries):
        label = f"suite {suite.source or suite.name!r}: problems[{i}]: options"
        full = problem_options(entry.problem, entry.options, label)
        validate.memory(_problem_entry(entry.problem), full, entry.options, entry.batch_size, label)


def _problem_entry(name: str) -> Any:
    """A built-in problem as its source declares it (torch-free: a suite is read, and its sizes
    checked, before torch loads), else the problem imported (a plugin)."""
    from optbench.registry import PROBLEMS

    return PROBLEMS.declared(name) or PROBLEMS.get(name)


def _baselines(value: Any, name: str, allow_import_paths: bool) -> tuple[str, ...] | None:
    """A suite's own baselines: registered optimizer names (a composite of them too), at least one."""
    from optbench.settings.validate import registered_name

    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidValueError(
            f"suite {name!r}: baselines {validate.shown(value)} is not a list of names; "
            'expected e.g. baselines = ["torch-adamw", "torch-sgd-momentum"]'
        )
    return tuple(registered_name("optimizer", v, f"suite {name!r}: baselines", allow_import_paths) for v in value)


PROTOCOL_KEYS = ("studies", "tolerance", "max_trials", "refine")


def _margin(value: Any, key: str, where: str) -> float:
    """A margin of importance: a number >= 0 (0: any significant difference matters)."""
    example = "(0.1: a 10% difference of the final objective)" if key == "margin" else "(3e-3: in loss units)"
    return float(_number(value, key, where, lambda v: 0 <= v < 1e6, f"a number >= 0 {example}"))


def _number(value: Any, key: str, where: str, ok: Any, expected: str, whole: bool = False) -> Any:
    """A suite's number, checked: the wrong type says so (``"3"`` is text, not a number), a value out
    of range says what is valid; both one line naming the suite and the key."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        raise InvalidValueError(f"{where}: {key} {shown} is not {kind}; expected {expected}")
    if not (math.isfinite(value) and ok(value)):
        raise InvalidValueError(f"{where}: {key} {value!r} is out of range; expected {expected}")
    return value


def _search(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """``search``, ``trials``, ``spaces`` and the tuning protocol's keys, checked (each range is parsed
    once, here)."""
    from optbench.studies import spaces

    search = raw.get("search", "halton")
    if search not in ("lr", *spaces.METHODS):
        raise InvalidValueError(
            f"suite {name!r}: search {validate.shown(search)} is not valid; valid: lr (the lr grid alone), "
            "halton (each optimizer's space, quasi-random), grid (each optimizer's space, on a grid)"
        )
    where = f"suite {name!r}"
    trials = _number(raw.get("trials", 16), "trials", where, lambda v: 2 <= v <= 1000, "2-1000", whole=True)
    overrides = raw.get("spaces", {})
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise InvalidValueError(f'suite {name!r}: spaces must be tables, e.g. [spaces.torch-adam] lr = "log:1e-4:1"')
    from optbench.registry import canonical_name

    for optimizer, space in overrides.items():
        spaces.parse(space, f"suite {name!r}: spaces.{optimizer}")
    overrides = {canonical_name(k): v for k, v in overrides.items()}  # "A + B" and "A+B": one composite
    studies = _number(
        raw.get("studies", 1 if search == "lr" else 3),
        "studies",
        where,
        lambda v: 1 <= v <= 10,
        "a whole number 1-10 (independent tuning studies)",
        whole=True,
    )
    if search == "lr" and studies != 1:
        raise InvalidValueError(f'suite {name!r}: studies = {studies} needs a space search; search = "lr" is one study')
    tolerance = _number(
        raw.get("tolerance", 0.01),
        "tolerance",
        where,
        lambda v: 0 <= v < 1,
        "a number in [0, 1) (0.01: refinement stops when no step improves the tuning objective by more than 1%)",
    )
    max_trials = _number(
        raw.get("max_trials", max(32, trials)),
        "max_trials",
        where,
        lambda v: trials <= v <= 1000,
        f"a whole number {trials}-1000 (at least trials, {trials})",
        whole=True,
    )
    return {
        "search": search,
        "trials": trials,
        "spaces": {k: dict(v) for k, v in overrides.items()},
        "studies": studies,
        "tolerance": float(tolerance),
        "max_trials": max_trials,
        "refine": _flag(raw.get("refine", True), "refine", name),
    }


def _flag(value: Any, key: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueError(f"suite {name!r}: {key} {validate.shown(value)} is not true or false")
    return value


def _extend(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise InvalidValueError(
            f"suite {name!r}: extend_edges {validate.shown(value)} is out of range; expected a whole number 0-20 "
            "(grid steps a best lr on the edge is searched past)"
        )
    return value


def _target(item: dict[str, Any], where: str) -> float | str:
    """A problem's ``target``: a share of each run's start (a positive number), or ``"baseline"``;
    with ``target_objective`` (an absolute objective) it is not given at all."""
    if "target" in item and "target_objective" in item:
        raise InvalidValueError(f"{where}: give target or target_objective, not both")
    value = item.get("target", 0.01)
    if value == BASELINE_TARGET:
        return value
    if isinstance(value, str) and not _is_number(value):
        raise InvalidValueError(
            f"{where}: target {value!r} is not a number or {BASELINE_TARGET!r}; expected a share of each run's "
            f"start (0.01), {BASELINE_TARGET!r} (the best baseline's median final), or target_objective = VALUE"
        )
    return validate.lr(value, f"{where}: target")  # a positive finite number


def _select(value: Any, where: str) -> str:
    if value not in ("final", "validation"):
        raise InvalidValueError(
            f"{where}: select {validate.shown(value)} is not valid; valid: final (the training objective), "
            "validation (the val_loss of rows held out from training)"
        )
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _values(raw: dict[str, Any], key: str, default: str, name: str, check: Any) -> list[Any]:
    """A suite's grid value: a text in the grid syntax (``"1e-3:1:7"``, ``"0-2"``) or a list of values,
    at least one, each checked (``check(value, label)``: an lr, a seed)."""
    from optbench.settings.grid import parse_values

    value = raw.get(key, default)
    label = f"suite {name!r}: {key}"
    if isinstance(value, str):
        values = parse_values(value, label)
    elif isinstance(value, list) and not isinstance(value, bool):
        values = value
    else:
        values = [value]
    if not values:
        raise InvalidValueError(f"{label} is empty; expected at least one value, e.g. {default!r}")
    return [check(v, label) for v in values]


def require_enough_seeds(suite: Suite) -> None:
    """Refuse a suite whose evaluation seeds cannot give a significant verdict after Holm's correction
    over its problems: every comparison would read "no significant difference" whatever happened."""
    from optbench.results.stats import ALPHA, minimum_seeds, smallest_p

    seeds, problems = len(suite.eval_seeds), len(suite.entries)
    if smallest_p(seeds, problems) >= ALPHA:
        raise InvalidValueError(
            f"suite {suite.name!r} has {seeds} evaluation seeds: over {problems} problems (Holm) the smallest "
            f"p is {smallest_p(seeds, problems):.2g}, not below {ALPHA}; give eval_seeds at least "
            f"{minimum_seeds(problems)} seeds"
        )
