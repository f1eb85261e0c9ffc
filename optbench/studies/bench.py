"""`optbench bench`: a fair verdict on new optimizers against baselines, over a suite of problems.

The protocol, the same for every optimizer, candidates and baselines alike:

1. **Tune**: on every problem of the suite, each optimizer searches the suite's learning-rate grid
   with the same step budget on the tuning seeds; the setting with the lowest median final objective
   wins (:func:`optbench.studies.sweeps.tune`).
2. **Evaluate**: each winner is rerun on fresh evaluation seeds. A seed fixes a run's data split,
   initialisation and shuffling, so seed ``s`` of a candidate and seed ``s`` of a baseline face the
   same draw: the comparison is paired.
3. **Judge**, per problem: each optimizer's final objective (suboptimality where f* is known, else
   the loss; values below the run's float resolution, its dtype's epsilon x its starting loss, count
   as that resolution, so rounding noise never decides a verdict) as a median with a 95% bootstrap
   interval over evaluation seeds, test accuracy where the problem has it, steps and seconds to the
   target; each candidate against each baseline by a two-sided Wilcoxon signed-rank test on log
   objectives (the ratio scale) over the paired seeds, Holm-corrected across the problems of the
   suite: ``better`` / ``worse`` at adjusted p < 0.05, else ``no significant difference``; with the
   effect size, the median paired ratio candidate/baseline with its 95% bootstrap interval, and the
   number of seeds the candidate was better on (:func:`comparisons`, also ``comparisons.csv``).
   Bit-identical optimizers (gd and full-batch torch-sgd) count once: "gd = torch-sgd".

A suite is a TOML file (``optbench/suites/quick.toml``, ``standard.toml``, or your own)::

    description = "what it is for"
    lr = "1e-4:1:9"            # the learning-rate grid every optimizer searches
    tune_seeds = "0-2"
    eval_seeds = "100-109"     # enough that 2 / 2^seeds x problems < 0.05, else the suite is refused
    schedule = "cosine"        # optional: any run setting but the device, for every problem
    warmup_steps = 5
    [[problems]]
    problem = "linreg"
    epochs = 50
    target_objective = 1e-3    # steps/seconds to suboptimality <= 1e-3 (f* known: absolute)
    # target = "baseline"      # (no f*) to the best baseline's median final; target = 0.01: 1% of the start
    options = { n = 100 }      # problem options (optional); batch_size = 32 (optional)
    # schedule, warmup_steps, eval_every here override the suite's for this problem
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from optbench.errors import InvalidValueError, OptbenchError
from optbench.results.outcomes import DEFAULT_TARGET, Target
from optbench.settings import declared, validate

SUITES = ("quick", "standard")
DEFAULT_BASELINES = ("gd", "torch-sgd", "torch-adam")
FINALS = ("final_median", "final_low", "final_high")  # the leaderboard's final objective: median [interval]


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

    def fixed_target(self) -> Target | None:
        """The target known before any run: an absolute objective (``target_objective``), or a share of
        each run's start (``target``); None for ``target = "baseline"``, which :func:`targets` derives."""
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
    known = {"description", "lr", "tune_seeds", "eval_seeds", "problems", *run_keys} - {"epochs", "batch_size"}
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
        extra = set(item) - {"problem", "target", "target_objective", "options", *run_keys}
        if extra:
            raise InvalidValueError(f"suite {name!r}: problems[{i}] has an unknown key {sorted(extra)[0]!r}")
        where = f"suite {name!r}: problems[{i}]"
        problem = registered_name("problem", item["problem"], where, allow_import_paths)
        given = {k: raw[k] for k in run_keys if k in raw} | {k: item[k] for k in run_keys if k in item}
        settings = declared.resolve(given, lambda key, where=where: f"{where}: {key}")
        options = item.get("options", {})
        if not isinstance(options, dict):
            raise InvalidValueError(f"{where}: options must be a table such as {{ n = 200 }}, not {options!r}")
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
    )


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


