"""`optbench bench`: the statistics by hand, a planted better optimizer, an exact copy of a baseline."""

from __future__ import annotations

import itertools
import math
import re
import shlex
import threading

import numpy as np
import pandas as pd
import pytest
from support import PLANTED, invoke

from optbench.errors import InvalidValueError
from optbench.results.stats import BOOTSTRAP_DRAWS, holm, median_bands, median_interval, paired_p_value, verdict
from optbench.studies.bench import Entry, Suite, leaderboard, load_suite, to_markdown

TINY_SUITE = """
description = "two problems, where gd's best lr lies beyond the grid"
search = "lr"  # the lr grid alone (the protocol before spaces and studies): what this test measures
schedule = "constant"
lr = "0.01,0.02,0.04"
extend_edges = 0  # the grid as given: searched past, boosted-gd's 4x is found out (test_fair_protocol.py)
tune_seeds = "0"
eval_seeds = "10-17"

[[problems]]
problem = "linreg"
epochs = 10
target = 0.5

[[problems]]
problem = "classification"
epochs = 10
target = 0.9
options = { shape = "blobs", n = 120 }
"""

SECONDS = ["seconds_to_target", "step_ms", "step_ms_low", "step_ms_high"]  # measured: they vary


def test_a_planted_better_optimizer_is_better_and_an_exact_copy_is_not(tmp_path):
    plugin, suite = tmp_path / "planted.py", tmp_path / "tiny.toml"
    plugin.write_text(PLANTED)
    suite.write_text(TINY_SUITE)
    out = tmp_path / "bench"
    args = ["bench", "--plugin", str(plugin), "--optimizer", "boosted-gd,gd-twin", "--baselines", "gd,torch-adam"]
    result = invoke(*args, "--suite", suite, "--out", out)
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")
    boosted = board[board["optimizer"] == "boosted-gd"].set_index("problem")
    copy = board[board["optimizer"] == "gd-twin"].set_index("problem")
    assert set(boosted["vs gd"]) == {"better"}  # on both problems, all 8 seeds: p = 2/2^8, x2 by Holm
    assert boosted["p vs gd"].tolist() == pytest.approx([2 * 2 / 2**8] * 2)
    assert set(copy["vs gd"]) == {"equivalent"}
    assert copy["p vs gd"].tolist() == [1.0, 1.0]
    gd = board[board["optimizer"] == "gd"].set_index("problem")
    pd.testing.assert_series_equal(copy["final_median"], gd["final_median"], check_names=False)
    assert gd["lr_on_edge"].all() and gd["lr"].eq(0.04).all()  # said: gd would want a larger lr
    text = (out / "leaderboard.md").read_text()
    assert "| **boosted-gd** | 0.04 (grid edge) |" in text
    assert re.search(
        r"better on 8/8 seeds, p=0\.016, margin x[\d.]+ \([^)]*\), speedup > 4x \[> 4x, > 4x\] in gradient "
        r"evaluations, step time x[\d.e+-]+(, within the timing rounds' spread: no difference)?, "
        r"rests on an lr at the edge of its search: boosted-gd, gd\)",
        text,
    )
    assert "| boosted-gd | gd | 2 | 0 | 0 |" in text and "| gd-twin | gd | 0 | 2 | 0 |" in text
    assert (out / "report" / "index.html").is_file() and (out / "results.parquet").is_file()
    page = (out / "report" / "index.html").read_text()
    assert page.index('id="loss_vs_step"') < page.index('id="paired_ratios"') < page.index('id="loss_vs_time"')
    # the same command again: the same leaderboard (seconds to target aside: they are measured)
    again = invoke(*args, "--suite", suite, "--out", tmp_path / "again", "--no-report")
    assert again.exit_code == 0, again.output
    second = pd.read_csv(tmp_path / "again" / "leaderboard.csv")
    pd.testing.assert_frame_equal(board.drop(columns=SECONDS), second.drop(columns=SECONDS))


