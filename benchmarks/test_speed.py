"""Speed benchmarks (pytest-benchmark). Not part of the plain test run: `python -m pytest benchmarks`.

Shared machines are noisy, so nothing here gates on a timing saved elsewhere: each gate is a ratio
of two things measured in the same process, interleaved round by round (see `interleaved`), and a
gate that fails is measured once more before it counts. The noise measured on the project's
2-core machines is written down in benchmarks/README.md; the gates sit well above it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import optbench
from optbench.problems.classification import Classification
from optbench.problems.linreg import LinearRegression

GATES = {"runner": 1.25, "cli-run": 2.0, "cli-help": 2.5, "cli-bad-name": 0.2, "cli-oversized": 0.25}
OVERSIZED_S = 0.85  # a refusal in under a second (issue 35), with 15% of margin
TARGET_RUNNER = 1.10  # the design target for the runner's overhead, reported beside the gate


def interleaved(a: Callable[[], object], b: Callable[[], object], rounds: int) -> dict[str, float]:
    """Time ``a`` and ``b`` alternately, in a-b then b-a order.

    ``ratio`` is the median over rounds of a/b within a round: the two halves of a round run back to
    back, under the same load, so a burst of other work moves both. Best-time ratios are reported too.
    """
    times_a, times_b = [], []
    a(), b()  # warm up: first-call costs (lazy imports, allocator) are not the steady state
    for i in range(rounds):
        pair = ((a, times_a), (b, times_b))
        for fn, times in pair if i % 2 == 0 else pair[::-1]:  # a-b, b-a, ...: no side always goes first
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return {
        "ratio": statistics.median(x / y for x, y in zip(times_a, times_b, strict=True)),
        "ratio_of_best": min(times_a) / min(times_b),
        "best_a_s": min(times_a),
        "best_b_s": min(times_b),
    }


def gated(measure: Callable[[], dict[str, float]], gate: float) -> dict[str, float]:
    """Measure; over the gate, measure once more and keep the better: one burst of load is not a regression."""
    result = measure()
    if result["ratio"] > gate:
        result = min(result, measure(), key=lambda r: r["ratio"])
    return result


def hand_written(problem_cls: type, batch_size: int | None, epochs: int) -> list[float]:
    """What the runner does, by hand: the same problem, optimizer and closure, the same records."""
    problem = problem_cls(seed=0)
    opt = optbench.get_optimizer("gd").target(problem.parameters(), lr=0.1)
    n = problem.n_train
    gen = torch.Generator().manual_seed(0)
    batch = None

    def closure():
        opt.zero_grad()
        loss = problem.loss(batch)
        loss.backward()
        return loss

    with torch.no_grad():
        losses, metrics = [problem.loss()], [problem.metrics()]
    for _ in range(epochs):
        batches = [None] if batch_size is None else torch.randperm(n, generator=gen).split(batch_size)
        for batch in batches:  # noqa: B007 (read by the closure)
            opt.step(closure)
        with torch.no_grad():
            losses.append(problem.loss())
            metrics.append(problem.metrics())
    return torch.stack(losses).tolist()


CASES = {
    "linreg-gd": (LinearRegression, "linreg", "gd", None, 600),  # a record after every step
    "classification-sgd": (Classification, "classification", "sgd", 10, 20),  # 30 steps per record
}


@pytest.mark.parametrize("case", list(CASES))
def test_runner_overhead(benchmark, case):
    problem_cls, problem, optimizer, batch_size, epochs = CASES[case]

    def ours():
        return optbench.run(problem, optimizer, epochs=epochs)

    def raw():
        return hand_written(problem_cls, batch_size, epochs)

    # the same numbers first: the comparison is only fair if both do the same work
    assert ours()["loss"].tolist() == raw()
    result = gated(lambda: interleaved(ours, raw, rounds=15), GATES["runner"])
    benchmark.extra_info.update(result, target=TARGET_RUNNER, gate=GATES["runner"])
    benchmark.pedantic(ours, rounds=5, iterations=1)
    print(
        f"\n{case}: runner / hand-written loop = {result['ratio']:.3f} (paired median), "
        f"{result['ratio_of_best']:.3f} (best)"
    )
    assert result["ratio"] <= GATES["runner"]


def _cli(*args: str) -> Callable[[], None]:
    def call() -> None:
        subprocess.run(list(args), check=True, capture_output=True)

    return call


PLAIN_SCRIPT = """
import torch
gen = torch.Generator().manual_seed(0)
u = torch.rand(100, generator=gen, dtype=torch.float64) * 2 - 1
x = torch.stack([u, torch.ones(100, dtype=torch.float64)], 1)
y = x @ torch.tensor([3.0, 2.0], dtype=torch.float64) + torch.rand(100, generator=gen, dtype=torch.float64)
x, y = x.float(), y.float()
a = torch.tensor([-1.0, 1.0], requires_grad=True)
opt = torch.optim.SGD([a], lr=0.1)  # an Optimizer, as the runner uses: its first one imports torch._dynamo
losses = []
for _ in range(100):
    opt.zero_grad()
    loss = ((x @ a - y) ** 2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        losses.append(((x @ a - y) ** 2).mean())
print(torch.stack(losses)[-1].item())
"""


def test_cli_run_end_to_end(benchmark, tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    exe = str(Path(sys.executable).with_name("optbench"))
    ours = _cli(exe, "run", "--problem", "linreg", "--optimizer", "gd", "--quiet")
    plain = _cli(sys.executable, str(script))
    result = gated(lambda: interleaved(ours, plain, rounds=3), GATES["cli-run"])
    benchmark.extra_info.update(result, gate=GATES["cli-run"])
    benchmark.pedantic(ours, rounds=2, iterations=1)
    print(
        f"\noptbench run / plain script = {result['ratio_of_best']:.3f} ({result['best_a_s']:.2f} s vs "
        f"{result['best_b_s']:.2f} s)"
    )
    assert result["ratio"] <= GATES["cli-run"]


def test_cli_help_startup(benchmark):
    """`optbench --help` imports no torch: it costs about what importing click costs."""
    exe = str(Path(sys.executable).with_name("optbench"))
    ours = _cli(exe, "--help")
    bare = _cli(sys.executable, "-c", "import click")
    result = gated(lambda: interleaved(ours, bare, rounds=10), GATES["cli-help"])
    benchmark.extra_info.update(result, gate=GATES["cli-help"])
    benchmark.pedantic(ours, rounds=5, iterations=1)
    print(
        f"\noptbench --help: {result['best_a_s'] * 1000:.0f} ms; python -c 'import click': "
        f"{result['best_b_s'] * 1000:.0f} ms"
    )
    assert result["ratio"] <= GATES["cli-help"]
    assert os.environ.get("CI") or result["best_a_s"] < 1.0


def test_cli_bad_name_answers_before_torch(benchmark):
    """A misspelt optimizer is one line before torch is imported: under 0.5 s, and at least 5x faster
    than `python -c "import torch"` alone (the time every command took to say it, before)."""
    exe = str(Path(sys.executable).with_name("optbench"))

    def ours() -> None:
        done = subprocess.run([exe, "run", "--optimizer", "sdg"], capture_output=True, text=True)
        assert done.returncode == 2 and "(did you mean 'sgd'?)" in done.stderr, done.stderr

    import_torch = _cli(sys.executable, "-c", "import torch")
    result = gated(lambda: interleaved(ours, import_torch, rounds=6), GATES["cli-bad-name"])
    benchmark.extra_info.update(result, gate=GATES["cli-bad-name"])
    benchmark.pedantic(ours, rounds=5, iterations=1)
    print(
        f"\noptbench run --optimizer sdg: {result['best_a_s'] * 1000:.0f} ms; python -c 'import torch': "
        f"{result['best_b_s'] * 1000:.0f} ms (paired ratio {result['ratio']:.3f}, {1 / result['ratio']:.1f}x faster)"
    )
    assert result["ratio"] <= GATES["cli-bad-name"]
    assert result["best_a_s"] < 0.5


# The oversized requests of issue 35: lm's, from flags, as the issue found them (each was 4-9 s: refused after
# torch loaded, or not at all), and one from a sweep file. Each is refused by its size before torch loads.
OVERSIZED = [
    ["run", "--problem", "lm", "--optimizer", "torch-adam", "--epochs", "1", "--problem-opt", "n_train=100000000"],
    ["run", "--problem", "lm", "--optimizer", "torch-adam", "--epochs", "1", "--problem-opt", "block_size=1000000"],
    ["run", "--problem", "lm", "--optimizer", "torch-adam", "--epochs", "1", "--problem-opt", "n_train=1000000000000"],
    ["sweep", "--config", "{big_toml}", "--out", "{out}"],
]


def test_cli_oversized_request_is_refused_before_torch(benchmark, tmp_path):
    """An oversized request is one line, exit 2, before torch is imported: under 0.85 s (the issue's second,
    with margin), and at least 4x faster than `python -c "import torch"` alone."""
    exe = str(Path(sys.executable).with_name("optbench"))
    big_toml = tmp_path / "big.toml"
    big_toml.write_text(
        'problems = ["lm"]\noptimizers = ["torch-adam"]\n[problem_opt.lm]\nblock_size = [16, 1000000]\n'
    )
    paths = {"big_toml": str(big_toml), "out": str(tmp_path / "s.parquet")}
    requests = [[arg.format(**paths) for arg in args] for args in OVERSIZED]
    calls = iter(range(10**6))

    def ours() -> None:  # the requests in turn, one per call
        args = requests[next(calls) % len(requests)]
        done = subprocess.run([exe, *args], capture_output=True, text=True)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "would need about" in lines[0], done.stderr

    import_torch = _cli(sys.executable, "-c", "import torch")
    result = gated(lambda: interleaved(ours, import_torch, rounds=8), GATES["cli-oversized"])
    benchmark.extra_info.update(result, gate=GATES["cli-oversized"], gate_s=OVERSIZED_S)
    benchmark.pedantic(ours, rounds=4, iterations=1)
    print(
        f"\noversized request refused: {result['best_a_s'] * 1000:.0f} ms; python -c 'import torch': "
        f"{result['best_b_s'] * 1000:.0f} ms (paired ratio {result['ratio']:.3f}, {1 / result['ratio']:.1f}x faster)"
    )
    assert result["ratio"] <= GATES["cli-oversized"]
    assert result["best_a_s"] < OVERSIZED_S
    assert not (tmp_path / "s.parquet").exists()
