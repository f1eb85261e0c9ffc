"""The leaderboard of a bench: per problem and optimizer the final objective, time to target and
each candidate's verdict against each baseline; its statistics per comparison; the Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from optbench.results.outcomes import DEFAULT_TARGET, Target
from optbench.studies.suite import Entry, Suite
from optbench.studies.verdict import ERROR, VERDICTS

FINALS = ("final_median", "final_low", "final_high")  # the leaderboard's final objective: median [interval]


def targets(
    results: pd.DataFrame, suite: Suite, baselines: list[str], chosen: list[dict[str, Any]] | None = None
) -> dict[str, Target]:
    """Each problem's target: the entry's own, or (``target = "baseline"``, for problems whose optimum
    is unknown, as DeepOBS does) the median final objective of the best baseline on the evaluation
    seeds: "steps to target" is then how soon an optimizer gets where the best baseline ends."""
    out = {}
    for entry in suite.entries:
        fixed = entry.fixed_target()
        if fixed is not None:
            out[entry.label] = fixed
            continue
        table = finals_per_seed(results, entry, DEFAULT_TARGET, chosen)
        medians = {b: float(table.loc[table["optimizer"] == b, "final"].median()) for b in baselines}
        best = min(medians, key=lambda b: (medians[b], b)) if medians else None
        if best is None or not math.isfinite(medians[best]):
            out[entry.label] = Target(DEFAULT_TARGET.value, source="no baseline's median run finished")
        else:
            out[entry.label] = Target(medians[best], relative=False, source=f"the best baseline's median final, {best}")
    return out


def finals_per_seed(
    results: pd.DataFrame, entry: Entry, target: Target | None = None, chosen: list[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """One row per evaluation run of ``entry`` and tuning study: optimizer, study, seed, its
    :func:`~optbench.results.outcomes.outcome` against ``target`` (default: the entry's own, or 10% of
    the start where it has none yet), and accuracy. With ``chosen`` (a bench's choices, each with its
    ``study`` and ``eval_keys``), each study's runs are its own choice's; else one study of each
    optimizer's evaluation runs."""
    import numpy as np

    from optbench.results.outcomes import outcomes_by_run

    goal = target or entry.fixed_target() or DEFAULT_TARGET
    evaluated = results[(results["phase"] == "eval") & (results["suite_problem"] == entry.label)]
    mine = [c for c in chosen or () if c["entry"].label == entry.label and "eval_keys" in c]
    by = ["run_key"] if mine else ["optimizer", "seed"]  # a run: its key; else one study's runs
    number = evaluated.groupby(by, sort=False).ngroup()
    evaluated, number = evaluated[number.notna()], number[number.notna()].to_numpy(dtype=np.int64)
    order = np.lexsort((evaluated["step"].to_numpy(), number))  # each run in step order (stable)
    runs = evaluated.iloc[order].assign(_run=number[order])
    outcomes = outcomes_by_run(runs, goal, by="_run")
    first = runs.drop_duplicates("_run").set_index("_run")
    if mine:
        run_of = dict(zip(first["run_key"], first.index, strict=True))
        found = [
            (c["job"]["optimizer"], c["study"], seed, run_of[key])
            for c in mine
            for seed, key in c["eval_keys"].items()
            if key in run_of
        ]
    else:
        found = list(zip(first["optimizer"], [0] * len(first), first["seed"], first.index, strict=True))
    if not found:
        return pd.DataFrame()
    table = pd.DataFrame(found, columns=["optimizer", "study", "seed", "_run"])
    table.insert(0, "problem", entry.label)
    return table.join(outcomes, on="_run").drop(columns="_run")


