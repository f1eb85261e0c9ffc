"""Speedups in tokens for language models: the baseline's fitted loss-vs-data curve, by hand, and an
exact copy of the baseline in a real ``lm`` bench reading 1x in tokens."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support import invoke

from optbench.registry import OPTIMIZERS
from optbench.studies.speedup import curve, speedups, text

TOKENS_PER_EPOCH = 1000.0


def law(tokens: float) -> float:
    return 3.0 * tokens**-0.5 + 1.0  # L(D) = a D^-b + c, c = 1: the floor a plain log-log reading ignores


def _table(candidate_final) -> pd.DataFrame:
    """Problem "p" (no f*): the baseline at 1, 2, 4, 8 and 16 epochs on the curve above, the candidate's
    eval runs at 4 epochs ending at ``candidate_final``; 1,000 tokens an epoch, one step an epoch."""
    rows = []

    def add(optimizer, seed, epochs, final, phase):
        for step in range(epochs + 1):
            loss = 10.0 if step == 0 else final
            rows.append((optimizer, seed, epochs, step, float(step), step, step * TOKENS_PER_EPOCH, loss, phase))

    for seed in range(6):
        add("new", seed, 4, candidate_final, "eval")
        for epochs in (1, 2, 4, 8, 16):
            add("base", seed, epochs, law(epochs * TOKENS_PER_EPOCH), "eval" if epochs == 4 else "budget")
    columns = ["optimizer", "seed", "epochs", "step", "epoch", "grad_evals", "tokens", "loss", "phase"]
    table = pd.DataFrame(rows, columns=columns)
    return table.assign(suite_problem="p", optimum=math.nan, problem_dtype="float64", status="ok")


def test_the_speedup_in_tokens_is_read_from_the_fitted_curve():
    """The candidate ends where the baseline's curve is at 3x its tokens: 3x in tokens, from the
    fitted floor c = 1; plain log-log interpolation of the loss (what evaluations use) reads 3.09x."""
    row = speedups(_table(law(3 * 4 * TOKENS_PER_EPOCH)), "p", ["new"], ["base"]).iloc[0].to_dict()
    assert row["speedup_tokens"] == pytest.approx(3.0, rel=2e-3)
    assert abs(row["speedup_evals"] / 3.0 - 1) > 0.02  # 3.09x
    assert row["curve_tokens"] == "fitted L(D) = 3 D^-0.5 + 1 over its ladder (D in tokens)"
    assert text(row).startswith("speedup 3x [3x, 3x] in tokens (base: fitted L(D) = 3 D^-0.5 + 1")
    assert text(row, "evals").endswith("in gradient evaluations")


def test_an_exact_copy_reads_1x_in_tokens_by_hand():
    row = speedups(_table(law(4 * TOKENS_PER_EPOCH)), "p", ["new"], ["base"]).iloc[0].to_dict()
    assert (row["speedup_tokens"], row["speedup_tokens_low"], row["speedup_tokens_high"]) == (1.0, 1.0, 1.0)


def test_the_curve_needs_a_ladder_long_enough_and_falling():
    budgets = [1.0, 2.0, 4.0, 8.0]
    assert curve(budgets[:3], [law(d) for d in budgets[:3]], known=False) is None  # 3 points, 3 parameters
    assert curve(budgets, [1.0, 1.1, 1.2, 1.3], known=False) is None  # rising: no curve
    a, b, c = curve(budgets, [2 * d**-1.0 for d in budgets], known=True)  # f* known: suboptimality, c = 0
    assert (round(a, 6), round(b, 6), c) == (2.0, 1.0, 0.0)


TWIN = '''
import torch
import optbench


@optbench.register_optimizer("adamw-twin", elementwise=True)
class TwinAdamW(torch.optim.AdamW):
    """torch-adamw under another name."""
'''

SUITE = """
description = "a tiny lm, fresh data"
search = "lr"
lr = "0.003,0.01"
tune_seeds = "0"
eval_seeds = "10-15"
schedule = "cosine"
warmup_steps = 2
baselines = ["torch-adamw"]

[[problems]]
problem = "lm"
epochs = 2
batch_size = 16
options = { n_train = 64, n_val = 16, n_embd = 16 }
"""


def test_an_exact_copy_of_the_baseline_reads_1x_in_tokens_in_an_lm_bench(tmp_path):
    (tmp_path / "twin.py").write_text(TWIN)
    (tmp_path / "lm.toml").write_text(SUITE)
    with OPTIMIZERS.snapshot():
        result = invoke(
            *("bench", "--plugin", tmp_path / "twin.py", "--optimizer", "adamw-twin"),
            *("--suite", tmp_path / "lm.toml", "--out", tmp_path / "out", "--no-progress", "--no-report"),
        )
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "out" / "comparisons.csv").iloc[0]
    assert row["speedup_tokens"] == 1.0 and row["speedup_tokens_low"] <= 1.0 <= row["speedup_tokens_high"]
    assert row["curve_tokens"].startswith("fitted L(D) = ")
    assert row["curve_tokens"].endswith("+ f* over its ladder (D in tokens)")
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    ladder = results[results["phase"] == "budget"]
    # 64 sequences of 16 tokens an epoch; the ladder at 1, 4 and 8 epochs beside the bench's 2
    assert sorted(ladder["tokens"].groupby(ladder["epochs"]).max().tolist()) == [1024.0, 4096.0, 8192.0]
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    headline = next(line for line in board.splitlines() if line.startswith("- adamw-twin vs torch-adamw"))
    assert "speedup 1x in tokens" in headline, headline
