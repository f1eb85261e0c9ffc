"""Quality regression checks: a declared matrix of runs, a stored baseline, and a verdict per cell.

``optbench baseline --config matrix.toml --out baseline.json`` runs the matrix and stores, per cell,
the final suboptimality (loss - f*, or the loss where f* is unknown; median over seeds), the
steps and seconds to a target, and the status. ``optbench check --baseline baseline.json`` reruns
the baseline's own matrix and fails a cell that got worse beyond its tolerance, now diverges, or
needs more steps to reach its target. Runs are made deterministic: fixed seeds, float64 where the
problem has a ``dtype`` option, torch's deterministic algorithms and one thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from optbench.errors import OptbenchError
from optbench.quality.matrix import RUN_SETTINGS, Cell, _as_list, expand, normalize_matrix
from optbench.quality.matrix import SETTINGS as SETTINGS  # re-exported: the matrix lives in optbench.quality.matrix
from optbench.quality.matrix import load_matrix as load_matrix
from optbench.results import files

FORMAT = 1


class BaselineError(OptbenchError):
    """A baseline file that is missing, corrupt, or made from another matrix."""


@dataclass
class Measurement:
    final: float  # median over seeds of the final suboptimality (or loss): inf for a diverged run
    metric: str  # "suboptimality" or "loss"
    steps_to_target: float | None  # median over seeds; None when most seeds never reach it
    seconds_to_target: float | None
    status: str  # the worst over seeds: error > diverged > ok
    per_seed: list[float] = field(default_factory=list)


@dataclass
class Verdict:
    cell: str
    baseline: Measurement
    now: Measurement
    verdict: str  # ok, improved, worse, diverges, slower, error
    reason: str

    @property
    def failed(self) -> bool:
        return self.verdict in ("worse", "diverges", "slower", "error")


# --- measuring


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic torch for the duration: deterministic algorithms, one thread."""
    import os

    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs on a GPU

    was_deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def prepare_cell(cell: Cell, seed: int, device: str = "cpu") -> Any:
    """The cell's run at ``seed`` as a :class:`~optbench.core.runner.RunSpec` (float64 where asked and possible)."""
    from optbench.core.runner import prepare
    from optbench.registry import PROBLEMS

    s = cell.settings
    problem_opt = dict(cell.problem_opt)
    if s["float64"] and "dtype" in PROBLEMS.get(cell.problem).hyperparameters():
        problem_opt.setdefault("dtype", "float64")
    return prepare(
        cell.problem,
        cell.optimizer,
        lr=cell.lr,
        seed=seed,
        problem_options=problem_opt,
        hyperparameters=cell.opt,
        flags={"opt": f"cell {cell.id!r}: opt", "problem_opt": f"cell {cell.id!r}: problem_opt"},
        device=device,
        **{name: s[name] for name in RUN_SETTINGS},
    )


def check_cells(cells: list[Cell], device: str = "cpu") -> None:
    """Every cell's settings checked (names, keys, types) before any run: one line for the first bad one."""
    for cell in cells:
        prepare_cell(cell, _as_list(cell.settings["seeds"])[0], device)


def measure(cell: Cell, device: str = "cpu") -> Measurement:
    """Run ``cell`` on each of its seeds (on ``device``) and summarize."""
    from optbench.core.runner import execute
    from optbench.results.outcomes import Target, final, reach

    s = cell.settings
    finals, steps, seconds, statuses, metric = [], [], [], [], "loss"
    with deterministic():
        for seed in _as_list(s["seeds"]):
            df = execute(prepare_cell(cell, seed, device))
            metric = "loss" if math.isnan(df["optimum"].iloc[0]) else "suboptimality"
            # unfloored: a regression check compares measured values with tolerances of its own
            finals.append(final(df, floor=False))
            step, second, _ = reach(df, Target(s["target"]))
            steps.append(step)
            seconds.append(second)
            statuses.append(df["status"].iloc[0])
    worst = max(statuses, key=("ok", "diverged", "error").index)
    median_steps, median_seconds = statistics.median(steps), statistics.median(seconds)
    return Measurement(
        final=statistics.median(finals),
        metric=metric,
        steps_to_target=None if math.isinf(median_steps) else median_steps,
        seconds_to_target=None if math.isinf(median_seconds) else median_seconds,
        status=worst,
        per_seed=finals,
    )