def leaderboard(
    results: pd.DataFrame,
    suite: Suite,
    candidates: list[str],
    baselines: list[str],
    chosen: list[dict[str, Any]],
    step_seconds: Mapping[tuple[str, str], tuple[float, float, float]] | None = None,
) -> pd.DataFrame:
    """Per problem x optimizer: the settings each tuning study chose (and how its search ended), the
    median final objective over every study's evaluation runs with its 95% bootstrap interval,
    accuracy, time to target, seconds per step (``step_seconds``: (problem, optimizer) -> median, min
    and max, from :func:`optbench.studies.bench.retime`), and each candidate's verdict against each
    baseline (:func:`comparisons`)."""
    from optbench.results.stats import median_interval

    studies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in sorted(chosen, key=lambda c: c.get("study", 0)):
        studies.setdefault((c["entry"].label, c["job"]["optimizer"]), []).append(c)
    edges = {slot for slot, cs in studies.items() if suite.search == "lr" and "lr" in cs[0].get("edges", {})}
    searched = _searched(results)
    goals = targets(results, suite, baselines, chosen)
    per_seed = {e.label: finals_per_seed(results, e, goals[e.label], chosen) for e in suite.entries}
    known = {
        e.label: bool(results.loc[results["suite_problem"] == e.label, "optimum"].notna().any()) for e in suite.entries
    }
    rows = []
    for entry in suite.entries:
        table = per_seed[entry.label]
        for optimizer in [*candidates, *baselines]:
            mine = table[table["optimizer"] == optimizer].sort_values(["study", "seed"])
            median, low, high = median_interval(mine["final"].tolist())
            picks = studies.get((entry.label, optimizer), [])
            lr = picks[0]["job"]["hyperparameters"].get("lr") if picks else None
            rows.append(
                {
                    "problem": entry.label,
                    "optimizer": optimizer,
                    "role": "candidate" if optimizer in candidates else "baseline",
                    "lr": lr,  # the first study's
                    "chosen": " / ".join(chosen_text(c["job"], suite) for c in picks),  # each study's, in words
                    "trials": " / ".join(str(c["trials"]) for c in picks if "trials" in c),
                    "tuning": tuning_text(picks),
                    "lr_on_edge": (entry.label, optimizer) in edges,  # still, after the search went past it
                    "lr_searched": searched.get((entry.label, optimizer), ""),
                    "metric": "suboptimality" if known[entry.label] else "loss",
                    "target": str(goals[entry.label]),
                    "final_median": median,
                    "final_low": low,
                    "final_high": high,
                    "resolution": float(mine["resolution"].median()) if len(mine) else math.nan,
                    "reached": int(mine["steps_to_target"].map(math.isfinite).sum()) if len(mine) else 0,
                    "test_accuracy": float(mine["test_accuracy"].median()) if len(mine) else math.nan,
                    "steps_to_target": float(mine["steps_to_target"].median()) if len(mine) else math.inf,
                    "seconds_to_target": float(mine["seconds_to_target"].median()) if len(mine) else math.inf,
                    "seeds": len(mine),
                    "diverged": int(mine["final"].map(math.isinf).sum()) if len(mine) else 0,
                    **step_columns((step_seconds or {}).get((entry.label, optimizer))),
                }
            )
    board = pd.DataFrame(rows)
    unsettled = {slot: [c["study"] for c in cs if c.get("state") in UNSETTLED] for slot, cs in studies.items()}
    table = comparisons(per_seed, suite, candidates, baselines, known, unsettled)
    from optbench.studies.speedup import speedups

    first = {k for c in chosen if c.get("study", 0) == 0 for k in c.get("eval_keys", {}).values()}
    timed = results[(results["phase"] != "eval") | results["run_key"].isin(first)] if first else results
    fast = [f for f in (speedups(timed, e.label, candidates, baselines) for e in suite.entries) if len(f)]
    if fast:  # how much faster, from the baselines' budget ladder (the first study's choices)
        table = table.merge(pd.concat(fast, ignore_index=True), on=["problem", "candidate", "baseline"], how="left")
    steps = {(r["problem"], r["optimizer"]): r for r in rows}
    table["step_time_ratio"] = [
        steps[(r.problem, r.candidate)]["step_ms"] / steps[(r.problem, r.baseline)]["step_ms"]
        for r in table.itertuples()
    ]
    table["step_time_differs"] = [  # outside each other's spread over the timing rounds, or not a difference
        _apart(steps[(r.problem, r.candidate)], steps[(r.problem, r.baseline)]) for r in table.itertuples()
    ]
    flags = {slot: tuning_text(cs, concern=True) for slot, cs in studies.items()}
    table["on_edge"] = [  # a verdict that rests on a setting at the edge of its search says so
        ", ".join(n for n in (r.candidate, r.baseline) if (r.problem, n) in edges) for r in table.itertuples()
    ]
    table["tuning"] = [
        "; ".join(f"{n}: {flags[(r.problem, n)]}" for n in (r.candidate, r.baseline) if flags.get((r.problem, n)))
        for r in table.itertuples()
    ]
    for row in table.itertuples():
        where = (board["problem"] == row.problem) & (board["optimizer"] == row.candidate)
        board.loc[where, f"vs {row.baseline}"] = row.verdict
        board.loc[where, f"p vs {row.baseline}"] = row.p_value
        board.loc[where, f"ratio vs {row.baseline}"] = row.ratio
        board.loc[where, f"better seeds vs {row.baseline}"] = row.better_seeds
    board.attrs[ATTACHED] = Attached(
        comparisons=table,
        per_seed=per_seed,  # each evaluation run's outcome, for the paired figure
        targets=goals,  # the page's, so that it measures what the leaderboard does
        tunability=tunability(chosen),
    )
    return board


