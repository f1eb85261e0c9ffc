"""The language model on 2 cores (issue "Where optimizers are compared today").

Targets: 10 ``lm`` seeds stacked at least 2.5x faster than the same 10 runs one by one, and a single
run's per-step cost within 1.4x of a hand-written loop over the same model (``GPT``, the module the
problem's batched forward is tested against). Both sides of each ratio are measured here, in this
job, interleaved round by round (``test_speed.interleaved``); a gate that fails is measured once more.

The runs: ``lm`` at its defaults (1,024 sequences of 16 tokens, one block of width 32), minibatches
of 8 sequences, 2 epochs (256 steps), torch-adamw, on the fixed set of sequences (``regime=fixed``):
what the engine costs over a hand loop. lm's default, fresh data, adds drawing each step's batch
(about 0.8 ms a run-step of 8 sequences on 2 loaded cores), which a hand loop on fresh data pays
too (issue 32). Small batches are where stacking pays on a CPU: one run's step is some 200 small
kernels, paid once for the whole stack; at full batch (1,024 sequences a step) each kernel is large
already and stacking gains nothing (benchmarks/README.md).
"""

from __future__ import annotations

import time

import pandas as pd
import torch
import torch.nn.functional as F
from test_speed import gated, interleaved

from optbench.core.runner import execute, prepare
from optbench.core.threads import intra_op, seconds_per_step
from optbench.problems.lm import GPT, LanguageModel

FIXED = {"regime": "fixed"}  # the sequences drawn once: the engine against a hand loop, drawing aside

SEEDS = 10
BATCH = 8
EPOCHS = 2


def specs() -> list:
    return [
        prepare("lm", "torch-adamw", lr=3e-3, seed=s, epochs=EPOCHS, batch_size=BATCH, problem_options=FIXED)
        for s in range(SEEDS)
    ]


def test_ten_lm_seeds_stacked_are_2_5x_faster_than_one_by_one(benchmark, monkeypatch):
    # Both sides on both cores (--threads 2). The default policy counts a group's parameters and data,
    # and lm's data are token ids: it gives this stack one thread, where two make it 1.5x faster
    # (a run alone gains nothing from a second thread). benchmarks/README.md has both.
    monkeypatch.setenv("OPTBENCH_THREADS", "2")
    runs = specs()
    stacked, alone = execute(runs), execute(runs, stack=False)  # warm, and the same numbers
    assert set(stacked["batch_runs"]) == {SEEDS} and set(alone["batch_runs"]) == {1}
    columns = ["time_s", "batch_runs", "threads"]
    pd.testing.assert_frame_equal(stacked.drop(columns=columns), alone.drop(columns=columns), check_exact=True)

    result = gated(lambda: interleaved(lambda: execute(runs), lambda: execute(runs, stack=False), rounds=3), 1 / 2.5)
    speedup = 1 / result["ratio"]  # the median over rounds of one-by-one time over stacked time
    benchmark.extra_info.update(result, speedup=speedup, seeds=SEEDS, steps=EPOCHS * 1024 // BATCH)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the timings are in extra_info
    print(
        f"\n{SEEDS} lm seeds, {EPOCHS * 1024 // BATCH} steps each: stacked {result['best_a_s']:.2f} s, "
        f"one by one {result['best_b_s']:.2f} s: {speedup:.2f}x"
    )
    assert speedup >= 2.5  # measured 2.96x-3.4x: a gate at 3 failed at random (issue 31); 15% under the low end


def hand_loop(steps: int) -> list[float]:
    """One run by hand: the GPT module, torch's AdamW, a shuffled minibatch a step, and nothing else."""
    problem = LanguageModel(seed=0, **FIXED)
    model = GPT(8, 16, 1, 2, 32)
    model.load_state_dict({k: v.detach() for k, v in problem.params.items()})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    text = problem.data["x"]
    order = torch.randperm(len(text), generator=torch.Generator().manual_seed(0)).split(BATCH)
    times = []
    for step in range(steps):
        start = time.perf_counter()
        batch = text[order[step % len(order)]]
        opt.zero_grad()
        logits = model(batch[:, :-1])
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times


def test_one_lm_run_costs_at_most_1_4x_a_hand_written_loop(benchmark):
    steps = EPOCHS * 1024 // BATCH
    spec = prepare("lm", "torch-adamw", lr=3e-3, seed=0, epochs=EPOCHS, batch_size=BATCH, problem_options=FIXED)

    def ours() -> float:
        table = execute([spec])
        return float(table["time_s"].iloc[-1]) / int(table["step"].iloc[-1])  # optimizer steps, records excluded

    def theirs() -> float:
        with intra_op(1):  # what the engine's policy gives a run this size (its `threads` column)
            return seconds_per_step(hand_loop(steps))

    def measure() -> dict[str, float]:
        pairs = []
        for i in range(5):  # ours first, then theirs first: neither side always goes first
            if i % 2 == 0:
                a = ours()
                pairs.append((a, theirs()))
            else:
                b = theirs()
                pairs.append((ours(), b))
        ratios = sorted(a / b for a, b in pairs)
        return {
            "ratio": ratios[len(ratios) // 2],
            "ours_s": min(a for a, _ in pairs),
            "hand_s": min(b for _, b in pairs),
        }

    result = gated(measure, 1.4)
    benchmark.extra_info.update(result)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(
        f"\none lm run, per step: optbench {result['ours_s'] * 1e3:.2f} ms, hand loop {result['hand_s'] * 1e3:.2f} ms: "
        f"{result['ratio']:.2f}x"
    )
    assert result["ratio"] <= 1.4  # measured 1.18: a gate at 1.3 cleared it by 10%, under the 15% margin
