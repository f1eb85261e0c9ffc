"""The run settings, declared once: every command, file, grid, key and column derives from :data:`SETTINGS`.

A *run setting* shapes how one run trains but is neither its problem, its optimizer's
hyperparameters nor its seed: the budget (``epochs``), the batch size, how often to record, where
it trains, its learning-rate schedule. Each is one :class:`Setting`, from which the rest follows:

- its flag on ``run``, ``animate``, ``sweep`` and ``tune`` (``--warmup-steps``;
  :func:`optbench.cli.app.setting_options`);
- its key in sweep, suite and matrix files (``warmup_steps = 10``), checked as the flag is;
- its field in a :class:`~optbench.settings.grid.Grid` and in every job a grid expands into;
- its keyword of :func:`optbench.core.runner.prepare` and :func:`optbench.run`, and its value in the
  :class:`~optbench.core.runner.RunSpec` (``spec.warmup_steps``);
- the group key (runs that differ in a run setting never share one tensor program), the canonical run
  key (:func:`optbench.results.schema.config_identity`) and its column in the results table, error rows
  included (:func:`columns`).

Adding a setting is one entry here plus the code that uses its value. Torch-free.

>>> [s.flag for s in SETTINGS]
['--batch-size', '--epochs', '--eval-every', '--records', '--schedule', '--warmup-steps', '--device']
>>> resolve({"schedule": "cosine", "warmup_steps": "5"})["warmup_steps"]
5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optbench.errors import InvalidValueError, did_you_mean
from optbench.settings import validate

SCHEDULES = ("constant", "cosine", "linear", "step")
RECORDS = ("all", "ends")  # every record point, or step 0 and the last step only (what tuning reads)


@dataclass(frozen=True)
class Setting:
    """One run setting: its name (keyword, file key and column), default, check and help.

    ``check(value, label)`` takes the value as given (a flag's text, a file's value, a Python
    argument) and returns it typed, or raises :class:`~optbench.errors.InvalidValueError` with one
    line that starts with ``label``. ``cell`` turns the value into its table cell; ``keyed`` into what
    the run key hashes, given the optimizer's registry entry (a batch size left to the optimizer is
    keyed as the one it declares).
    """

    name: str
    default: Any
    check: Callable[[Any, str], Any]
    help: str
    metavar: str = "N"
    dtype: str = "int64"  # the column's dtype in a results table (a CSV file is read back as it)
    cell: Callable[[Any], Any] = lambda value: value
    keyed: Callable[[Any, Any], Any] = lambda value, optimizer: value

    @property
    def flag(self) -> str:
        return flag(self.name)


def _whole(minimum: int) -> Callable[[Any, str], int]:
    def check(value: Any, label: str) -> int:
        return validate.whole(value, label, minimum=minimum, limit=validate.MAX_INT)

    return check


def _optional_whole(value: Any, label: str) -> int | None:
    return None if value is None else validate.whole(value, label, limit=validate.MAX_INT)


def _text(value: Any, label: str, example: str) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"{label} {value!r} is not text; expected e.g. {example!r}")
    return value


def _device(value: Any, label: str) -> str:
    from optbench.settings.options import validate_device_name

    return validate_device_name(_text(value, label, "cpu"), label)


def _records(value: Any, label: str) -> str:
    if _text(value, label, "ends") not in RECORDS:
        raise InvalidValueError(
            f"{label} {value!r} is not valid{did_you_mean(str(value), RECORDS)}; valid: all (step 0, every epoch "
            "end and every --eval-every steps), ends (step 0 and the last step)"
        )
    return value


def _schedule(value: Any, label: str) -> str:
    if _text(value, label, "cosine") not in SCHEDULES:
        shown = value if isinstance(value, str) else repr(value)
        raise InvalidValueError(
            f"{label} {shown!r} is not valid{did_you_mean(str(value), SCHEDULES)}; valid: {', '.join(SCHEDULES)}"
        )
    return value


SETTINGS: tuple[Setting, ...] = (  # in the order of the table's columns
    Setting(
        "batch_size",
        None,
        _optional_whole,
        "Examples per step [default: the optimizer's, else the problem's; full batch unless one declares it].",
        keyed=lambda value, optimizer: value or getattr(optimizer, "batch_size", None),  # None: the full set
    ),
    Setting("epochs", 100, _whole(1), "Passes over the training set."),
    Setting(
        "eval_every",
        None,
        _optional_whole,
        "Also record every N steps (step 0 and epoch ends always are).",
        cell=lambda value: value or 0,  # 0: epoch ends only
    ),
    Setting(
        "records",
        "all",
        _records,
        "Points recorded: all (step 0, epoch ends, every --eval-every steps) or ends (step 0 and the last step).",
        metavar="WHICH",
        dtype="str",
    ),
    Setting(
        "schedule",
        "constant",
        _schedule,
        f"Learning-rate schedule: {', '.join(SCHEDULES)} (torch.optim.lr_scheduler).",
        metavar="NAME",
        dtype="str",
    ),
    Setting("warmup_steps", 0, _whole(0), "Linear learning-rate warm-up over N steps."),
    Setting("device", "cpu", _device, "cpu, cuda or cuda:N.", metavar="DEVICE", dtype="str"),
)
NAMES = tuple(s.name for s in SETTINGS)


def setting(name: str) -> Setting:
    return next(s for s in SETTINGS if s.name == name)


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def flag(name: str) -> str:
    """The flag of a setting name: ``warmup_steps`` -> ``--warmup-steps``."""
    return "--" + name.replace("_", "-")


def resolve(given: Mapping[str, Any], label: Callable[[str], str] = flag) -> dict[str, Any]:
    """Every run setting, typed and checked: ``given`` (flags, a file's keys, keywords) over the defaults.

    ``label(name)`` says where a value came from in messages (``--warmup-steps``, ``s.toml: warmup_steps``).
    An unknown name is refused with the valid ones.
    """
    for name in given:
        if name not in NAMES:
            raise InvalidValueError(
                f"{label(name)}: not a run setting{did_you_mean(name, NAMES)}; valid: {', '.join(NAMES)}"
            )
    return {s.name: s.check(given[s.name], label(s.name)) if s.name in given else s.default for s in SETTINGS}


def columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings as table cells, in declaration order (the batch size as given: the engine
    writes the resolved one)."""
    return {s.name: s.cell(values[s.name]) for s in SETTINGS}


def identity(values: Mapping[str, Any], optimizer: Any) -> dict[str, Any]:
    """The run settings as the run key hashes them (defaults resolved)."""
    return {s.name: s.keyed(values[s.name], optimizer) for s in SETTINGS}


def group_key(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """Runs whose run settings differ never share one tensor program."""
    return tuple(repr(values[name]) for name in NAMES)