ATTACHED = "bench"  # the key of a leaderboard's :class:`Attached` in its ``attrs``


class Attached(dict):
    """What a leaderboard carries beside its rows, in ``board.attrs["bench"]``: ``comparisons``,
    ``per_seed``, ``targets`` and ``tunability`` (:func:`leaderboard`); ``twins``, ``provenance``,
    ``timing`` and ``page`` (:func:`optbench.studies.bench.bench`). Computed once, then only read.

    pandas deep-copies ``attrs`` into every frame an operation makes (``__finalize__``), and reading a
    30-row board row by row (``to_dict``, ``groupby``) makes hundreds: with these frames and the page
    in plain ``attrs``, ``to_markdown`` of a quick bench took 10 s. A deep copy of this dict is the
    dict itself, so every frame derived from the board shares it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Attached:
        return self


def attached(board: pd.DataFrame) -> dict[str, Any]:
    """The board's :class:`Attached` (empty for a board read back from its CSV)."""
    return board.attrs.get(ATTACHED, {})


def step_columns(seconds: tuple[float, float, float] | None) -> dict[str, float]:
    """An optimizer's milliseconds per step on a problem: the median over the timing rounds and their range."""
    median, low, high = seconds if seconds else (math.nan,) * 3
    return {"step_ms": median * 1e3, "step_ms_low": low * 1e3, "step_ms_high": high * 1e3}


