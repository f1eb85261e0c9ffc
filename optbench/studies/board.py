"""The leaderboard of a bench: per problem and optimizer the final objective, time to target and
each candidate's verdict against each baseline; its statistics per comparison; the Markdown.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from optbench.results.outcomes import DEFAULT_TARGET, Target
from optbench.studies.suite import Entry, Suite

FINALS = ("final_median", "final_low", "final_high")  # the leaderboard's final objective: median [interval]


def targets(results: pd.DataFrame, suite: Suite, baselines: list[str]) -> dict[str, Target]:
    """Each problem's target: the entry's own, or (``target = "baseline"``, for problems whose optimum
    is unknown, as DeepOBS does) the median final objective of the best baseline on the evaluation
    seeds: "steps to target" is then how soon an optimizer gets where the best baseline ends."""
    out = {}
    for entry in suite.entries:
        fixed = entry.fixed_target()
        if fixed is not None:
            out[entry.label] = fixed
            continue
        table = finals_per_seed(results, entry, DEFAULT_TARGET)
        medians = {b: float(table.loc[table["optimizer"] == b, "final"].median()) for b in baselines}
        best = min(medians, key=lambda b: (medians[b], b)) if medians else None
        if best is None or not math.isfinite(medians[best]):
            out[entry.label] = Target(DEFAULT_TARGET.value, source="no baseline's median run finished")
        else:
            out[entry.label] = Target(medians[best], relative=False, source=f"the best baseline's median final, {best}")
    return out


def finals_per_seed(results: pd.DataFrame, entry: Entry, target: Target | None = None) -> pd.DataFrame:
    """One row per evaluation run of ``entry``: optimizer, seed, its
    :func:`~optbench.results.outcomes.outcome` against ``target`` (default: the entry's own, or 10% of
    the start where it has none yet), and accuracy."""
    from optbench.results.outcomes import outcome

    goal = target or entry.fixed_target() or DEFAULT_TARGET
    rows = []
    evaluated = results[(results["phase"] == "eval") & (results["suite_problem"] == entry.label)]
    for (optimizer, seed), run in evaluated.groupby(["optimizer", "seed"], sort=False):
        run = run.sort_values("step")
        status = run["status"].iloc[0]
        accuracy = float(run["test_accuracy"].iloc[-1]) if "test_accuracy" in run and status == "ok" else math.nan
        rows.append(
            {
                "problem": entry.label,
                "optimizer": optimizer,
                "seed": seed,
                **outcome(run, goal),
                "test_accuracy": accuracy,
            }
        )
    return pd.DataFrame(rows)


def leaderboard(
    results: pd.DataFrame, suite: Suite, candidates: list[str], baselines: list[str], chosen: list[dict[str, Any]]
) -> pd.DataFrame:
    """Per problem x optimizer: the chosen lr (and whether it sits on the grid's edge), the median final
    objective with its 95% bootstrap interval, accuracy, time to target, and each candidate's verdict
    against each baseline (Holm-corrected across the suite's problems)."""
    from optbench.results.stats import median_interval

    lrs = {(c["entry"].label, c["job"]["optimizer"]): c["job"]["hyperparameters"].get("lr") for c in chosen}
    values = {(c["entry"].label, c["job"]["optimizer"]): chosen_text(c["job"], suite) for c in chosen}
    edges = {(c["entry"].label, c["job"]["optimizer"]) for c in chosen if "lr" in c.get("edges", {})}
    searched = _searched(results)
    goals = targets(results, suite, baselines)
    per_seed = {e.label: finals_per_seed(results, e, goals[e.label]) for e in suite.entries}
    rows = []
    for entry in suite.entries:
        table = per_seed[entry.label]
        f_star_known = results.loc[results["suite_problem"] == entry.label, "optimum"].notna().any()
        for optimizer in [*candidates, *baselines]:
            mine = table[table["optimizer"] == optimizer].sort_values("seed")
            median, low, high = median_interval(mine["final"].tolist())
            lr = lrs.get((entry.label, optimizer))
            rows.append(
                {
                    "problem": entry.label,
                    "optimizer": optimizer,
                    "role": "candidate" if optimizer in candidates else "baseline",
                    "lr": lr,
                    "chosen": values.get((entry.label, optimizer), ""),  # every searched value, in words
                    "lr_on_edge": (entry.label, optimizer) in edges,  # still, after the search went past it
                    "lr_searched": searched.get((entry.label, optimizer), ""),
                    "metric": "suboptimality" if f_star_known else "loss",
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
                }
            )
    board = pd.DataFrame(rows)
    table = comparisons(per_seed, suite, candidates, baselines)
    from optbench.studies.speedup import speedups

    fast = [f for f in (speedups(results, e.label, candidates, baselines) for e in suite.entries) if len(f)]
    if fast:  # how much faster, from the baselines' budget ladder
        table = table.merge(pd.concat(fast, ignore_index=True), on=["problem", "candidate", "baseline"], how="left")
    table["on_edge"] = [  # a verdict that rests on a setting at the edge of its search says so
        ", ".join(n for n in (r.candidate, r.baseline) if (r.problem, n) in edges) for r in table.itertuples()
    ]
    for row in table.itertuples():
        where = (board["problem"] == row.problem) & (board["optimizer"] == row.candidate)
        board.loc[where, f"vs {row.baseline}"] = row.verdict
        board.loc[where, f"p vs {row.baseline}"] = row.p_value
        board.loc[where, f"ratio vs {row.baseline}"] = row.ratio
        board.loc[where, f"better seeds vs {row.baseline}"] = row.better_seeds
    board.attrs["comparisons"] = table
    board.attrs["per_seed"] = per_seed  # each evaluation run's outcome, for the paired figure
    board.attrs["targets"] = goals  # the page's, so that it measures what the leaderboard does
    return board


def _searched(results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per problem and optimizer, the learning rates its tuning tried: ``"0.001-31.6 (11 values)"``."""
    tuned = results[results["phase"] == "tune"] if "phase" in results else results
    out = {}
    for (problem, optimizer), part in tuned.groupby(["suite_problem", "optimizer"], sort=False):
        values = sorted(part["lr"].dropna().unique())
        if values:
            out[(problem, optimizer)] = f"{values[0]:g}-{values[-1]:g} ({len(values)} values)"
    return out


def comparisons(
    per_seed: dict[str, pd.DataFrame], suite: Suite, candidates: list[str], baselines: list[str]
) -> pd.DataFrame:
    """One row per candidate x baseline x problem: the verdict (signed-rank test on log objectives over
    paired seeds, Holm-corrected across the suite's problems), its Holm-adjusted p, the paired ratio
    with its 95% bootstrap interval, seeds, seeds the candidate was better on, and diverged runs."""
    from optbench.results.stats import Effect, holm, log_p_value, log_verdict, paired_ratio

    rows = []
    for candidate in candidates:
        for baseline in baselines:
            pairs = []
            for entry in suite.entries:
                table = per_seed[entry.label]
                a = table[table["optimizer"] == candidate].set_index("seed")["final"]
                b = table[table["optimizer"] == baseline].set_index("seed")["final"]
                common = a.index.intersection(b.index)
                pairs.append((entry.label, a[common].tolist(), b[common].tolist()))
            raw = [log_p_value(a, b) if len(a) else 1.0 for _, a, b in pairs]
            for (label, a, b), adjusted in zip(pairs, holm(raw), strict=True):
                effect = paired_ratio(a, b) if len(a) else Effect(math.nan, math.nan, math.nan, 0, 0)
                rows.append(
                    {
                        "candidate": candidate,
                        "baseline": baseline,
                        "problem": label,
                        "verdict": log_verdict(a, b, adjusted).word,
                        "ratio": effect.ratio,
                        "ratio_low": effect.low,
                        "ratio_high": effect.high,
                        "p_value": adjusted,
                        "seeds": effect.seeds,
                        "better_seeds": effect.better_seeds,
                        "diverged": sum(math.isinf(v) for v in a),
                        "baseline_diverged": sum(math.isinf(v) for v in b),
                    }
                )
    return pd.DataFrame(rows)


def summary(board: pd.DataFrame, candidates: list[str], baselines: list[str]) -> pd.DataFrame:
    """Wins / ties / losses of each candidate against each distinct baseline across the suite
    (bit-identical baselines are one entry, "gd = torch-sgd")."""
    from optbench.studies.verdict import tally

    return tally(comparisons_of(board, baselines), candidates, baselines, board.attrs.get("twins", []))


def comparisons_of(board: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
    """The board's comparisons; rebuilt from its ``vs`` columns (no effect sizes) for a board read back."""
    if "comparisons" in board.attrs:
        return board.attrs["comparisons"]
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

    groups = board.attrs.get("twins", [])
    table = comparisons_of(board, baselines)
    lines = [
        f"# optbench bench: {', '.join(candidates)} vs {', '.join(baselines)} (suite `{suite.name}`)",
        "",
        *(f"- {line}" for line in speedup_lines(table, candidates, baselines, groups)),
        "",
        verdict.method_text(len(suite.eval_seeds), len(suite.entries)),
        "",
        *([speedup_method(), ""] if "speedup_evals" in table else []),
        (
            f"Every optimizer searched lr in {{{', '.join(f'{v:g}' for v in suite.lr)}}}"
            if suite.search == "lr"
            else f"Every optimizer searched {suite.trials} configurations of its own space (listed below)"
        )
        + f" on seeds {_seeds(suite.tune_seeds)} with the same budget"
        + (
            "; a best lr on the edge of those searched was searched past it, one grid step at a time"
            + (" (half a decade at least in a space)" if suite.search != "lr" else "")
            + f", up to {suite.extend_edges} steps (the same rule for every optimizer)"
            if suite.extend_edges
            else ""
        )
        + "; the best setting (lowest median final objective, or validation loss where a problem says so) was "
        f"rerun on seeds {_seeds(suite.eval_seeds)}. "
        "Final: median [95% bootstrap interval] over those seeds, a diverged run counting as inf.",
        "",
        *([board.attrs["timing"], ""] if "timing" in board.attrs else []),
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
            "lr" if suite.search == "lr" else "chosen setting",
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
                lr = row["chosen"]
            if row["lr_on_edge"]:
                lr += " (grid edge)"
            diverged = verdict.diverged_text(int(row.get("diverged", 0)), row["seeds"])
            cells = [
                f"**{row['optimizer']}**" if row["role"] == "candidate" else row["optimizer"],
                lr,
                "{} [{}, {}]".format(*(shown(row[k], row["resolution"]) for k in FINALS))
                + (f" ({diverged})" if diverged else ""),
                "" if _nan(row["test_accuracy"]) else f"{row['test_accuracy']:.1%}",
                f"{row['reached']} of {row['seeds']}",
                _reach(row["steps_to_target"], row["reached"], row["seeds"], "{:g}"),
                _reach(row["seconds_to_target"], row["reached"], row["seeds"], "{:.3g}"),
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
    lines += ["## Across the suite", "", "| candidate | baseline | better | no sig. difference | worse |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for row in summary(board, candidates, baselines).itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} |")
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
    if "provenance" in board.attrs:
        lines += ["", f"Ran on: {verdict.provenance_text(board.attrs['provenance'])}."]
    return "\n".join(lines) + "\n"


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

    lines = [f"Search: every optimizer tried {suite.trials} configurations of its own space ({suite.search}, seeded):"]
    for name in optimizers:
        lines.append(f"- {name}: {spaces.text(spaces.space_of(name, suite.spaces.get(name), suite.lr))}")
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


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
