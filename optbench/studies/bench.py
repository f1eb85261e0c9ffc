"""`optbench bench`: a fair verdict on new optimizers against baselines, over a suite of problems.

The protocol, the same for every optimizer, candidates and baselines alike:

1. **Tune**: on every problem of the suite, each optimizer's search space (one rule for every
   optimizer: :mod:`optbench.studies.spaces`) is explored with the same number of trials and budget,
   then refined until no step improves the tuning objective by more than the suite's tolerance, past
   the edge of every dimension, in independent tuning studies (their own scramble and tuning seeds:
   :mod:`optbench.studies.search`). A suite with ``search = "lr"`` searches the lr grid alone instead,
   past its edges (:func:`optbench.studies.tuning.tune`).
2. **Evaluate**: each study's winner is rerun on fresh evaluation seeds. A seed fixes a run's data
   split, initialisation and shuffling, so seed ``s`` of a candidate and seed ``s`` of a baseline face
   the same draw: the comparison is paired.
3. **Judge**, per problem: each optimizer's final objective (suboptimality where f* is known, else
   the loss; values below the run's float resolution, its dtype's epsilon x its starting loss, count
   as that resolution, so rounding noise never decides a verdict) as a median with a 95% bootstrap
   interval over evaluation seeds, test accuracy where the problem has it, steps and seconds to the
   target; each candidate against each baseline in every study by a two-sided Wilcoxon signed-rank
   test on log objectives over the paired seeds and by two one-sided tests against the problem's
   margin of importance, Holm-corrected across the suite's problems. ``better`` / ``worse`` where
   every study finds the difference and the effect lies beyond the margin, ``equivalent`` where every
   study puts it inside, else ``inconclusive`` (:func:`comparisons`, also ``comparisons.csv``); with
   the effect size, the median paired ratio candidate/baseline with its interval over studies and
   seeds. Bit-identical optimizers (gd and full-batch torch-sgd) count once: "gd = torch-sgd".
4. **How much faster**: each baseline's first-study setting rerun over a ladder of budgets gives each
   comparison's speedup in gradient evaluations and steps, with its interval
   (:mod:`optbench.studies.speedup`).
5. **How much tuning it needs**: the best tuning score among k explored settings, k = 1 .. all
   (``tunability.csv``, a figure on the page: :func:`optbench.studies.board.tunability`).

The suite format is in :mod:`optbench.studies.suite`; the leaderboard, its statistics and
its Markdown in :mod:`optbench.studies.board`.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError, OptbenchError
from optbench.results import schema
from optbench.studies.board import (
    FINALS,
    attached,
    comparisons,
    comparisons_of,
    finals_per_seed,
    leaderboard,
    protocol_text,
    speedup_lines,
    speedup_method,
    summary,
    targets,
    to_markdown,
)
from optbench.studies.suite import (
    BASELINE_TARGET,
    SUITES,
    Entry,
    Suite,
    check_sizes,
    load_suite,
    require_enough_seeds,
)
from optbench.studies.verdict import ERROR, VERDICTS

__all__ = [  # the suite and the leaderboard live in their own modules; these names stay importable here
    "BASELINE_TARGET",
    "FINALS",
    "SUITES",
    "Entry",
    "Suite",
    "bench",
    "comparisons",
    "finals_per_seed",
    "leaderboard",
    "load_suite",
    "summary",
    "targets",
    "to_markdown",
    "write_outputs",
]

DEFAULT_BASELINES = ("torch-sgd-momentum", "torch-adam", "torch-adamw")  # distinct, each strong: no twins


def bench(
    candidates: list[str],
    baselines: tuple[str, ...] | list[str] | None = None,
    suite: str | Suite = "quick",
    out: str | Path | None = None,
    command: str | None = None,
    **sweep_options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the protocol; return (the results of every run, the leaderboard: one row per problem x optimizer).

    ``out``, if given, is a folder that receives ``runs/`` (the results, one file a problem; a rerun
    resumes), ``leaderboard.md``, ``leaderboard.csv``, ``comparisons.csv`` and ``results.parquet``; the
    page (``report/``) is a view drawn from ``board.attrs["bench"]["page"]`` (:func:`page_data`) by
    :func:`optbench.reports.bench_page.write_page`, as ``optbench bench`` does.
    ``sweep_options`` go to :func:`optbench.studies.sweeps.sweep` (``device``-less: put it in the suite
    grid with ``device=``; ``jobs``, ``executor``, ``scheduler``, ``plugin_files``, ``progress``).
    ``command`` is recorded on the page and leaderboard (the CLI passes its command line).
    The leaderboard's ``attrs["bench"]`` (:class:`~optbench.studies.board.Attached`) holds ``comparisons``
    (:func:`comparisons`), ``twins`` (bit-identical optimizers, :func:`optbench.studies.verdict.twins`),
    ``provenance`` and ``page``.
    """
    from optbench.registry import canonical_name

    suite = load_suite(suite) if isinstance(suite, str) else suite
    baselines = list(baselines or suite.baselines or DEFAULT_BASELINES)  # the suite's own, else the default
    candidates, baselines = [canonical_name(n) for n in candidates], [canonical_name(n) for n in baselines]
    overlap = sorted(set(candidates) & set(baselines))
    if overlap:
        raise InvalidValueError(f"--optimizer {overlap[0]!r} is also a baseline; compare it against the others")
    device = sweep_options.pop("device", "cpu")
    require_enough_seeds(suite)
    check_sizes(suite)  # what each problem's options cost, before anything is built
    folder = Path(out) if out is not None else None
    if folder is not None:
        check_out(folder, suite)
    trials = None if suite.search == "lr" else search_spaces(suite, [*candidates, *baselines])
    unused = sorted(set(suite.spaces) - set(trials or ()))
    if unused:  # a misspelt name, or spaces the lr grid does not read: refused, as a sweep file's [opt.NAME]
        from optbench.errors import did_you_mean

        where = f"suite {suite.source or suite.name!r}: [spaces.{unused[0]}]"
        if trials is None:
            raise InvalidValueError(f'{where} is not used: search = "lr" tunes the lr grid alone')
        names = [*candidates, *baselines]
        raise InvalidValueError(
            f"{where} is not one of this bench's optimizers{did_you_mean(unused[0], names)}; "
            f"its optimizers: {', '.join(names)}"
        )
    shown = sweep_options.get("progress", False)
    eta = Eta([steps_of(e) if shown else 1 for e in suite.entries], [e.label for e in suite.entries], shown)
    problem = functools.partial(
        _problem_runs,
        candidates=candidates,
        baselines=baselines,
        suite=suite,
        trials=trials,
        device=device,
        folder=folder,
        sweep_options=sweep_options,
    )
    done = _each_problem(problem, suite.entries, sweep_options, eta)
    frames = [done[entry.label][0] for entry in suite.entries]  # in the suite's order, however they finished
    chosen_all = [choice for entry in suite.entries for choice in done[entry.label][1]]
    results, step_seconds = retime(pd.concat(frames, ignore_index=True), chosen_all, [*candidates, *baselines])
    failed = failed_evaluations(results)  # an error is not a divergence: out of every statistic, named instead
    kept = results[~results["run_key"].isin(failed["run_key"])]
    board = leaderboard(kept, suite, candidates, baselines, chosen_all, step_seconds)
    mark_errors(board, failed)
    from optbench.studies import verdict

    extra = attached(board)  # shared by every frame derived from the board, never deep-copied
    extra["twins"] = verdict.twins(results, [*candidates, *baselines])
    extra["provenance"] = verdict.provenance(command)
    extra["timing"] = timing_text(results)
    extra["page"] = page_data(results, board, suite, candidates, baselines)
    if folder is not None:
        write_outputs(results, board, suite, candidates, baselines, folder)
    return results, board


