"""``optbench.bench(...)``: the verdict of ``optbench bench`` in Python, with no file written unless asked."""

from __future__ import annotations

import io

import pandas as pd
from support import invoke

import optbench

SUITE = """
search = "lr"
schedule = "constant"
lr = "0.01,0.1"
extend_edges = 0
tune_seeds = "0"
eval_seeds = "10-15"
speedup = false

[[problems]]
problem = "linreg"
epochs = 5
target = 0.5
"""

SECONDS = ["seconds_to_target", "step_ms", "step_ms_low", "step_ms_high"]  # measured: they vary


def test_the_python_verdict_is_the_commands_and_writes_nothing(tmp_path, monkeypatch):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    verdict = optbench.bench("torch-adam", baselines="gd,torch-sgd", suite=suite)
    assert list(work.iterdir()) == []  # no out=: nothing written
    assert str(verdict) == verdict.markdown and verdict.markdown.startswith("#")
    assert set(verdict.results["optimizer"]) == {"torch-adam", "gd", "torch-sgd"}
    shown = verdict.comparisons[["candidate", "baseline", "problem", "verdict"]]
    assert sorted(shown["baseline"]) == ["gd", "torch-sgd"]

    out = tmp_path / "cli"
    done = invoke("bench", "--optimizer", "torch-adam", "--baselines", "gd,torch-sgd", "--suite", suite, "--out", out)
    assert done.exit_code == 0, done.output
    written = pd.read_csv(out / "comparisons.csv")
    columns = ["candidate", "baseline", "problem", "verdict", "ratio", "p_value", "better_seeds"]
    pd.testing.assert_frame_equal(
        verdict.comparisons[columns].reset_index(drop=True), written[columns], check_dtype=False
    )
    ours = pd.read_csv(io.StringIO(verdict.leaderboard.to_csv(index=False)))  # as leaderboard.csv holds it
    theirs = pd.read_csv(out / "leaderboard.csv")
    pd.testing.assert_frame_equal(ours.drop(columns=SECONDS), theirs.drop(columns=SECONDS))


def test_out_writes_what_the_command_writes(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    verdict = optbench.bench(["torch-adam"], baselines=["gd"], suite=str(suite), out=tmp_path / "b", report=False)
    written = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {"leaderboard.md", "leaderboard.csv", "comparisons.csv", "results.parquet", "runs"} <= set(written)
    assert (tmp_path / "b" / "leaderboard.md").read_text() == verdict.markdown