CTRL_C = """
import os, torch, optbench

STEPS = {}  # steps counted per value of OPTBENCH_TEST_CTRL_C (one process runs several commands)

@optbench.register_optimizer("sgd-ctrl-c", elementwise=False, override=True)
class CtrlC(torch.optim.SGD):
    '''torch's SGD that presses Ctrl-C at the OPTBENCH_TEST_CTRL_C-th step of the process, if set.'''

    def step(self, closure=None):
        at = os.environ.get("OPTBENCH_TEST_CTRL_C")
        STEPS[at] = STEPS.get(at, 0) + 1
        if at is not None and STEPS[at] == int(at):
            raise KeyboardInterrupt
        return super().step(closure)
"""


def test_ctrl_c_in_a_bench_prints_the_command_that_resumes_it_to_the_same_leaderboard(tmp_path, monkeypatch):
    plugin, suite = tmp_path / "ctrl_c.py", tmp_path / "tiny.toml"
    plugin.write_text(CTRL_C)
    suite.write_text(TINY_SUITE)
    args = ["bench", "--plugin", plugin, "--optimizer", "sgd-ctrl-c", "--baselines", "gd", "--suite", suite]
    whole = invoke(*args, "--out", tmp_path / "whole", "--no-report")
    assert whole.exit_code == 0, whole.output
    monkeypatch.setenv("OPTBENCH_TEST_CTRL_C", "135")  # linreg's 3 + 8 runs of 10 steps done: in classification's
    cut = invoke(*args, "--out", tmp_path / "cut", "--no-report")
    assert cut.exit_code == 130 and "Traceback" not in cut.output, cut.output
    lines = cut.stderr.splitlines()
    runs = tmp_path / "cut" / "runs"
    merged = {k for p in runs.glob("*.parquet") if p.is_file() for k in pd.read_parquet(p)["run_key"]}
    parts = list(runs.glob("*.parquet.parts/part-*.parquet"))
    waiting = {k for p in parts for k in pd.read_parquet(p)["run_key"]} - merged
    assert f"{len(merged)} finished runs of 2 problems are merged into the stores in {runs}" in lines[0]
    assert (f" and {len(waiting)} more wait in {len(parts)} part file(s)" in lines[0]) == bool(waiting), lines[0]
    assert lines[0].endswith("to go on, run the same command again (stored runs skipped):")
    resume = shlex.split(lines[1].strip())
    assert resume[:2] == ["optbench", "bench"] and "--plugin" in resume
    monkeypatch.delenv("OPTBENCH_TEST_CTRL_C")
    resumed = invoke(*resume[1:], "--no-report")
    assert resumed.exit_code == 0, resumed.output
    first, second = (pd.read_csv(tmp_path / name / "leaderboard.csv") for name in ("whole", "cut"))
    pd.testing.assert_frame_equal(first.drop(columns=SECONDS), second.drop(columns=SECONDS))


def test_the_paired_test_and_holm_by_hand():
    below = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    above = [v + 1 for v in below]
    assert paired_p_value(below, above) == pytest.approx(2 / 2**8)  # every sign the same: 2 of 256 sign patterns
    # one pair the other way with the smallest |difference|: W+ = 1; P(W+ <= 1) = 2/256; two-sided 4/256
    mixed = [b + (0.5 if i == 0 else -1.0 - i) for i, b in enumerate(below)]
    assert paired_p_value(mixed, below) == pytest.approx(4 / 2**8)
    assert paired_p_value(below, below) == 1.0
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert verdict(below, above, 0.0078, lower_is_better=True).word == "better"
    assert verdict(above, below, 0.0078, lower_is_better=True).word == "worse"
    assert verdict(above, below, 0.06, lower_is_better=True).word == "no significant difference"
    # a diverged run (inf) counts as the worst outcome, not as a missing one
    assert verdict([math.inf, *below[1:]], above, 0.01, lower_is_better=True).word == "better"


def test_the_bootstrap_interval_matches_the_exact_bootstrap():
    """For 4 values the bootstrap distribution of the median can be enumerated: 4^4 resamples."""
    values = [1.0, 2.0, 4.0, 8.0]
    medians = sorted(float(np.median(s)) for s in itertools.product(values, repeat=4))
    exact_low, exact_high = medians[int(0.025 * len(medians))], medians[int(0.975 * len(medians)) - 1]
    median, low, high = median_interval(values)
    assert median == 3.0
    assert (low, high) == (exact_low, exact_high)
    assert median_interval([5.0] * 6) == (5.0, 5.0, 5.0)