def bench(
    candidates: list[str],
    baselines: tuple[str, ...] | list[str] = DEFAULT_BASELINES,
    suite: str | Suite = "quick",
    out: str | Path | None = None,
    report: bool = True,
    command: str | None = None,
    **sweep_options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the protocol; return (the results of every run, the leaderboard: one row per problem x optimizer).

    ``out``, if given, is a folder that receives ``runs/`` (the results, one file a problem; a rerun
    resumes), ``leaderboard.md``, ``leaderboard.csv`` and, with ``report``, ``report/`` (the HTML report).
    ``sweep_options`` go to :func:`optbench.studies.sweeps.sweep` (``device``-less: put it in the suite
    grid with ``device=``; ``jobs``, ``executor``, ``scheduler``, ``plugin_files``, ``progress``).
    ``command`` is recorded on the page and leaderboard (the CLI passes its command line).
    The leaderboard's ``attrs`` hold ``comparisons`` (:func:`comparisons`), ``twins`` (bit-identical
    optimizers, :func:`optbench.studies.verdict.twins`) and ``provenance``.
    """
    from optbench.settings.grid import Grid
    from optbench.studies.tuning import tune

    baselines = list(baselines)
    suite = load_suite(suite) if isinstance(suite, str) else suite
    overlap = sorted(set(candidates) & set(baselines))
    if overlap:
        raise InvalidValueError(f"--optimizer {overlap[0]!r} is also a baseline; compare it against the others")
    device = sweep_options.pop("device", "cpu")
    require_enough_seeds(suite)
    folder = Path(out) if out is not None else None
    if folder is not None:
        check_out(folder, suite)
    frames, chosen_all = [], []
    for entry in suite.entries:
        grid = Grid(
            problems=[entry.problem],
            optimizers=[*candidates, *baselines],
            seeds=suite.tune_seeds,
            epochs=entry.epochs,
            batch_size=entry.batch_size,
            **entry.settings,
            lr=suite.lr,
            device=device,
            problem_opt={entry.problem: {k: [v] for k, v in entry.options.items()}},
        )
        runs = None if folder is None else folder / "runs" / f"{_slug(entry.label)}.parquet"
        if runs is not None:
            runs.parent.mkdir(parents=True, exist_ok=True)
        table, chosen = tune(grid, runs, tune_seeds=suite.tune_seeds, eval_seeds=suite.eval_seeds, **sweep_options)
        frames.append(table.assign(suite_problem=entry.label))
        chosen_all += [dict(c, entry=entry) for c in chosen]
    results = retime(pd.concat(frames, ignore_index=True), chosen_all, [*candidates, *baselines])
    board = leaderboard(results, suite, candidates, baselines, chosen_all)
    from optbench.studies import verdict

    board.attrs["twins"] = verdict.twins(results, [*candidates, *baselines])
    board.attrs["provenance"] = verdict.provenance(command)
    board.attrs["timing"] = timing_text(results)
    if folder is not None:
        write_outputs(results, board, suite, candidates, baselines, folder, report)
    return results, board


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


def paired_figure(board: pd.DataFrame, suite: Suite, candidates: list[str], baselines: list[str]) -> Any:
    """The per-seed ratios each verdict tested, for every candidate and distinct baseline on every problem."""
    from optbench.reports.figures import paired
    from optbench.results.stats import paired_ratios
    from optbench.studies import verdict

    groups, per_seed = board.attrs.get("twins", []), board.attrs["per_seed"]
    pairs = []
    for entry in suite.entries:
        table = per_seed[entry.label]
        for candidate in candidates:
            for group in verdict.distinct_baselines(baselines, groups):
                a = table[table["optimizer"] == candidate].set_index("seed")["final"]
                b = table[table["optimizer"] == group[0]].set_index("seed")["final"]
                common = a.index.intersection(b.index)
                ratios = paired_ratios(a[common].tolist(), b[common].tolist()).tolist()
                pairs.append((entry.label, candidate, verdict.entry_name(group), ratios))
    return paired(pairs)


OUTPUTS = ("leaderboard.md", "leaderboard.csv", "comparisons.csv", "results.parquet")


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
    from optbench.results.outcomes import on_edge
    from optbench.results.stats import median_interval

    lrs = {(c["entry"].label, c["job"]["optimizer"]): c["job"]["hyperparameters"].get("lr") for c in chosen}
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
                    "lr_on_edge": lr is not None and on_edge(lr, suite.lr),
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

    return tally(_comparisons(board, baselines), candidates, baselines, board.attrs.get("twins", []))


def _comparisons(board: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
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
    table = _comparisons(board, baselines)
    lines = [
        f"# optbench bench: {', '.join(candidates)} vs {', '.join(baselines)} (suite `{suite.name}`)",
        "",
        *(f"- {line}" for line in verdict.headline(table, candidates, baselines, groups)),
        "",
        verdict.method_text(len(suite.eval_seeds), len(suite.entries)),
        "",
        f"Every optimizer searched lr in {{{', '.join(f'{v:g}' for v in suite.lr)}}} on seeds "
        f"{_seeds(suite.tune_seeds)} with the same budget; the best setting (lowest median final objective) was "
        f"rerun on seeds {_seeds(suite.eval_seeds)}. Final: median [95% bootstrap interval] over those seeds, "
        "a diverged run counting as inf.",
        "",
        *([board.attrs["timing"], ""] if "timing" in board.attrs else []),
    ]
    same = [verdict.entry_name(g) for g in groups if len(g) > 1]
    if same:
        lines += [f"Identical runs (bit for bit), one entry in every count: {'; '.join(same)}.", ""]
    effects = {(r["candidate"], r["baseline"], r["problem"]): r for r in table.to_dict("records")}
    for problem, part in board.groupby("problem", sort=False):
        metric = part["metric"].iloc[0]
        lines += [f"## {problem}", "", f"Target: {part['target'].iloc[0]}.", ""]
        header = ["optimizer", "lr", f"final {metric}", "test acc.", "reached", "steps to target", "s to target"]
        distinct = verdict.distinct_baselines(baselines, groups)  # identical baselines: one column
        header += [f"vs {verdict.entry_name(g)}" for g in distinct]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for row in part.to_dict("records"):
            lr = "default" if row["lr"] is None or _nan(row["lr"]) else f"{row['lr']:g}"
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
    edges = board[board["lr_on_edge"]]
    if len(edges):
        lines += ["", "Chosen learning rates on the edge of the grid (widen `lr` in the suite to be sure):"]
        lines += [f"- {r.optimizer} on {r.problem}: lr = {r.lr:g}" for r in edges.itertuples()]
    if "provenance" in board.attrs:
        lines += ["", f"Ran on: {verdict.provenance_text(board.attrs['provenance'])}."]
    return "\n".join(lines) + "\n"


def _verdict_section(board: pd.DataFrame, suite: Suite, candidates: list[str], baselines: list[str]) -> str:
    from optbench.reports.verdict import verdict_html
    from optbench.studies import verdict

    groups, table = board.attrs.get("twins", []), _comparisons(board, baselines)
    distinct = verdict.distinct_baselines(baselines, groups)
    shown = [
        (r["problem"], r["candidate"], verdict.entry_name(g), verdict.effect_text(r))
        for r in table.to_dict("records")
        for g in distinct
        if r["baseline"] == g[0]
    ]
    return verdict_html(
        verdict.headline(table, candidates, baselines, groups),
        " ".join([verdict.method_text(len(suite.eval_seeds), len(suite.entries)), board.attrs.get("timing", "")]),
        verdict.tally(table, candidates, baselines, groups),
        shown,
        verdict.provenance_text(board.attrs.get("provenance") or verdict.provenance()),
    )


TIMING_ROUNDS = 7  # interleaved timing rounds per problem; each optimizer's rate is their median
TIMING_STEPS = 64  # optimizer steps per timing (at most the run's budget)


def retime(results: pd.DataFrame, chosen: list[dict[str, Any]], optimizers: list[str]) -> pd.DataFrame:
    """The evaluation runs' ``time_s`` from timings interleaved across the optimizers: per problem,
    :data:`TIMING_ROUNDS` rounds in which each optimizer's chosen setting trains alone for
    :data:`TIMING_STEPS` steps (the order rotating), the median round's seconds per step times each
    record's step. Timed one after another instead, two identical algorithms measured up to 1.65x apart
    in one ``bench --suite quick`` on a shared 2-core machine: its speed changes for seconds at a time,
    and that hit whichever optimizer ran then. Tuning runs keep their own times."""
    from optbench.core.engine import seconds_per_step_alone
    from optbench.studies.sweeps import prepare_job

    results = results.copy()
    by_entry: dict[str, dict[str, Any]] = {}
    for choice in chosen:
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
    return results


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


def write_outputs(
    results: pd.DataFrame,
    board: pd.DataFrame,
    suite: Suite,
    candidates: list[str],
    baselines: list[str],
    folder: Path,
    with_report: bool = True,
) -> None:
    from optbench.reports.report import report
    from optbench.results import files
    from optbench.results.io import save_results

    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "leaderboard.md", to_markdown(board, suite, candidates, baselines))  # atomic: 74 if full
    files.atomic_write(folder / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
    comparisons = board.attrs["comparisons"]  # one row per comparison
    files.atomic_write(folder / "comparisons.csv", lambda tmp: comparisons.to_csv(tmp, index=False))
    save_results(results.drop(columns="suite_problem"), folder / "results.parquet")
    if with_report:  # the page names and judges the problems as the leaderboard does
        problems = [(entry, board.attrs["targets"][entry.label]) for entry in suite.entries]
        from optbench.reports.styles import distinct

        preface = _verdict_section(board, suite, candidates, baselines)
        with distinct(results["optimizer"].astype(str).unique()):  # the colours report() gives the same runs
            figure = paired_figure(board, suite, candidates, baselines)
            report([folder / "results.parquet"], folder / "report", problems=problems, preface=preface, extra=[figure])