def _problem_runs(
    entry: Any,
    *,
    candidates: list[str],
    baselines: list[str],
    suite: Suite,
    trials: dict[str, Any] | None,
    device: str,
    folder: Path | None,
    sweep_options: dict[str, Any],
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One problem of the suite: every optimizer tuned (its studies), evaluated and, with the suite's
    speedup, each baseline over the ladder of budgets; its table and choices."""
    from optbench.settings.grid import Grid
    from optbench.studies.search import search
    from optbench.studies.speedup import PHASE, budget_jobs
    from optbench.studies.sweeps import keyed, run_jobs
    from optbench.studies.tuning import tune

    grid = Grid(
        problems=[entry.problem],
        optimizers=[*candidates, *baselines],
        seeds=suite.tune_seeds,
        epochs=entry.epochs,
        batch_size=entry.batch_size,
        **entry.settings,
        lr=suite.lr if trials is None else None,  # a space search sets every hyperparameter itself
        device=device,
        problem_opt={entry.problem: {k: [v] for k, v in entry.options.items()}},
    )
    runs = None if folder is None else folder / "runs" / f"{_slug(entry.label)}.parquet"
    if runs is not None:
        runs.parent.mkdir(parents=True, exist_ok=True)
    if trials is None:  # the lr grid alone, searched past its edges (one study)
        table, chosen = tune(
            grid,
            runs,
            tune_seeds=suite.tune_seeds,
            eval_seeds=suite.eval_seeds,
            extend=suite.extend_edges,
            select=entry.select,
            **sweep_options,
        )
    else:
        table, chosen = search(
            grid,
            runs,
            spaces_of=trials,
            protocol=suite.protocol(),
            tune_seeds=suite.tune_seeds,
            eval_seeds=suite.eval_seeds,
            select=entry.select,
            **sweep_options,
        )
    if suite.speedup:  # each baseline at its chosen setting over the ladder of budgets
        first = [c for c in chosen if c["study"] == 0]  # the ladder of the first study's choices
        ladder = keyed(budget_jobs(first, baselines, suite.eval_seeds), PHASE, grid.source)
        if ladder:
            table = schema.concat([table, run_jobs(ladder, runs, **{**sweep_options, "note": None})])
    return table.assign(suite_problem=entry.label), [dict(c, entry=entry) for c in chosen]


def _each_problem(
    problem: Callable[[Any], tuple[pd.DataFrame, list[dict[str, Any]]]],
    entries: list[Any],
    sweep_options: dict[str, Any],
    eta: Eta,
) -> dict[str, tuple[pd.DataFrame, list[dict[str, Any]]]]:
    """Every problem's runs, by label. With several local workers (``jobs``) the problems run at once,
    a thread each, sharing one pool of worker processes (:class:`optbench.studies.sweeps.SharedPool`):
    a problem's search waits between its rounds (scoring, the next round's settings, merging its
    store) and another's groups fill the workers meanwhile. Each run is the same run either way (its
    seed, its group), so the tables are the same; Ctrl-C or an error stops every problem at its next
    finished group, with what finished kept in OUT."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    from optbench.studies.sweeps import SharedPool

    jobs = int(sweep_options.get("jobs", 1) or 1)
    if jobs <= 1 or sweep_options.get("executor", "local") != "local" or len(entries) <= 1:
        done = {}
        for entry in entries:
            done[entry.label] = problem(entry)
            eta.done(entry.label)
        return done
    pool = SharedPool(jobs)
    options = {**sweep_options, "pool": pool}
    threads = ThreadPoolExecutor(max_workers=min(len(entries), jobs + 1), thread_name_prefix="optbench-problem")
    futures = {threads.submit(problem, entry, sweep_options=options): entry for entry in entries}
    done = {}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                label = futures[future].label
                done[label] = future.result()  # the first error (or Ctrl-C in a worker) ends the bench
                eta.done(label)
    except BaseException:
        pool.stop()  # the others stop at their next finished group, their stores merged
        threads.shutdown(wait=True, cancel_futures=True)
        raise
    threads.shutdown(wait=True)
    return done