def test_figure_bands_are_each_points_bootstrap_of_the_median():
    """The report's bands: per x point, the same interval as the leaderboard's for those values (the
    same resamples of whole runs at every x), and a point that fewer runs reached uses only those."""
    rng = np.random.default_rng(3)
    values = rng.lognormal(size=(40, 7))
    median, low, high = median_bands(values, draws=BOOTSTRAP_DRAWS)
    for row, m, lo, hi in zip(values, median, low, high, strict=True):
        assert (m, lo, hi) == median_interval(row)
    ragged = np.array([[1.0, 2.0, 4.0, 8.0], [1.0, 2.0, 4.0, np.nan], [np.nan] * 4])
    median, low, high = median_bands(ragged, draws=BOOTSTRAP_DRAWS)
    assert median[0] == 3.0 and (low[0], high[0]) == median_interval([1.0, 2.0, 4.0, 8.0])[1:]
    assert median[1] == 2.0 and 1.0 <= low[1] <= 2.0 <= high[1] <= 4.0
    assert np.isnan([median[2], low[2], high[2]]).all()


def fixed_table() -> tuple[pd.DataFrame, Suite]:
    """Eval runs of two optimizers on one problem, 6 seeds, two recorded points each: final objectives by hand."""
    finals = {"new": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "gd": [1.1, 1.2, 1.3, 1.4, 1.5, 1.6]}
    rows = []
    for optimizer, values in finals.items():
        for seed, final in enumerate(values):
            for step, loss in ((0, 10.0), (5, final)):
                rows.append(
                    {
                        "problem": "linreg",
                        "optimizer": optimizer,
                        "seed": seed,
                        "step": step,
                        "loss": loss,
                        "optimum": 0.0,
                        "time_s": step * 0.01,
                        "status": "ok",
                        "phase": "eval",
                        "suite_problem": "linreg",
                        "problem_dtype": "float64",
                    }
                )
    suite = Suite(
        "fixed", "", [0.1, 1.0], [0], list(range(6)), [Entry("linreg", 5, target=0.1)], search="lr", studies=1
    )
    return pd.DataFrame(rows), suite


def test_the_leaderboard_of_a_fixed_table_by_hand():
    results, suite = fixed_table()
    chosen = [  # lr 0.1, the grid's lower end: tune's mark_edges says so in "edges"
        {"entry": suite.entries[0], "job": {"optimizer": o, "hyperparameters": {"lr": 0.1}}, "edges": {"lr": 0.1}}
        for o in ("new", "gd")
    ]
    board = leaderboard(results, suite, ["new"], ["gd"], chosen).set_index("optimizer")
    assert board.loc["new", "final_median"] == pytest.approx(0.35)
    assert board.loc["gd", "final_median"] == pytest.approx(1.35)
    low, high = board.loc["new", ["final_low", "final_high"]]
    assert 0.1 <= low <= 0.35 <= high <= 0.6
    assert board.loc["new", "vs gd"] == "better"
    assert board.loc["new", "p vs gd"] == pytest.approx(2 / 2**6)  # all 6 lower: 2 of 64 sign patterns
    assert board.loc["new", "steps_to_target"] == 5  # 10 -> <= 1.0 at the last point
    assert math.isinf(board.loc["gd", "steps_to_target"])  # 1.1 .. 1.6 never reach 1.0
    assert board.loc["new", "lr_on_edge"]  # 0.1 is the grid's lower end
    assert "| **new** | 0.1 (grid edge) | 0.35 [" in to_markdown(board.reset_index(), suite, ["new"], ["gd"])


def test_bad_suites_are_one_line_errors(tmp_path):
    with pytest.raises(InvalidValueError, match="--suite 'quik' is not a suite \\(did you mean 'quick'\\?\\)"):
        load_suite("quik")
    bad = tmp_path / "bad.toml"
    bad.write_text('lr = "0.1"\n[[problems]]\nproblem = "linreg"\n')
    with pytest.raises(InvalidValueError, match="problems\\[0\\] needs a problem and epochs"):
        load_suite(str(bad))
    assert [e.problem for e in load_suite("quick").entries]


