"""GPU throughput of the training core, in one command: ``python benchmarks/gpu.py [--device cuda]``.

Four workloads, each run once to warm up (CUDA context, kernels, allocator) and then timed:

- linreg: 100,000 runs = 1,000 lrs x 100 seeds, gd, 100 full-batch steps (the lesson, at scale);
- classification/MLP: 10,000 runs = 10 lrs x 1,000 seeds, torch-adam, 100 full-batch steps
  (moons, 300 training points, hidden width 32);
- lm-adamw and lm-muon: 64 seeds of the lm suite's middle width (n_embd 32, the Markov source of
  order 2), 500 steps of minibatches of 64 sequences, torch-adamw, and torch-muon+torch-adamw (one
  Muon per run, over that run's own matrices). No floor: printed for the record.

Printed per workload: the phases of :func:`optbench.core.engine.run_specs` (``build``: the problems from
their seeds, on the CPU; ``train``: the stacked loop on the device, synchronised; ``calibrate``: one
run timed alone for ``time_s``; ``table``: the DataFrame), the engine part (train) against its
floor, and a check that a few runs equal the same runs trained alone. Exit 1 if a floor is missed.
Floors on one H100 (the issue "One execution core"): linreg engine part <= 0.3 s, MLP <= 1.0 s.
``--scale`` shrinks the grids (and the lm seeds) for a smoke test.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from optbench.core.engine import run_specs
from optbench.core.runner import prepare

FLOORS = {"linreg": 0.3, "classification-mlp": 1.0}


def workloads(device: str, scale: float) -> dict[str, list]:
    def grid(problem: str, optimizer: str, lrs: list[float], seeds: int, options: dict) -> list:
        specs = []
        for lr in lrs:
            base = prepare(problem, optimizer, lr=lr, epochs=100, device=device, problem_options=options)
            specs += [dataclasses.replace(base, seed=s) for s in range(seeds)]
        return specs

    def lm(optimizer: str, lr: float) -> list:
        # the fixed set: fresh data (lm's default) draws each run's batch on the CPU every step, K draws
        # a stacked step, which would measure numpy rather than the device (issue 32)
        options = {"corpus": "markov", "vocab": 8, "order": 2, "n_embd": 32, "regime": "fixed"}
        base = prepare("lm", optimizer, lr=lr, epochs=32, batch_size=64, device=device, problem_options=options)
        return [dataclasses.replace(base, seed=s) for s in range(max(2, round(64 * scale)))]  # 16 steps an epoch

    n_lr = max(2, round(1000 * scale))
    return {
        "linreg": grid("linreg", "gd", [1e-3 * 10 ** (3 * i / (n_lr - 1)) for i in range(n_lr)], 100, {}),
        "classification-mlp": grid(
            "classification",
            "torch-adam",
            [1e-3 * 10 ** (2 * i / 9) for i in range(10)],
            max(2, round(1000 * scale)),
            {"shape": "moons", "model": "mlp"},
        ),
        "lm-adamw": lm("torch-adamw", 3e-3),
        "lm-muon": lm("torch-muon+torch-adamw", 0.02),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the runs (e.g. 0.01 for a smoke test)")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}")
    missed = []
    for name, specs in workloads(args.device, args.scale).items():
        run_specs(specs[: max(2, len(specs) // 100)])  # warm-up on a slice
        timings: dict[str, float] = {}
        start = time.perf_counter()
        table = run_specs(specs, timings=timings)
        total = time.perf_counter() - start
        ok = (table.groupby(["lr", "seed"])["status"].first() == "ok").mean()
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        print(f"{name}: {len(specs):,} runs x {int(table['step'].max())} steps, {len(table):,} rows, {ok:.0%} ok")
        print(f"  phases: {phases}; total {total:.2f} s")
        if name in FLOORS:
            floor = FLOORS[name] * max(args.scale, 0.01)
            verdict = "ok" if timings["train"] <= floor else "MISSED"
            print(f"  engine part (train): {timings['train']:.3f} s, floor {floor:.2f} s: {verdict}")
            if verdict != "ok":
                missed.append(name)
        else:
            print(f"  engine part (train): {timings['train']:.3f} s ({table['batch_runs'].max()} runs a stack)")
        sample = [specs[0], specs[len(specs) // 2], specs[-1]]
        alone = run_specs(sample, stack=False)
        mine = table.set_index(["lr", "seed", "step"]).loc[alone.set_index(["lr", "seed", "step"]).index, "loss"]
        gap = float(((mine.to_numpy() - alone["loss"].to_numpy()) / alone["loss"].abs().to_numpy()).max())
        print(f"  3 runs stacked vs alone: max relative difference {gap:.1e}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