def failed_evaluations(results: pd.DataFrame) -> pd.DataFrame:
    """The evaluation runs that raised an error (status ``error``): one row each, with its problem
    (``suite_problem``), optimizer and message. They have no final value, so no verdict may read them."""
    failed = results[(results["phase"] == "eval") & (results["status"] == "error")]
    return failed.drop_duplicates("run_key")[["run_key", "suite_problem", "optimizer", "message"]]


def mark_errors(board: pd.DataFrame, failed: pd.DataFrame) -> None:
    """Name the errors where the verdicts would be: each (problem, optimizer) with failed evaluation
    runs gets ``errors`` (their count) and ``error`` (the commonest message) on the leaderboard, and every
    comparison it takes part in the verdict :data:`~optbench.studies.verdict.ERROR` with that message
    as its reason (a count of paired seeds or a p-value of the runs left would be a verdict on part of them)."""
    from optbench.studies.verdict import ERROR

    board["errors"], board["error"] = 0, ""
    table = attached(board)["comparisons"]
    for (problem, optimizer), runs in failed.groupby(["suite_problem", "optimizer"], sort=False):
        message = runs["message"].astype(str).value_counts().index[0]
        mine = (board["problem"] == problem) & (board["optimizer"] == optimizer)
        board.loc[mine, "errors"], board.loc[mine, "error"] = len(runs), message
        involved = (table["problem"] == problem) & (
            (table["candidate"] == optimizer) | (table["baseline"] == optimizer)
        )
        table.loc[involved, "verdict"] = ERROR
        table.loc[involved, "reason"] = f"{len(runs)} of {optimizer}'s evaluation runs failed: {message}"
        for row in table[involved].itertuples():
            where = (board["problem"] == row.problem) & (board["optimizer"] == row.candidate)
            board.loc[where, f"vs {row.baseline}"] = ERROR