def make_baseline(matrix: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    cells = expand(matrix)
    check_cells(cells)
    return {
        "optbench_baseline": FORMAT,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "matrix": matrix,
        "cells": {cell.id: asdict(measure(cell)) for cell in cells},
    }


def write_json(data: Any, path: str | os.PathLike[str]) -> None:
    """Strict JSON, written atomically: a non-finite number becomes the string "inf", "-inf" or "nan"."""
    files.write_text(path, json.dumps(strict(data), indent=1, allow_nan=False) + "\n")


def strict(data: Any) -> Any:
    """``data`` with every non-finite float as a string, so that strict JSON readers accept it."""
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)  # "inf", "-inf", "nan": read back by _number()
    if isinstance(data, Mapping):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [strict(v) for v in data]
    return data


def load_baseline(path: str | os.PathLike[str], **checks: Any) -> dict[str, Any]:
    """A baseline file, every value checked (``checks``: :func:`normalize_matrix`'s) before any run."""
    from optbench.settings.inputs import read_json

    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"baseline {str(path)!r} does not exist; make one with `optbench baseline`")
    try:
        data = read_json(path, "baseline")
    except OptbenchError:
        raise  # too large or nested too deep: read_json's line
    except ValueError as exc:  # malformed JSON, not UTF-8, or an integer of more digits than Python converts
        raise BaselineError(f"baseline {str(path)!r} is corrupt: {exc}") from None
    if not isinstance(data, dict) or data.get("optbench_baseline") != FORMAT or "cells" not in data:
        raise BaselineError(f"baseline {str(path)!r} is not an optbench baseline (format {FORMAT})")
    try:
        data["matrix"] = normalize_matrix(data["matrix"], f"baseline {str(path)!r}", **checks)  # defaults filled
        cells = expand(data["matrix"])
    except OptbenchError:
        raise
    except (KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(f"baseline {str(path)!r} has a damaged matrix: {type(exc).__name__}: {exc}") from None
    if not isinstance(data["cells"], dict) or {c.id for c in cells} != set(data["cells"]):
        raise BaselineError(f"baseline {str(path)!r} is inconsistent: its cells do not match its matrix")
    data["cells"] = {
        cell: _measurement(value, f"baseline {str(path)!r} cell {cell!r}") for cell, value in data["cells"].items()
    }
    for cell in cells:  # a baseline made from its matrix has one value per seed: check before hours of runs
        seeds, stored = len(_as_list(cell.settings["seeds"])), len(data["cells"][cell.id]["per_seed"])
        if seeds != stored:
            raise BaselineError(
                f"baseline {str(path)!r} is inconsistent: cell {cell.id!r} has {seeds:,} seeds in its matrix "
                f"but {stored:,} stored results; make it again with `optbench baseline`"
            )
    return data


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(value: Any, label: str, *, optional: bool = False) -> float | None:
    """A stored number: a finite float, or inf/-inf/nan written as text by :func:`strict`."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        expected = "a number or null" if optional else "a number"
        raise BaselineError(f"{label}: {value!r} is not {expected}")
    return float(value)


def _measurement(value: Any, label: str) -> dict[str, Any]:
    """A stored cell checked field by field (a hand-edited or damaged baseline gets one line)."""
    fields = {f.name for f in dataclasses.fields(Measurement)}
    if not isinstance(value, dict) or set(value) != fields:
        raise BaselineError(f"{label}: expected the fields {', '.join(sorted(fields))}")
    if value["metric"] not in ("suboptimality", "loss"):
        raise BaselineError(f"{label}: metric {value['metric']!r} is not suboptimality or loss")
    if value["status"] not in ("ok", "diverged", "error"):
        raise BaselineError(f"{label}: status {value['status']!r} is not ok, diverged or error")
    if not isinstance(value["per_seed"], list):
        raise BaselineError(f"{label}: per_seed {value['per_seed']!r} is not a list of numbers")
    return {
        "final": _number(value["final"], f"{label}: final"),
        "metric": value["metric"],
        "steps_to_target": _number(value["steps_to_target"], f"{label}: steps_to_target", optional=True),
        "seconds_to_target": _number(value["seconds_to_target"], f"{label}: seconds_to_target", optional=True),
        "status": value["status"],
        "per_seed": [_number(v, f"{label}: per_seed") for v in value["per_seed"]],
    }


# --- comparing


def compare(cell: Cell, baseline: Measurement, now: Measurement) -> Verdict:
    s = cell.settings
    tolerance = baseline.final * s["rtol"] + s["atol"]
    if now.status == "error":
        return Verdict(cell.id, baseline, now, "error", "a run raised an error")
    if now.status == "diverged" and baseline.status != "diverged":
        return Verdict(cell.id, baseline, now, "diverges", "a run now diverges")
    if now.final > baseline.final + tolerance:
        return Verdict(cell.id, baseline, now, "worse", f"final {now.metric} beyond rtol {s['rtol']}, atol {s['atol']}")
    base_steps, now_steps = baseline.steps_to_target, now.steps_to_target
    if base_steps is not None and (now_steps is None or now_steps > base_steps * (1 + s["steps_rtol"])):
        reached = "never reaches" if now_steps is None else "takes more steps to reach"
        return Verdict(cell.id, baseline, now, "slower", f"{reached} the target (steps_rtol {s['steps_rtol']})")
    better_steps = now_steps is not None and (base_steps is None or now_steps < base_steps)
    if now.final < baseline.final - tolerance or better_steps:
        return Verdict(cell.id, baseline, now, "improved", "better than the baseline")
    return Verdict(cell.id, baseline, now, "ok", "within tolerance")


def run_check(baseline: Mapping[str, Any], device: str = "cpu") -> list[Verdict]:
    verdicts = []
    cells = expand(baseline["matrix"])
    check_cells(cells, device)
    for cell in cells:
        stored = Measurement(**baseline["cells"][cell.id])
        verdicts.append(compare(cell, stored, measure(cell, device)))
    return verdicts


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:.4g}"


def format_table(verdicts: list[Verdict]) -> str:
    rows = [("cell", "metric", "baseline", "now", "change", "steps to target", "verdict")]
    for v in verdicts:
        base, now = v.baseline.final, v.now.final
        change = (now - base) / base if base and math.isfinite(base) and math.isfinite(now) else math.nan
        steps = f"{_fmt(v.baseline.steps_to_target)} -> {_fmt(v.now.steps_to_target)}"
        verdict = v.verdict.upper() if v.failed else v.verdict
        rows.append((v.cell, v.now.metric, f"{base:.4g}", f"{now:.4g}", f"{change:+.1%}", steps, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    failed = [v for v in verdicts if v.failed]
    improved = sum(v.verdict == "improved" for v in verdicts)
    lines.append(f"{len(verdicts)} cells: {len(failed)} failed, {improved} improved")
    lines += [f"FAILED {v.cell}: {v.reason}" for v in failed]
    return "\n".join(lines)


def junit_xml(verdicts: list[Verdict]) -> str:
    failures = sum(v.failed for v in verdicts)
    out = [
        f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="optbench check" tests="{len(verdicts)}" '
        f'failures="{failures}">'
    ]
    for v in verdicts:
        detail = f"{v.now.metric} {v.baseline.final:.6g} -> {v.now.final:.6g}; {v.reason}"
        out.append(f'  <testcase classname="optbench.check" name={quoteattr(v.cell)}>')
        if v.failed:
            out.append(f"    <failure message={quoteattr(v.verdict + ': ' + detail)}/>")
        out.append("  </testcase>")
    out.append("</testsuite>\n")
    return "\n".join(out)


def verdicts_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [
        {
            "cell": v.cell,
            "verdict": v.verdict,
            "failed": v.failed,
            "reason": v.reason,
            "baseline": asdict(v.baseline),
            "now": asdict(v.now),
        }
        for v in verdicts
    ]


def check_baseline(path: str | os.PathLike[str]) -> list[Verdict]:
    """Python API: rerun a baseline file's matrix and return the verdicts (see :func:`format_table`)."""
    return run_check(load_baseline(path))