PROBLEM = '[[problems]]\nproblem = "linreg"\nepochs = 2\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [  # each was an internal error (exit 70) until the fuzz found it
        ("lr = []\n" + PROBLEM, "suite 'bad': lr is empty; expected at least one value, e.g. '1e-4:1:9'"),
        ("tune_seeds = []\n" + PROBLEM, "suite 'bad': tune_seeds is empty"),
        ('lr = ["x"]\n' + PROBLEM, "suite 'bad': lr 'x' is not a number"),
        ("eval_seeds = [-1]\n" + PROBLEM, "suite 'bad': eval_seeds -1 is out of range"),
        ("problems = 0\n", "suite 'bad': problems must be [[problems]] tables, not 0"),
        (PROBLEM + 'target = "x"\n', "suite 'bad': problems[0]: target 'x' is not a number"),
        (PROBLEM + "options = 3\n", "suite 'bad': problems[0]: options must be a table such as { n = 200 }, not 3"),
        (PROBLEM + "target = 0.1\ntarget_objective = 1e-3\n", "problems[0]: give target or target_objective, not both"),
        (PROBLEM + "target_objective = -1\n", "problems[0]: target_objective -1 is out of range"),
    ],
)
def test_suite_values_of_the_wrong_kind_are_one_line_errors(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(InvalidValueError, match=re.escape(message.replace("'bad'", repr(str(bad))))):
        load_suite(str(bad))


TARGETS_SUITE = """
description = "an absolute target where f* is known, the best baseline's end where it is not"
search = "lr"  # the lr grid alone (the protocol before spaces and studies): what this test measures
lr = "0.03,0.3"
tune_seeds = "0"
eval_seeds = "10-17"
schedule = "cosine"
warmup_steps = 2

[[problems]]
problem = "linreg"
epochs = 12
target_objective = 1e-2

[[problems]]
problem = "classification"
epochs = 12
target = "baseline"
options = { shape = "blobs", n = 120 }
"""


def test_targets_absolute_where_f_star_is_known_and_the_best_baselines_end_where_not(tmp_path):
    """The leaderboard, its per-seed outcomes, the page and its summary all measure time to the same
    target: 1e-2 for every linreg seed, and on classification the median final loss of the better of
    the two baselines (computed here from the evaluation runs)."""
    from optbench.results.outcomes import Target, final, reach

    (tmp_path / "s.toml").write_text(TARGETS_SUITE)
    out = tmp_path / "b"
    args = ["bench", "--optimizer", "torch-adam", "--baselines", "gd,torch-rmsprop", "--suite", tmp_path / "s.toml"]
    result = invoke(*args, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    runs = pd.read_parquet(out / "results.parquet")
    evaluated = runs[(runs["phase"] == "eval") & (runs["problem"] == "classification")]
    medians = {
        name: float(np.median([final(r.sort_values("step")) for _, r in part.groupby("seed")]))
        for name, part in evaluated.groupby("optimizer")
    }
    best = min(["gd", "torch-rmsprop"], key=lambda b: medians[b])
    goal = Target(medians[best], relative=False)
    board = pd.read_csv(out / "leaderboard.csv").set_index(["problem", "optimizer"])
    label = "classification shape=blobs n=120"
    text = f"objective <= {medians[best]:.3g} (the best baseline's median final, {best})"
    assert set(board.loc[label, "target"]) == {text}
    assert set(board.loc["linreg", "target"]) == {"objective <= 0.01"}
    for name, part in evaluated.groupby("optimizer"):  # steps to that target, by hand
        steps = [reach(r.sort_values("step"), goal).steps for _, r in part.groupby("seed")]
        assert board.loc[(label, name), "steps_to_target"] == pytest.approx(float(np.median(steps)))
        assert board.loc[(label, name), "reached"] == sum(map(math.isfinite, steps))
    assert board.loc[(label, best), "reached"] >= 4  # the best baseline reaches its own median on half its seeds
    summary = pd.read_csv(out / "report" / "summary.csv")
    assert set(summary.loc[summary["problem"] == label, "target"]) == {text}  # the page measures the same
    assert set(runs["schedule"]) == {"cosine"} and set(runs["warmup_steps"]) == {2}  # results record the schedule
    md = (out / "leaderboard.md").read_text()
    assert "Schedule: cosine after 2 warm-up steps, 12 epochs; verdicts at the end of training." in md
    assert all(e.settings["schedule"] == "cosine" for e in load_suite("quick").entries)  # the built-ins decay
    page = (out / "report" / "index.html").read_text()
    assert f'<p class="target">target: {text.replace("<", "&lt;").replace(chr(39), "&#x27;")}</p>' in page


def test_no_default_baseline_pair_is_bit_identical_on_any_quick_problem():
    """gd and full-batch torch-sgd were two default baselines that ran the same algorithm; the defaults
    now are three distinct ones, and the lesson's gd is no baseline unless asked."""
    import optbench
    from optbench.results.outcomes import coincide
    from optbench.studies.bench import DEFAULT_BASELINES

    assert "gd" not in DEFAULT_BASELINES and "torch-sgd-momentum" in DEFAULT_BASELINES
    for entry in load_suite("quick").entries:
        runs = {
            name: optbench.run(entry.problem, name, lr=0.01, epochs=5, seed=0, problem_options=entry.options)
            for name in DEFAULT_BASELINES
        }
        for a, b in itertools.combinations(DEFAULT_BASELINES, 2):
            assert not coincide(runs[a], runs[b], rtol=0), (entry.label, a, b)
    gd, sgd = (optbench.run("linreg", name, lr=0.01, epochs=5, seed=0) for name in ("gd", "torch-sgd"))
    assert coincide(gd, sgd, rtol=0)  # what the check would catch: the old defaults' twins


def test_the_momentum_baseline_is_torch_sgd_with_nesterov_momentum():
    import torch

    import optbench

    ours = optbench.run("quadratic", "torch-sgd-momentum", lr=0.05, epochs=20, seed=3)
    plain = optbench.run("quadratic", "torch-sgd", lr=0.05, epochs=20, seed=3, momentum=0.9, nesterov=True)
    np.testing.assert_array_equal(ours["loss"].to_numpy(), plain["loss"].to_numpy())
    assert set(ours["momentum"]) == {0.9} and set(ours["nesterov"]) == {True}
    assert isinstance(optbench.get_optimizer("torch-sgd-momentum").target, type(torch.optim.SGD))


def test_a_long_bench_says_what_is_done_and_about_how_long_the_rest_takes(monkeypatch, capsys):
    from optbench.studies import bench as bench_module

    clock = iter([100.0, 110.0, 150.0])  # the start, then 10 s for 10 steps, then 40 s more for 40
    monkeypatch.setattr(bench_module.time, "perf_counter", lambda: next(clock))
    eta = bench_module.Eta([10, 40, 20], ["linreg", "rosenbrock", "logreg"], shown=True)
    eta.done("linreg")
    eta.done("logreg")  # problems run at once finish in any order: the rest is what has not finished
    eta.done("rosenbrock")  # the last: nothing left to say
    lines = capsys.readouterr().err.splitlines()
    assert [bench_module.steps_of(e) for e in load_suite("standard").entries][-2:] == [450, 450]  # 10 x 45 batches
    assert lines == [
        "bench: 1/3 problems done (linreg) in 10 s; about 60 s to go (rosenbrock, logreg)",  # 1 s a step x 60
        "bench: 2/3 problems done (logreg) in 50 s; about 67 s to go (rosenbrock)",  # 50 s for 30 steps: x 40
    ]


EPS_SUITE = """
lr = "0.05,0.1"
tune_seeds = "0"
eval_seeds = "10-15"
trials = 3
studies = 1
max_trials = 3
refine = false
speedup = false
[[problems]]
problem = "linreg"
epochs = 2
[spaces.torch-nadam]
eps = "-1:-0.5"
"""


def test_an_error_is_never_shown_as_divergence(tmp_path):
    """Every setting of torch-nadam's space is one torch rejects (eps < 0): its runs fail, the bench exits 1
    as sweep does, and every output names the error where the verdict would be, never 'diverged'."""
    suite = tmp_path / "eps.toml"
    suite.write_text(EPS_SUITE)
    result = invoke(
        "bench", "--optimizer", "torch-nadam", "--baselines", "torch-adam", "--suite", suite, "--out", tmp_path / "b"
    )
    assert result.exit_code == 1, result.output
    assert "Invalid epsilon value" in result.stderr  # print_failures: counted by message, as sweep does
    assert "- torch-nadam vs torch-adam: error on 1 of 1 problems" in result.stdout
    nadam = [line for line in result.stdout.splitlines() if "torch-nadam" in line and line.startswith("|")]
    assert nadam and all("diverged" not in line for line in nadam), nadam
    assert "error (6 runs: optimizer 'torch-nadam' rejected its settings: Invalid epsilon value" in nadam[0]
    assert "error (6 of torch-nadam's evaluation runs failed:" in nadam[0]
    board = pd.read_csv(tmp_path / "b" / "leaderboard.csv").set_index("optimizer")
    assert board.loc["torch-nadam", "errors"] == 6 and board.loc["torch-nadam", "diverged"] == 0
    assert board.loc["torch-adam", "errors"] == 0 and board.loc["torch-nadam", "vs torch-adam"] == "error"
    comparisons = pd.read_csv(tmp_path / "b" / "comparisons.csv")
    assert comparisons["verdict"].tolist() == ["error"] and comparisons["diverged"].tolist() == [0]
    page = (tmp_path / "b" / "report" / "index.html").read_text()
    assert "error (6 of torch-nadam&#x27;s evaluation runs failed" in page


SEARCH_SUITE = """
description = "two problems searched in two studies: run at once or one after the other, the same answer"
search = "halton"
trials = 4
max_trials = 6
studies = 2
tune_seeds = "0-1"
eval_seeds = "10-17"
schedule = "cosine"
warmup_steps = 2

[[problems]]
problem = "linreg"
epochs = 20
target_objective = 1e-3

[[problems]]
problem = "quadratic"
epochs = 30
target_objective = 1e-3
options = { dim = 5, condition = 30.0 }

[[problems]]
problem = "rosenbrock"
epochs = 40
target_objective = 1e-2
"""


def test_problems_run_at_once_give_the_tables_of_one_after_the_other(tmp_path, monkeypatch):
    """With two workers a bench's problems run at once, a thread each, sharing the worker processes;
    every run, choice, verdict and speedup is what one problem after another gives."""
    from optbench.studies import bench as bench_module

    path = tmp_path / "search.toml"
    path.write_text(SEARCH_SUITE)
    suite = load_suite(str(path))
    threads: dict[str, set[str]] = {}
    original = bench_module._problem_runs

    def spied(entry, **kwargs):
        threads.setdefault(str(kwargs["sweep_options"].get("jobs")), set()).add(threading.current_thread().name)
        return original(entry, **kwargs)

    monkeypatch.setattr(bench_module, "_problem_runs", spied)
    tables = {}
    for jobs in (1, 2):
        tables[jobs] = bench_module.bench(
            ["torch-nadam"], ["torch-adam", "torch-sgd-momentum"], suite, out=tmp_path / f"jobs{jobs}", jobs=jobs
        )
    assert threads["1"] == {threading.main_thread().name}
    assert len(threads["2"]) == 3 and threading.main_thread().name not in threads["2"]  # a thread a problem
    keys = ["suite_problem", "run_key", "step"]
    measured = ["time_s", "threads"]
    one, two = (tables[j][0].drop(columns=measured).sort_values(keys).reset_index(drop=True) for j in (1, 2))
    assert len(one) > 1000 and set(one["phase"]) == {"tune", "eval", "budget"}
    pd.testing.assert_frame_equal(one, two)
    boards = [tables[j][1].drop(columns=SECONDS) for j in (1, 2)]
    pd.testing.assert_frame_equal(boards[0], boards[1])
    timed = [*SECONDS, "step_time_ratio", "step_time_differs"]  # each bench times its own runs
    for name in ("comparisons.csv", "leaderboard.csv"):
        a, b = (pd.read_csv(tmp_path / f"jobs{j}" / name) for j in (1, 2))
        pd.testing.assert_frame_equal(a.drop(columns=timed, errors="ignore"), b.drop(columns=timed, errors="ignore"))