def steps_of(entry: Entry) -> int:
    """One run's optimizer steps on ``entry``: its epochs x the batches an epoch of its data holds."""
    from optbench.registry import PROBLEMS

    problem = PROBLEMS.get(entry.problem)
    n = problem.target(seed=0, **entry.options).n_train  # after check_sizes: it fits
    return entry.epochs * -(-n // min(entry.batch_size or problem.batch_size or n, n))


class Eta:
    """A line on stderr after each problem of a long bench: what is done, and about how long the rest
    takes (the time so far per step of budget, times the steps to go; the same search on each)."""

    def __init__(self, weights: list[int], labels: list[str], shown: bool):
        self.weights = dict(zip(labels, weights, strict=True))
        self.shown, self.start, self.finished = shown, time.perf_counter(), []

    def done(self, label: str) -> None:
        self.finished.append(label)
        left = [name for name in self.weights if name not in self.finished]
        if not self.shown or not left:
            return
        elapsed = time.perf_counter() - self.start
        rest = elapsed / sum(self.weights[name] for name in self.finished) * sum(self.weights[name] for name in left)
        print(
            f"bench: {len(self.finished)}/{len(self.weights)} problems done ({label}) in {elapsed:.0f} s;"
            f" about {rest:.0f} s to go ({', '.join(left)})",
            file=sys.stderr,
            flush=True,
        )


def search_spaces(suite: Suite, optimizers: list[str]) -> dict[str, Any]:
    """Each optimizer's search space (:func:`optbench.studies.spaces.space_of`), checked before any work
    (a dimension that names no setting is one line)."""
    from optbench.registry import OPTIMIZERS
    from optbench.settings.options import unknown_setting
    from optbench.studies import spaces

    out = {}
    for name in optimizers:
        dims = spaces.space_of(name, suite.spaces.get(name), suite.lr)
        entry = OPTIMIZERS.get(name)
        known = entry.hyperparameters()
        for dim in suite.spaces.get(name, {}):  # the suite's own dimensions: settings the optimizer takes
            key, _, index = dim.rpartition(".")
            setting = key if index.isdigit() else dim
            if entry.aliases().get(setting, setting) not in known:
                where = f"suite {suite.source or suite.name!r}: [spaces.{name}]"
                raise unknown_setting("optimizer", name, dim, known, where)
        try:
            spaces.hyperparameters({d.name: d.at(0.5) for d in dims}, known)
        except InvalidValueError as exc:  # "betas.5": no such element
            raise InvalidValueError(f"suite {suite.source or suite.name!r}: [spaces.{name}]: {exc}") from None
        out[name] = dims
    return out


def page_data(
    results: pd.DataFrame, board: pd.DataFrame, suite: Suite, candidates: list[str], baselines: list[str]
) -> dict[str, Any]:
    """Everything a bench's page shows, computed here once from the leaderboard and its comparisons, as
    plain data (sentences, tables, per-seed ratios) for :func:`optbench.reports.bench_page.write_page`
    to draw: the page recomputes nothing, so it cannot disagree with leaderboard.md or the CSVs."""
    from optbench.results.stats import paired_ratios
    from optbench.studies import verdict

    extra = attached(board)
    groups, table = extra.get("twins", []), comparisons_of(board, baselines)
    distinct = verdict.distinct_baselines(baselines, groups)
    per_seed = extra["per_seed"]
    paired, heat = [], []
    for entry in suite.entries:
        seeds = per_seed[entry.label]
        for candidate in candidates:
            for group in distinct:
                a = seeds[seeds["optimizer"] == candidate].set_index(["study", "seed"])["final"]
                b = seeds[seeds["optimizer"] == group[0]].set_index(["study", "seed"])["final"]
                common = a.index.intersection(b.index)
                ratios = paired_ratios(a[common].tolist(), b[common].tolist()).tolist()
                if not ratios:  # no paired runs (an error took them: mark_errors names it instead)
                    continue
                paired.append((entry.label, candidate, verdict.entry_name(group), ratios))
    for row in table.to_dict("records"):
        group = next((g for g in distinct if g[0] == row["baseline"]), None)
        if group is not None:
            heat.append({**row, "baseline_name": verdict.entry_name(group), "text": verdict.effect_text(row)})
    tally = verdict.tally(table, candidates, baselines, groups)
    return {
        "title": f"{', '.join(candidates)} vs {', '.join(baselines)}, suite {suite.name}",
        "sentences": candidate_sentences(tally, candidates),
        "headline": speedup_lines(table, candidates, baselines, groups),
        "heat": heat,
        "problems": [entry.label for entry in suite.entries],
        "method": " ".join(
            [
                verdict.method_text(len(suite.eval_seeds), len(suite.entries), suite.studies),
                protocol_text(suite),
                *([speedup_method()] if "speedup_evals" in table else []),
                extra.get("timing", ""),
            ]
        ),
        "tally": tally,
        "provenance": verdict.provenance_text(extra.get("provenance") or verdict.provenance()),
        "tuning": board[["problem", "optimizer", "chosen", "trials", "tuning"]] if "trials" in board else None,
        "cards": cards(board),
        "summary": board_summary(board),
        "paired": paired,
        "comparisons": table,
        "entries": list(suite.entries),
        "targets": [(entry, extra["targets"][entry.label]) for entry in suite.entries],
        "distinct": [group[0] for group in distinct],
        "tunability": extra.get("tunability"),
        "optimizers": results["optimizer"].astype(str).unique().tolist(),
    }


def candidate_sentences(tally: pd.DataFrame, candidates: list[str]) -> list[str]:
    """One sentence per candidate: its verdicts against every distinct baseline, counted."""
    out = []
    for candidate in candidates:
        parts = []
        for row in tally[tally["candidate"] == candidate].to_dict("records"):
            counts = ", ".join(f"{row[w]} {w}" for w in (*VERDICTS, ERROR) if row.get(w)) or "no problems"
            parts.append(f"against {row['baseline']}: {counts}")
        words = [w for w in (*VERDICTS, ERROR) if w in tally]
        total = int(tally.loc[tally["candidate"] == candidate, words].sum(axis=1).max()) if len(tally) else 0
        out.append(f"{candidate}, over {total} problem{'s' if total != 1 else ''}: {'; '.join(parts)}.")
    return out


CARD_COLUMNS = {"final_median": "final", "final_low": "low", "final_high": "high"}


def cards(board: pd.DataFrame) -> pd.DataFrame:
    """The page's card per problem, read from the leaderboard: each optimizer's chosen settings, median
    final [95% bootstrap interval] over every study's evaluation runs, reached and diverged counts."""
    table = board.rename(columns=CARD_COLUMNS).assign(
        setting=board["chosen"].where(board["chosen"].astype(bool), board["lr"].map(lambda v: f"lr={v:g}"))
        if "chosen" in board
        else board["lr"].map(lambda v: f"lr={v:g}"),
        edge=board["lr_on_edge"].map(lambda on: "lr" if on else ""),
        has_optimum=board["metric"] == "suboptimality",
        configs=0,
    )
    order = {problem: i for i, problem in enumerate(dict.fromkeys(board["problem"]))}  # the suite's order
    table = table.assign(order=table["problem"].map(order))
    return (
        table.sort_values(["order", "final", "optimizer"], kind="stable").drop(columns="order").reset_index(drop=True)
    )


SUMMARY_COLUMNS = [
    "problem",
    "optimizer",
    "role",
    "chosen",
    "trials",
    "metric",
    "target",
    "seeds",
    "final_median",
    "final_low",
    "final_high",
    "resolution",
    "reached",
    "diverged",
    "test_accuracy",
    "steps_to_target",
    "seconds_to_target",
]


def board_summary(board: pd.DataFrame) -> pd.DataFrame:
    """summary.csv of a bench's page: the leaderboard's own rows and numbers (one per problem and
    optimizer), so that the page, its CSV and leaderboard.csv say the same."""
    return board[[c for c in SUMMARY_COLUMNS if c in board]].copy()


OUTPUTS = ("leaderboard.md", "leaderboard.csv", "comparisons.csv", "tunability.csv", "results.parquet")


def check_out(folder: Path, suite: Suite) -> None:
    """Refuse, before any work, an OUT folder the bench could not write to: a file or FIFO at its
    place, a read-only folder (tried with a temporary file), a folder or FIFO where one of its files
    goes, a file where ``runs/`` or ``report/`` goes, and the same for each problem's store of runs."""
    from optbench.results import files
    from optbench.results.store import Store

    if os.path.lexists(folder) and not folder.is_dir():
        raise InvalidValueError(f"--out {str(folder)!r} is not a folder; expected a folder path (made if missing)")
    if not folder.is_dir():
        above = next(p for p in folder.absolute().parents if os.path.lexists(p))
        if not above.is_dir() or not os.access(above, os.W_OK):
            raise InvalidValueError(f"--out {str(folder)!r} cannot be made: {str(above)!r} is not a writable folder")
        return
    files.check_places(folder, files=OUTPUTS, folders=["runs", "report"])
    files.check_writable(folder / OUTPUTS[0])  # a real temporary file: a read-only folder says so now
    for entry in suite.entries:
        if (folder / "runs").is_dir():
            Store.check_places(folder / "runs" / f"{_slug(entry.label)}.parquet")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


TIMING_ROUNDS = 7  # interleaved timing rounds per problem; each optimizer's rate is their median
TIMING_STEPS = 64  # optimizer steps per timing (at most the run's budget)


def retime(
    results: pd.DataFrame, chosen: list[dict[str, Any]], optimizers: list[str]
) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[float, float, float]]]:
    """The evaluation runs' ``time_s`` from timings interleaved across the optimizers: per problem,
    :data:`TIMING_ROUNDS` rounds in which each optimizer's chosen setting trains alone for
    :data:`TIMING_STEPS` steps (the order rotating), the median round's seconds per step times each
    record's step. Timed one after another instead, two identical algorithms measured up to 1.65x apart
    in one ``bench --suite quick`` on a shared 2-core machine: its speed changes for seconds at a time,
    and that hit whichever optimizer ran then. Tuning runs keep their own times. Returns the table and
    each problem and optimizer's seconds per step: median, min and max over the rounds (the spread two
    optimizers' seconds must differ beyond to differ at all). Not in ``results.attrs``: pandas deep-copies
    attrs on every operation, and that dict made each one 5x slower (a quarter of a quick bench's leaderboard)."""
    from optbench.core.engine import seconds_per_step_alone
    from optbench.studies.sweeps import prepare_job

    results = results.copy()
    spread: dict[tuple[str, str], tuple[float, float, float]] = {}
    by_entry: dict[str, dict[str, Any]] = {}
    for choice in chosen:  # the first study's choices are timed (each study's runs take their rate)
        if choice.get("study", 0) == 0:
            by_entry.setdefault(choice["entry"].label, {})[choice["job"]["optimizer"]] = choice["job"]
    for label, jobs in by_entry.items():
        specs = {name: prepare_job(jobs[name]) for name in optimizers if name in jobs}
        rates: dict[str, list[float]] = {name: [] for name in specs}
        threads: dict[str, int] = {}
        names = list(specs)
        for i in range(TIMING_ROUNDS):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                try:
                    rate, threads[name] = seconds_per_step_alone(specs[name], TIMING_STEPS)
                except OptbenchError:  # its runs are error rows already
                    continue
                if rate > 0:
                    rates[name].append(rate)
        for name, measured in rates.items():
            if not measured:
                continue
            rows = (results["suite_problem"] == label) & (results["optimizer"] == name)
            rows &= results["phase"] == "eval"
            rows &= results["status"] != "error"
            results.loc[rows, "time_s"] = results.loc[rows, "step"] * statistics.median(measured)
            results.loc[rows, "threads"] = threads[name]
            spread[(label, name)] = (statistics.median(measured), min(measured), max(measured))
    return results, spread


