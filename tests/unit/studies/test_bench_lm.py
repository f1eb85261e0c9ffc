"""`bench --optimizer torch-muon+torch-adamw` over a scale ladder of `lm`, the way a user runs it:
the suite's own baselines, a leaderboard per width, every output saying the same thing, and the
advantage-against-size figure on the page."""

import pandas as pd
import pytest
from support import invoke

from optbench.reports.scaling import ladders
from optbench.studies.suite import load_suite

LADDER = """
description = "a small lm ladder"
lr = "1e-3:1e-1:3"
tune_seeds = "0"
eval_seeds = "100-107"
baselines = ["torch-adamw", "torch-sgd-momentum"]
search = "halton"
trials = 2
studies = 1              # the hybrid's plumbing is what this test reads: one study's two trials, unrefined
refine = false
speedup = false
extend_edges = 0
{problems}
"""
PROBLEM = """
[[problems]]
problem = "lm"
epochs = 2
batch_size = 16
target = "baseline"
select = "validation"
options = {{ n_train = 32, n_val = 16, n_embd = {width} }}
"""


def test_a_hybrid_benches_against_the_suites_baselines_at_each_width(tmp_path):
    suite = tmp_path / "ladder.toml"
    suite.write_text(LADDER.format(problems="".join(PROBLEM.format(width=w) for w in (8, 16))))
    out = tmp_path / "bench"
    hybrid = ["--optimizer", "torch-muon + torch-adamw"]  # spaced, as someone may type it
    result = invoke("bench", *hybrid, "--suite", suite, "--out", out, "--progress")
    assert result.exit_code == 0, result.output
    assert "suite 'ladder' (2 problems): a small lm ladder" in result.output  # what it is, before it runs
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["optimizer"]) == {"torch-muon+torch-adamw", "torch-adamw", "torch-sgd-momentum"}
    widths = sorted(board["problem"].unique())
    assert widths == ["lm n_train=32 n_val=16 n_embd=16", "lm n_train=32 n_val=16 n_embd=8"]
    hybrid = board[board["optimizer"] == "torch-muon+torch-adamw"]
    assert hybrid["vs torch-adamw"].notna().all() and hybrid["vs torch-sgd-momentum"].notna().all()
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert len(comparisons) == 4 and set(comparisons["baseline"]) == {"torch-adamw", "torch-sgd-momentum"}
    for row in comparisons.to_dict("records"):  # the CSV and the leaderboard give the same verdict
        on = board[(board["optimizer"] == "torch-muon+torch-adamw") & (board["problem"] == row["problem"])]
        assert on[f"vs {row['baseline']}"].iloc[0] == row["verdict"]
    text = (out / "leaderboard.md").read_text()
    assert "torch-muon+torch-adamw vs torch-adamw, torch-sgd-momentum" in text
    results = pd.read_parquet(out / "results.parquet")
    tuned = results[results["optimizer"] == "torch-muon+torch-adamw"]
    assert tuned["torch-adamw.lr"].nunique() == 2  # both parts' spaces searched: its own lr per trial
    assert tuned["torch-muon.momentum"].nunique() == 2
    assert "torch-muon.momentum=None" not in text and "torch-adamw.betas.0=0." in text  # the chosen values
    page = (out / "report" / "index.html").read_text()
    assert 'id="advantage_vs_size"' in page and "Advantage against model size" in page


def test_the_shipped_lm_suite_is_a_ladder_of_sizes_and_of_data_budgets():
    suite = load_suite("lm")
    assert suite.baselines == ("torch-adamw", "torch-sgd-momentum")
    found = ladders(suite.entries)
    assert {option for option, _ in found.values()} == {"n_embd"}
    ((_, sizes),) = found.values()
    assert [e.options["n_embd"] for e in sizes] == [16, 32, 64]
    markov = [e for e in suite.entries if e.options["corpus"] == "markov" and e.options["n_embd"] == 32]
    assert sorted(e.options["n_train"] * e.epochs for e in markov) == [1024, 2048, 4096]  # sequences trained on
    assert {e.options["corpus"] for e in suite.entries} == {"markov", "pydoc"}
    assert all(e.batch_size is None and "regime" not in e.options for e in suite.entries)  # lm's own: 32, fresh


@pytest.mark.parametrize(
    ("text", "message"),
    [('baselines = "torch-adamw"', "is not a list of names"), ('baselines = ["torch-adamx"]', "did you mean")],
)
def test_bad_suite_baselines_are_one_line(tmp_path, text, message):
    suite = tmp_path / "s.toml"
    suite.write_text(
        LADDER.replace('baselines = ["torch-adamw", "torch-sgd-momentum"]', text).format(
            problems=PROBLEM.format(width=8)
        )
    )
    result = invoke("bench", "--optimizer", "torch-adam", "--suite", suite, "--out", tmp_path / "o")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