def _apart(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two optimizers' step times differ beyond the spread of their timing rounds (ranges disjoint)."""
    return bool(a["step_ms_low"] > b["step_ms_high"] or b["step_ms_low"] > a["step_ms_high"])


# A search that ended at the trial cap before it converged, moving or not: its best may not be its best.
# A verdict against it could measure the cap (a copy of SGD-momentum stepping 10x its lr beat its twin
# 20x on the standard suite's condition-1000 quadratic, 3 studies of 3, where the twin's searches were
# capped after a round that had not improved).
UNSETTLED = ("capped", "still improving")


def tuning_text(picks: list[dict[str, Any]], concern: bool = False) -> str:
    """How each study's search ended, in words: ``"converged in 3 of 3 studies"``; with ``concern``,
    only the studies that ended at the trial cap before converging (what a verdict must mention)."""
    states = [c.get("state") for c in picks if c.get("state")]
    if not states:
        return ""
    unsettled = [str(c["study"]) for c in picks if c.get("state") in UNSETTLED]
    if concern:
        return f"stopped at the trial cap before converging (study {', '.join(unsettled)})" if unsettled else ""
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    text = ", ".join(f"{state} in {n} of {len(states)} studies" for state, n in counts.items())
    edges = [f"{', '.join(c['edges'])} (study {c['study']})" for c in picks if c.get("edges")]
    return text + (f"; at the edge of those tried: {'; '.join(edges)}" if edges else "")


def tunability(chosen: list[dict[str, Any]], draws: int = 2000) -> pd.DataFrame:
    """How much tuning an optimizer needs (Sivaprasad et al. 2020): per problem and optimizer, the best
    tuning score among k settings drawn from those its exploration tried (every study's, pooled), for
    k = 1 .. all of them: median and quartiles over resamples (diverged settings count as inf, so a
    median stays defined where an expectation would not). Refinement's settings are not random draws
    of the space and are left out."""
    import numpy as np

    from optbench.results.stats import BOOTSTRAP_SEED

    pooled: dict[tuple[str, str], list[float]] = {}
    for c in chosen:
        if c.get("explored"):
            pooled.setdefault((c["entry"].label, c["job"]["optimizer"]), []).extend(c["explored"])
    rows = []
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for (problem, optimizer), scores in pooled.items():
        values = np.asarray(scores, dtype=float)
        for k in range(1, len(values) + 1):
            best = values[rng.integers(0, len(values), size=(draws, k))].min(axis=1)
            q1, median, q3 = np.quantile(best, [0.25, 0.5, 0.75], method="lower")
            rows.append(
                {
                    "problem": problem,
                    "optimizer": optimizer,
                    "trials": k,
                    "best_median": float(median),
                    "best_q1": float(q1),
                    "best_q3": float(q3),
                    "explored": len(values),
                }
            )
    return pd.DataFrame(
        rows, columns=["problem", "optimizer", "trials", "best_median", "best_q1", "best_q3", "explored"]
    )


def _searched(results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per problem and optimizer, the learning rates its tuning tried: ``"0.001-31.6 (11 values)"``."""
    tuned = results[results["phase"] == "tune"] if "phase" in results else results
    out = {}
    for (problem, optimizer), part in tuned.groupby(["suite_problem", "optimizer"], sort=False):
        values = sorted(part["lr"].dropna().unique())
        if values:
            out[(problem, optimizer)] = f"{values[0]:g}-{values[-1]:g} ({len(values)} values)"
    return out


def margin_of(entry: Entry, known: bool, baseline_finals: list[float]) -> tuple[float, str]:
    """A comparison's margin of importance as a ratio (>= 1) and in words: the entry's relative
    ``margin`` where f* is known; else its ``margin_loss`` (loss units) over the baseline's median final."""
    import statistics

    if known:
        return 1 + entry.margin, f"{entry.margin:g} relative"
    finite = [v for v in baseline_finals if math.isfinite(v)]
    median = statistics.median(baseline_finals) if baseline_finals else math.inf
    if not finite or not math.isfinite(median) or median <= 0:
        return 1.0, f"loss {entry.margin_loss:g} (no finite baseline median: none)"
    return 1 + entry.margin_loss / median, f"loss {entry.margin_loss:g} at the baseline's median {median:.3g}"


def comparisons(
    per_seed: dict[str, pd.DataFrame],
    suite: Suite,
    candidates: list[str],
    baselines: list[str],
    known: dict[str, bool] | None = None,
    unsettled: dict[tuple[str, str], list[int]] | None = None,
) -> pd.DataFrame:
    """One row per candidate x baseline x problem, judged in every tuning study and then together.

    In each study: a two-sided signed-rank test on log objectives over paired seeds and two one-sided
    tests (TOST) that the paired ratio lies inside the margin, each Holm-corrected across the suite's
    problems. The verdict holds only where it holds in every study (an intersection-union test):
    ``better`` / ``worse`` where every study finds the difference (adjusted p < 0.05) the same way and
    the effect lies beyond the margin; ``equivalent`` where every study's TOST does; else
    ``inconclusive``, with the reason (``depends on tuning`` where the studies disagree). A better or
    worse whose losing side's search stopped at the trial cap before converging in some study
    (``unsettled``: problem, optimizer -> those studies) is inconclusive too: it could measure the cap. The effect is
    the median over studies of each study's median paired ratio, with a two-level bootstrap interval
    (studies, then seeds); ``p_value`` is the largest study's adjusted p (that of the called direction's
    test), ``p_equivalent`` the largest adjusted TOST p."""
    from optbench.results.stats import (
        ALPHA,
        equivalence_p,
        holm,
        log_p_value,
        log_verdict,
        paired_ratios,
        study_interval,
    )

    known, unsettled = known or {}, unsettled or {}
    rows = []
    for candidate in candidates:
        for baseline in baselines:
            per_entry = []
            for entry in suite.entries:
                table = per_seed[entry.label]
                studies = {}
                for study in sorted(table["study"].unique()) if len(table) else []:
                    part = table[table["study"] == study]
                    a = part[part["optimizer"] == candidate].set_index("seed")["final"]
                    b = part[part["optimizer"] == baseline].set_index("seed")["final"]
                    common = a.index.intersection(b.index).sort_values()
                    studies[study] = (a[common].tolist(), b[common].tolist())
                pooled_b = [v for _, b in studies.values() for v in b]
                margin, rule = margin_of(entry, known.get(entry.label, True), pooled_b)
                per_entry.append((entry.label, studies, margin, rule))
            count = max((len(s) for _, s, _, _ in per_entry), default=0)
            adjusted, adjusted_e = {}, {}
            for study in range(count):
                pairs = [s.get(study, ([], [])) for _, s, _, _ in per_entry]
                adjusted[study] = holm([log_p_value(a, b) if len(a) else 1.0 for a, b in pairs])
                adjusted_e[study] = holm(
                    [
                        equivalence_p(a, b, m) if len(a) else 1.0
                        for (a, b), (_, _, m, _) in zip(pairs, per_entry, strict=True)
                    ]
                )
            for i, (label, studies, margin, rule) in enumerate(per_entry):
                words = [
                    log_verdict(a, b, adjusted[s][i]).word if len(a) else "no significant difference"
                    for s, (a, b) in studies.items()
                ]
                ratios = [paired_ratios(a, b) for a, b in studies.values()]
                ratio, low, high = study_interval([r.tolist() for r in ratios])
                a_all = [v for a, _ in studies.values() for v in a]
                b_all = [v for _, b in studies.values() for v in b]
                word, reason = _verdict(words, ratio, margin, [adjusted_e[s][i] for s in studies], ALPHA)
                loser = {"better": baseline, "worse": candidate}.get(word)
                if loser and unsettled.get((label, loser)):  # the losing side's search had not converged
                    word, reason = (
                        "inconclusive",
                        (
                            f"{reason}; but {loser}'s tuning stopped at the trial cap before converging "
                            f"(study {', '.join(map(str, unsettled[(label, loser)]))}): raise max_trials"
                        ),
                    )
                rows.append(
                    {
                        "candidate": candidate,
                        "baseline": baseline,
                        "problem": label,
                        "verdict": word,
                        "reason": reason,
                        "ratio": ratio,
                        "ratio_low": low,
                        "ratio_high": high,
                        "margin": margin,
                        "margin_rule": rule,
                        "p_value": max((adjusted[s][i] for s in studies), default=1.0),
                        "p_equivalent": max((adjusted_e[s][i] for s in studies), default=1.0),
                        "studies": len(studies),
                        "studies_better": words.count("better"),
                        "studies_worse": words.count("worse"),
                        "seeds": len(a_all),
                        "better_seeds": sum(x < y for x, y in zip(a_all, b_all, strict=True)),
                        "diverged": sum(math.isinf(v) for v in a_all),
                        "baseline_diverged": sum(math.isinf(v) for v in b_all),
                    }
                )
    return pd.DataFrame(rows)


def _verdict(words: list[str], ratio: float, margin: float, equivalence: list[float], alpha: float) -> tuple[str, str]:
    """The verdict and its reason from each study's word, the effect, the margin and each study's TOST p."""
    n = len(words)
    if n == 0:
        return "inconclusive", "no paired seeds"
    for side, beyond in (("better", ratio <= 1 / margin), ("worse", ratio >= margin)):
        if words.count(side) == n:
            if beyond:
                return side, f"{side} in {n} of {n} studies, beyond the margin"
            if all(p < alpha for p in equivalence):
                return "equivalent", f"{side} in {n} of {n} studies but within the margin"
            return "inconclusive", f"{side} in {n} of {n} studies but not beyond the margin"
    if all(p < alpha for p in equivalence):
        return "equivalent", f"within the margin in {n} of {n} studies"
    better, worse = words.count("better"), words.count("worse")
    if better or worse:
        found = " and ".join(f"{w} in {k}" for w, k in (("better", better), ("worse", worse)) if k)
        return "inconclusive", f"depends on tuning: {found} of {n} studies"
    return "inconclusive", "no significant difference, and not shown to lie within the margin"


def summary(board: pd.DataFrame, candidates: list[str], baselines: list[str]) -> pd.DataFrame:
    """Wins / ties / losses of each candidate against each distinct baseline across the suite
    (bit-identical baselines are one entry, "gd = torch-sgd")."""
    from optbench.studies.verdict import tally

    return tally(comparisons_of(board, baselines), candidates, baselines, attached(board).get("twins", []))


def comparisons_of(board: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
    """The board's comparisons; rebuilt from its ``vs`` columns (no effect sizes) for a board read back."""
    if "comparisons" in attached(board):
        return attached(board)["comparisons"]
    rows = [
        {"candidate": r["optimizer"], "baseline": b, "problem": r["problem"], "verdict": r[f"vs {b}"]}
        for r in board[board["role"] == "candidate"].to_dict("records")
        for b in baselines
    ]
    return pd.DataFrame(rows, columns=["candidate", "baseline", "problem", "verdict"])


def to_markdown(board: pd.DataFrame, suite: Suite, candidates: list[str], baselines: list[str]) -> str:
    """The leaderboard as Markdown, ready to paste into a README or a paper: the answer first (per
    candidate against each distinct baseline), then a table per problem, then how and where it ran."""
    from optbench.results.outcomes import shown
    from optbench.studies import verdict

    extra = attached(board)
    groups = extra.get("twins", [])
    table = comparisons_of(board, baselines)
    lines = [
        f"# optbench bench: {', '.join(candidates)} vs {', '.join(baselines)} (suite `{suite.name}`)",
        "",
        *(f"- {line}" for line in speedup_lines(table, candidates, baselines, groups)),
        "",
        verdict.method_text(len(suite.eval_seeds), len(suite.entries), suite.studies),
        "",
        *([speedup_method(), ""] if "speedup_evals" in table else []),
        protocol_text(suite) + f" Each study's best setting (lowest median final objective, or validation loss where "
        f"a problem says so) was rerun on seeds {_seeds(suite.eval_seeds)}. "
        "Final: median [95% bootstrap interval] over those seeds (of every study), a diverged run counting as inf.",
        "",
        *([extra["timing"], ""] if "timing" in extra else []),
    ]
    same = [verdict.entry_name(g) for g in groups if len(g) > 1]
    if same:
        lines += [f"Identical runs (bit for bit), one entry in every count: {'; '.join(same)}.", ""]
    effects = {(r["candidate"], r["baseline"], r["problem"]): r for r in table.to_dict("records")}
    for problem, part in board.groupby("problem", sort=False):
        metric = part["metric"].iloc[0]
        entry = next(e for e in suite.entries if e.label == problem)
        lines += [f"## {problem}", "", f"Target: {part['target'].iloc[0]}. {schedule_text(entry)}", ""]
        header = [
            "optimizer",
            "lr" if suite.search == "lr" else "chosen setting (each study's) and trials",
            f"final {metric}",
            "test acc.",
            "reached",
            "steps to target",
            "s to target",
        ]
        distinct = verdict.distinct_baselines(baselines, groups)  # identical baselines: one column
        header += [f"vs {verdict.entry_name(g)}" for g in distinct]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for row in part.to_dict("records"):
            lr = "default" if row["lr"] is None or _nan(row["lr"]) else f"{row['lr']:g}"
            if suite.search != "lr" and row.get("chosen"):
                lr = f"{row['chosen']} ({row.get('trials')} trials; {row.get('tuning')})"
            if row["lr_on_edge"]:
                lr += " (grid edge)"
            diverged = verdict.diverged_text(int(row.get("diverged", 0)), row["seeds"])
            final = "{} [{}, {}]".format(*(shown(row[k], row["resolution"]) for k in FINALS))
            if row.get("errors"):  # studies.bench.mark_errors: no final value to show
                final = f"{ERROR} ({row['errors']} runs: {row['error']})"
            cells = [
                f"**{row['optimizer']}**" if row["role"] == "candidate" else row["optimizer"],
                lr,
                final + (f" ({diverged})" if diverged else ""),
                "" if _nan(row["test_accuracy"]) else f"{row['test_accuracy']:.1%}",
                f"{row['reached']} of {row['seeds']}",
                _reach(row["steps_to_target"], row["reached"], row["seeds"], "{:g}"),
                _reach(row["seconds_to_target"], row["reached"], row["seeds"], "{:.3g}") + _step_text(row),
            ]
            for b in (g[0] for g in distinct):
                effect = effects.get((row["optimizer"], b, problem))
                if effect is None or not isinstance(effect.get("verdict"), str):
                    cells.append("")
                elif "ratio" in effect:
                    cells.append(verdict.effect_text(effect))
                else:
                    cells.append(f"{effect['verdict']} (p={row[f'p vs {b}']:.2g})")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    counted = summary(board, candidates, baselines)
    words = [w for w in (*VERDICTS, ERROR) if w in counted]
    lines += ["## Across the suite", "", "| candidate | baseline | " + " | ".join(words) + " |"]
    lines.append("|" + " --- |" * (2 + len(words)))
    for row in counted.to_dict("records"):
        cells = [row["candidate"], row["baseline"], *(str(row[w]) for w in words)]
        lines.append("| " + " | ".join(cells) + " |")
    searched = search_text(suite, [*candidates, *baselines])
    if searched:
        lines += ["", *searched]
    edges = board[board["lr_on_edge"]]
    if len(edges):
        lines += [
            "",
            f"Chosen learning rates still on the edge of those searched after {suite.extend_edges} steps past the "
            "grid (the best may lie beyond; the verdicts they take part in say so):",
        ]
        lines += [
            f"- {r.optimizer} on {r.problem}: lr = {r.lr:g} (searched {r.lr_searched})" for r in edges.itertuples()
        ]
    if "provenance" in extra:
        lines += ["", f"Ran on: {verdict.provenance_text(extra['provenance'])}."]
    return "\n".join(lines) + "\n"


def protocol_text(suite: Suite) -> str:
    """How every optimizer was tuned, in one paragraph (the leaderboard and the page print it)."""
    seeds = f"on seeds {_seeds(suite.tune_seeds)}"
    if suite.search == "lr":
        edges = (
            f"; a best lr on the edge of those searched was searched past it, one grid step at a time, up to "
            f"{suite.extend_edges} steps (the same rule for every optimizer)"
            if suite.extend_edges
            else ""
        )
        grid = ", ".join(f"{v:g}" for v in suite.lr)
        return f"Every optimizer searched lr in {{{grid}}} {seeds} with the same budget{edges}."
    from optbench.studies.search import STUDY_STRIDE

    if suite.studies > 1:
        seeds += f" (study s: those + {STUDY_STRIDE} s)"
    return f"Tuning, the same for every optimizer: {suite.protocol().text()}; {seeds}, with the same budget."


def speedup_lines(table: pd.DataFrame, candidates: list[str], baselines: list[str], groups: Any) -> list[str]:
    """The headline: per candidate and distinct baseline its wins, ties and losses
    (:func:`optbench.studies.verdict.headline`), then its speedup where the suite measured one
    (:func:`optbench.studies.speedup.headline`)."""
    from optbench.studies import speedup, verdict

    distinct = verdict.distinct_baselines(baselines, groups)
    fast = speedup.headline(table, [(c, g[0], verdict.entry_name(g)) for c in candidates for g in distinct])
    lines = []
    for line in verdict.headline(table, candidates, baselines, groups):  # names may hold ":" (import paths)
        pair = next((p for p in fast if line.startswith((f"{p}: ", f"{p} (identical runs): "))), None)
        lines.append(f"{line}; {fast[pair]}" if pair else line)
    return lines


def chosen_text(job: dict[str, Any], suite: Suite) -> str:
    """The chosen values of what was searched: ``"lr=0.0316"``, or each dimension of the optimizer's
    space (``"lr=0.0316, betas.0=0.87"``) where the suite searches spaces."""
    hyper = job["hyperparameters"]
    if suite.search == "lr":
        return f"lr={hyper['lr']:g}" if "lr" in hyper else ""
    from optbench.studies import spaces

    parts = []
    for dim in spaces.space_of(job["optimizer"], suite.spaces.get(job["optimizer"]), suite.lr):
        key, _, index = dim.name.rpartition(".")  # "betas.0", "torch-adamw.betas.0": an element
        if not index.isdigit():  # "lr", "torch-muon.momentum": the setting itself
            key, index = dim.name, ""
        value = hyper.get(key)
        value = value[int(index)] if index and isinstance(value, list | tuple) else value
        parts.append(f"{dim.name}={value:.3g}" if isinstance(value, int | float) else f"{dim.name}={value}")
    return ", ".join(parts)


def search_text(suite: Suite, optimizers: list[str]) -> list[str]:
    """What each optimizer searched (the leaderboard lists it): its space and trial count."""
    if suite.search == "lr":
        return []
    from optbench.studies import spaces

    refined = ", then refined" if suite.refine else ""
    lines = [f"Search spaces (each explored with {suite.trials} settings, {suite.search}{refined}):"]
    from optbench.errors import OptbenchError

    for name in optimizers:
        try:
            dims, source = spaces.resolve(name, suite.spaces.get(name), suite.lr)
        except OptbenchError:  # a board read back where its plugins are not installed
            lines.append(f"- {name}: (not registered here)")
            continue
        lines.append(f"- {name}: {spaces.text(dims) or 'nothing to tune'} (from {source})")
    return lines


def speedup_method() -> str:
    from optbench.studies.speedup import method_text

    return method_text()


def schedule_text(entry: Entry) -> str:
    """How an entry's runs were trained: ``"Schedule: cosine after 5 warm-up steps, 60 epochs."``."""
    schedule, warmup = entry.settings.get("schedule", "constant"), entry.settings.get("warmup_steps", 0)
    shape = "constant lr" if schedule == "constant" else schedule
    warm = f" after {warmup} warm-up steps" if warmup else ""
    chosen = (
        " Settings chosen on the validation loss of the tuning seeds (rows held out from training); "
        "test metrics are the evaluation seeds'."
        if entry.select == "validation"
        else ""
    )
    return f"Schedule: {shape}{warm}, {entry.epochs} epochs; verdicts at the end of training.{chosen}"


def _reach(value: float, reached: int, seeds: int, form: str) -> str:
    """Median steps or seconds to target; "never" only when no seed got there, else "k/n reached"."""
    if reached == 0:
        return "never"
    median = "over budget" if math.isinf(value) else form.format(value)
    return median if reached == seeds else f"{median} ({reached}/{seeds} reached)"


def _step_text(row: dict[str, Any]) -> str:
    """`` (step 0.48 ms, 0.45-0.52)``: the seconds' basis, with the spread of the timing rounds."""
    if _nan(row.get("step_ms", math.nan)):
        return ""
    return f" (step {row['step_ms']:.3g} ms, {row['step_ms_low']:.3g}-{row['step_ms_high']:.3g})"


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
