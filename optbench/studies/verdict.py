"""The answer a bench gives, in words: which optimizers are the same runs, the headline per candidate,
each comparison with its effect size, and where it was measured.

Shared by the leaderboard (Markdown) and the page (:mod:`optbench.reports.verdict`), so both say the
same thing. Nothing here is measured in seconds: two runs of the same bench give the same text.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence

import pandas as pd

VERDICTS = ("better", "equivalent", "inconclusive", "worse")  # a comparison's answer (studies.board.comparisons)
ERROR = "error"  # no answer: an evaluation run of either side raised an error (studies.bench.mark_errors)

SCALE = (
    "two-sided Wilcoxon signed-rank test on log final objectives (the ratio scale of the effect size) "
    "over paired seeds, Holm-corrected across the suite's problems, alpha 0.05, in each tuning study"
)


def twins(results: pd.DataFrame, names: Sequence[str]) -> list[list[str]]:
    """Groups of optimizers (in ``names`` order) whose evaluation runs are bit-identical on every problem
    (:func:`optbench.results.outcomes.coincide`, rtol=0): gd and full-batch torch-sgd, for one. Each
    name is in exactly one group; a group of one is an optimizer like no other."""
    from optbench.results.outcomes import coincide

    evaluated = results[results["phase"] == "eval"]
    runs = {  # every study's runs: sorted so that the same runs line up whoever ran them
        (problem, name): part.sort_values(["seed", "step", "loss"])
        for (problem, name), part in evaluated.groupby(["suite_problem", "optimizer"], sort=False)
    }
    problems = list(evaluated["suite_problem"].unique())
    groups: list[list[str]] = []
    for name in names:
        for group in groups:
            first = group[0]
            if all(
                (p, name) in runs and (p, first) in runs and coincide(runs[p, name], runs[p, first], rtol=0)
                for p in problems
            ):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def group_of(name: str, groups: Sequence[Sequence[str]]) -> list[str]:
    return next((list(g) for g in groups if name in g), [name])


def entry_name(group: Sequence[str]) -> str:
    """One name for identical optimizers: ``"gd = torch-sgd"``."""
    return " = ".join(group)


def distinct_baselines(baselines: Sequence[str], groups: Sequence[Sequence[str]]) -> list[list[str]]:
    """The baselines with identical ones merged, first seen first."""
    seen: list[list[str]] = []
    for b in baselines:
        group = [n for n in group_of(b, groups) if n in baselines]
        if group not in seen:
            seen.append(group)
    return seen


def tally(table: pd.DataFrame, candidates: Sequence[str], baselines: Sequence[str], groups) -> pd.DataFrame:
    """Each candidate's verdicts against each distinct baseline across the suite, counted by category
    (:data:`VERDICTS`)."""
    rows = []
    errors = len(table) and "verdict" in table and bool((table["verdict"] == ERROR).any())
    for candidate in candidates:
        for group in distinct_baselines(baselines, groups):
            words = table[(table["candidate"] == candidate) & (table["baseline"] == group[0])]["verdict"]
            counts = {word: int((words == word).sum()) for word in (*VERDICTS, ERROR) if word != ERROR or errors}
            rows.append({"candidate": candidate, "baseline": entry_name(group), **counts, "problems": len(words)})
    return pd.DataFrame(rows)


def headline(table: pd.DataFrame, candidates: Sequence[str], baselines: Sequence[str], groups) -> list[str]:
    """One sentence per candidate and distinct baseline:
    "torch-adamw vs torch-adam: better on 2, equivalent on 1, inconclusive on 2 of 5 problems"."""
    lines = []
    for row in tally(table, candidates, baselines, groups).to_dict("records"):
        twin = [n for n in group_of(row["candidate"], groups) if n in row["baseline"].split(" = ")]
        counts = [f"{word} on {row[word]}" for word in (*VERDICTS, ERROR) if row.get(word)]
        same = " (identical runs)" if twin else ""
        lines.append(
            f"{row['candidate']} vs {row['baseline']}{same}: {', '.join(counts)} of {row['problems']} problems"
        )
    return lines


def diverged_text(k: int, n: int) -> str:
    return f"{k}/{n} diverged" if k else ""


def effect_text(row: dict) -> str:
    """A comparison in words: verdict, ratio [interval], seeds better, p, and divergence when there was any
    (an error: what failed, no statistic)."""
    if row["verdict"] == ERROR:
        return f"{ERROR} ({row['reason']})"
    if not row["seeds"]:
        return f"{row['verdict']} (no paired seeds)"
    parts = [
        f"ratio {_g(row['ratio'])} [{_g(row['ratio_low'])}, {_g(row['ratio_high'])}]",
        f"better on {row['better_seeds']}/{row['seeds']} seeds",
        f"p={row['p_value']:.2g}",
    ]
    if isinstance(row.get("reason"), str):
        parts.insert(0, row["reason"])
    if _number(row.get("margin")):
        parts.append(f"margin x{row['margin']:.3g} ({row['margin_rule']})")
    if row["diverged"]:
        parts.append(f"{row['candidate']} {diverged_text(row['diverged'], row['seeds'])}")
    if row.get("baseline_diverged"):
        parts.append(f"{row['baseline']} {diverged_text(row['baseline_diverged'], row['seeds'])}")
    speedup = row.get("speedup_evals")
    if speedup is not None and not (isinstance(speedup, float) and math.isnan(speedup)):
        from optbench.studies.speedup import text

        parts.append(text(row))  # in tokens for a language model
    ratio = row.get("step_time_ratio")
    if isinstance(ratio, float) and math.isfinite(ratio):  # seconds per step, against the timing rounds' spread
        same = "" if row.get("step_time_differs") else ", within the timing rounds' spread: no difference"
        parts.append(f"step time x{ratio:.2g}{same}")
    if isinstance(row.get("on_edge"), str) and row["on_edge"]:
        parts.append(f"rests on an lr at the edge of its search: {row['on_edge']}")
    if isinstance(row.get("tuning"), str) and row["tuning"]:
        parts.append(row["tuning"])
    return f"{row['verdict']} ({', '.join(parts)})"


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _g(value: float) -> str:
    return "inf" if value == math.inf else f"{value:.3g}"


def method_text(seeds: int, problems: int, studies: int = 1) -> str:
    from optbench.results.stats import smallest_p

    across = (
        f"A verdict holds only where it holds in each of the {studies} tuning studies: better or worse where every "
        "study finds the difference the same way and the effect lies beyond the problem's margin; equivalent "
        "where every study's two one-sided tests put the ratio inside the margin; else inconclusive (depends on "
        "tuning, where the studies disagree). "
        if studies > 1
        else "Better or worse where the test finds the difference and the effect lies beyond the problem's margin; "
        "equivalent where two one-sided tests put the ratio inside the margin; else inconclusive. "
    )
    return (
        f"Verdicts: {SCALE}. {across}With {seeds} seeds and {problems} problems the smallest attainable p is "
        f"{smallest_p(seeds, problems):.2g} (every seed the same way). Effect: median over studies of the median over "
        "seeds of the ratio candidate/baseline of final objectives (< 1: the candidate ends lower) [95% bootstrap "
        "interval over studies and seeds]."
    )


def provenance(command: str | None = None) -> dict[str, str]:
    """Where and with what a bench ran: hardware, versions and the command line."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        ours = version("optbench")
    except PackageNotFoundError:
        ours = "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "optbench": ours,
        "command": command or "optbench.bench(...)",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def provenance_text(facts: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in facts.items())