def timing_text(results: pd.DataFrame) -> str:
    """How the seconds in a bench's tables were measured, with the thread counts the runs used."""
    from optbench.core.threads import WINDOWS

    used = sorted({int(t) for t in results["threads"] if t > 0}) if "threads" in results else []
    counts = " or ".join(map(str, used)) or "1"
    return (
        f"Seconds: optimizer wall time (gradient and step; evaluation excluded) on {counts} intra-op "
        f"thread{'' if used in ([], [1]) else 's'}. Each optimizer's chosen setting was timed alone for "
        f"{TIMING_STEPS} steps in {TIMING_ROUNDS} rounds interleaved with the other optimizers' (a step's "
        f"seconds: the median of {WINDOWS} timed windows); the median round's seconds per step times a run's "
        "steps gives its seconds."
    )


def write_outputs(
    results: pd.DataFrame,
    board: pd.DataFrame,
    suite: Suite,
    candidates: list[str],
    baselines: list[str],
    folder: Path,
) -> None:
    """leaderboard.md, leaderboard.csv, comparisons.csv, tunability.csv and results.parquet in ``folder``
    (the page is drawn from ``board.attrs["bench"]["page"]`` by :func:`optbench.reports.bench_page.write_page`)."""
    from optbench.results import files
    from optbench.results.io import save_results

    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "leaderboard.md", to_markdown(board, suite, candidates, baselines))  # atomic: 74 if full
    files.atomic_write(folder / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
    comparisons = attached(board)["comparisons"]  # one row per comparison
    files.atomic_write(folder / "comparisons.csv", lambda tmp: comparisons.to_csv(tmp, index=False))
    tunability = attached(board).get("tunability")
    if tunability is not None and len(tunability):
        files.atomic_write(folder / "tunability.csv", lambda tmp: tunability.to_csv(tmp, index=False))
    save_results(results.drop(columns="suite_problem"), folder / "results.parquet")
