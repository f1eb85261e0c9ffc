"""The training core: stacked equals alone, errors per run, both gradient protocols, schedules, devices."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from support import SignSGD, invoke, sign_sgd_plugin

import optbench
from optbench.core.engine import run_specs
from optbench.core.runner import execute, prepare
from optbench.core.schedules import factor
from optbench.errors import InvalidValueError
from optbench.optimizers.protocol import is_elementwise, stacked_equals_separate
from optbench.registry import OPTIMIZERS, PROBLEMS

PROBLEM_CASES = {
    "linreg": {},
    "blobs-softmax": {"shape": "blobs", "model": "softmax", "n": 120},
    "moons-mlp": {"shape": "moons", "model": "mlp", "n": 120, "hidden": 8},
}
BUILT_INS = [n for n in optbench.list_optimizers() if OPTIMIZERS.get(n).source == "built-in"]


def settings_for(name: str) -> list[dict]:
    """Default settings, plus weight decay and momentum where the optimizer has them."""
    hp = OPTIMIZERS.get(name).hyperparameters()
    out = [{}]
    if "weight_decay" in hp:
        out.append({"weight_decay": 0.01})
    if "momentum" in hp:
        out.append({"momentum": 0.9} | ({"weight_decay": 0.01} if "weight_decay" in hp else {}))
    return out


def specs_for(optimizer: str, case: str, **extra) -> list:
    problem = "linreg" if case == "linreg" else "classification"
    return [
        prepare(
            problem,
            optimizer,
            lr=lr,
            epochs=5,
            seed=seed,
            hyperparameters=hp,
            problem_options=PROBLEM_CASES[case],
            **extra,
        )
        for hp in settings_for(optimizer)
        for lr in (0.01, 0.1)
        for seed in (0, 1)
    ]


def assert_same_runs(stacked: pd.DataFrame, alone: pd.DataFrame, exact: bool) -> None:
    columns = ["time_s", "batch_runs"]
    if exact:
        pd.testing.assert_frame_equal(stacked.drop(columns=columns), alone.drop(columns=columns), check_exact=True)
    else:
        pd.testing.assert_frame_equal(
            stacked.drop(columns=columns), alone.drop(columns=columns), check_exact=False, rtol=1e-6, atol=1e-7
        )


@pytest.mark.parametrize("case", list(PROBLEM_CASES))
@pytest.mark.parametrize("optimizer", BUILT_INS)
def test_stacked_equals_alone_for_every_built_in(optimizer, case):
    """Each run of a stacked group equals that run trained alone: bit for bit on linreg; within 1e-6
    where vmap turns matrix products into batched ones (classification)."""
    if OPTIMIZERS.get(optimizer).roles:  # Muon takes the hidden matrices: AdamW the rest, as it is used
        if case == "linreg":  # one parameter, a vector: nothing Muon takes, said in one line
            row = execute(specs_for(optimizer, case)[:1])
            assert row["status"].tolist() == ["error"] and "takes matrix parameters only" in row["message"][0]
            return
        optimizer = f"{optimizer}+torch-adamw"
    specs = specs_for(optimizer, case)
    if optimizer == "torch-lbfgs":  # alone either way (20 evaluations a step): a run per setting shows it
        specs = specs[::4]
    stacked = execute(specs)
    alone = execute(specs, stack=False)
    assert set(alone["batch_runs"]) == {1}
    if optimizer == "torch-lbfgs":  # mixes every element (dot products, line search): always alone
        assert set(stacked["batch_runs"]) == {1}
    else:
        assert set(stacked["batch_runs"]) == {len(specs)}, "the group was not stacked"
    assert_same_runs(stacked, alone, exact=case == "linreg")


@pytest.mark.parametrize(
    ("optimizer", "schedule"),
    [("torch-sgd", "cosine"), ("torch-sgd", "linear"), ("torch-sgd", "step"), ("gd", "cosine")],
)
@pytest.mark.parametrize("case", ["linreg", "moons-mlp"])
def test_stacked_equals_alone_with_a_schedule(optimizer, schedule, case):
    specs = specs_for(optimizer, case, schedule=schedule, warmup_steps=2)
    stacked = execute(specs)
    assert set(stacked["batch_runs"]) == {len(specs)}
    assert_same_runs(stacked, execute(specs, stack=False), exact=case == "linreg")


def test_a_run_does_not_depend_on_its_neighbours():
    """The same run in batches of different composition (as resume or a grid would make) gives the same bits."""
    target = prepare("linreg", "torch-adam", lr=0.05, epochs=20, seed=3)
    neighbours = [prepare("linreg", "torch-adam", lr=lr, epochs=20, seed=s) for lr in (0.5, 0.005) for s in (0, 7)]
    alone = execute(target)
    for batch in ([target, *neighbours], [*neighbours[:1], target], [*neighbours, target]):
        table = execute(batch)
        mine = table[(table["seed"] == 3) & (table["lr"] == 0.05)].reset_index(drop=True)
        assert mine["batch_runs"].iloc[0] == len(batch)
        assert mine["loss"].tolist() == alone["loss"].tolist()


def test_minibatch_runs_stack_with_their_own_shuffles():
    specs = [prepare("classification", "sgd", lr=0.1, epochs=3, seed=s, problem_options={"n": 80}) for s in (0, 1, 2)]
    stacked = execute(specs)
    assert set(stacked["batch_runs"]) == {3}
    assert_same_runs(stacked, execute(specs, stack=False), exact=False)
    finals = stacked.groupby("seed")["loss"].last()
    assert finals.nunique() == 3  # each seed its own data and shuffle


@pytest.mark.parametrize("problem", ["digits-mlp", "digits-cnn"])
def test_problems_that_record_run_by_run_record_the_bits_of_each_run_alone(problem):
    """The digits networks declare ``records_run_by_run``: a stack's recorded losses and test metrics are
    computed a run at a time, so at step 0 (before training's vmapped gradients enter) they are the bits
    of the runs alone (vmapped, they differed by about 5e-7); the whole runs agree as every stack does."""
    specs = [prepare(problem, "torch-adam", lr=0.01, epochs=1, seed=s, batch_size=256) for s in (0, 1, 2)]
    stacked, alone = execute(specs), execute(specs, stack=False)
    assert set(stacked["batch_runs"]) == {3}
    start = ["loss", "test_loss", "test_accuracy"]
    first = stacked[stacked["step"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        first[start], alone[alone["step"] == 0].reset_index(drop=True)[start], check_exact=True
    )
    assert_same_runs(stacked, alone, exact=False)


def test_a_run_that_diverges_in_a_batch_leaves_the_others_alone():
    specs = [prepare("linreg", "gd", lr=lr, epochs=60, seed=s) for lr in (0.1, 300.0) for s in (0, 1)]
    stacked = execute(specs)
    statuses = stacked.groupby(["lr", "seed"])["status"].first().to_dict()
    assert statuses == {(0.1, 0): "ok", (0.1, 1): "ok", (300.0, 0): "diverged", (300.0, 1): "diverged"}
    assert_same_runs(stacked, execute(specs, stack=False), exact=True)
    assert len(stacked[stacked["lr"] == 0.1]) == 2 * 61  # the healthy runs ran every epoch
    assert not math.isfinite(stacked[stacked["lr"] == 300.0]["loss"].iloc[-1])  # cut after the first non-finite


def test_nesterov_without_momentum_is_an_error_row_stacked_and_alone():
    """torch's own constructor validation applies in every path (it used to pass when batched)."""
    bad = {"nesterov": True, "momentum": 0.0}
    specs = [
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, seed=s, hyperparameters=hp)
        for hp in ({"momentum": 0.9}, bad)
        for s in (0, 1)
    ]
    for table in (execute(specs), execute(specs, stack=False)):
        status = table.groupby(["momentum", "seed"])["status"].agg(list).to_dict()
        assert status[(0.0, 0)] == status[(0.0, 1)] == ["error"]
        assert set(table[table["momentum"] == 0.9]["status"]) == {"ok"}
        assert table[table["momentum"] == 0.9]["step"].max() == 5
        message = table[table["status"] == "error"]["message"].iloc[0]
        assert "Nesterov momentum requires a momentum" in message
    with pytest.raises(InvalidValueError, match="Nesterov momentum requires a momentum"):
        optbench.run("linreg", "torch-sgd", nesterov=True, momentum=0.0)


class FlakyProblem:
    """A plugin problem (object form only) that cannot be built for seed 1."""

    n_train = 1
    optimum = 0.0

    def __init__(self, seed: int = 0, *, start: float = 3.0):
        if seed == 1:
            raise RuntimeError("no data for seed 1")
        self.w = torch.tensor([start], requires_grad=True)

    def parameters(self):
        yield self.w

    def loss(self, idx=None):
        return (self.w**2).sum()


def test_a_problem_that_raises_for_one_seed_gives_error_rows_for_that_seed_only():
    PROBLEMS.add("flaky-problem", FlakyProblem, override=True)
    table = execute([prepare("flaky-problem", "gd", lr=0.1, epochs=10, seed=s) for s in (0, 1, 2)])
    status = table.groupby("seed")["status"].agg(set).to_dict()
    assert status == {0: {"ok"}, 1: {"error"}, 2: {"ok"}}
    assert "no data for seed 1" in table[table["seed"] == 1]["message"].iloc[0]
    # the object form runs alone, and gd's arithmetic is exactly w <- w - 0.1 * 2w = 0.8 w
    assert table[table["seed"] == 0]["loss"].iloc[-1] == pytest.approx(9 * 0.8**20, rel=1e-5)


# Optimizers written the way people write them -------------------------------------------------


class NoClosureArgument(SignSGD):
    @torch.no_grad()
    def step(self):  # no closure argument at all
        super().step()


class KwargsSGD(torch.optim.Optimizer):
    """A constructor with **kwargs (most of pytorch-optimizer) that calls its closure."""

    def __init__(self, params, lr=0.01, **kwargs):
        super().__init__(params, {"lr": lr, **kwargs})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * p.grad)
        return loss


class NormalizedGD(torch.optim.Optimizer):
    """Mixes elements: the step is the gradient over its whole tensor's norm (so it must not be stacked)."""

    def __init__(self, params, lr=0.01, clip=lambda g: g):  # a callable default
        super().__init__(params, {"lr": lr, "clip": clip})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                g = group["clip"](p.grad)
                p.sub_(group["lr"] * g / g.norm())


def hand_written(update, lr: float, steps: int) -> list[float]:
    """The lesson's loop on linreg (seed 0) with ``update(p, grad, lr)``; the loss after each step."""
    problem = PROBLEMS.get("linreg").target(seed=0)
    a = problem.a
    losses = [problem.loss().item()]
    for _ in range(steps):
        a.grad = None
        problem.loss().backward()
        with torch.no_grad():
            update(a, a.grad, lr)
        losses.append(problem.loss().item())
    return losses


REFERENCES = {
    SignSGD: lambda p, g, lr: p.add_(torch.sign(g), alpha=-lr),
    NoClosureArgument: lambda p, g, lr: p.add_(torch.sign(g), alpha=-lr),
    KwargsSGD: lambda p, g, lr: p.sub_(lr * g),
    NormalizedGD: lambda p, g, lr: p.sub_(lr * g / g.norm()),
}


@pytest.mark.parametrize("cls", list(REFERENCES), ids=lambda c: c.__name__)
def test_plugins_written_every_usual_way_train_exactly_as_by_hand(cls):
    name = f"test-{cls.__name__.lower()}"
    OPTIMIZERS.add(name, cls, override=True)
    specs = [prepare("linreg", name, lr=lr, epochs=30, seed=0) for lr in (0.1, 0.05)]
    table = execute(specs)
    for lr in (0.1, 0.05):
        run = table[table["lr"] == lr]
        assert run["status"].iloc[0] == "ok"
        assert run["loss"].tolist() == pytest.approx(hand_written(REFERENCES[cls], lr, 30), rel=1e-6)
        assert run["loss"].iloc[-1] < 0.7 * run["loss"].iloc[0]
    # all stack, none declared elementwise: each is stepped once per run, over that run's own
    # tensors, so NormalizedGD (a norm over the tensor) sees what it sees alone
    assert set(table["batch_runs"]) == {2}
    assert not is_elementwise(OPTIMIZERS.get(name))
    assert stacked_equals_separate(cls, {"lr": 0.1}) is (cls is not NormalizedGD)


def test_the_elementwise_probe_tells_mixing_optimizers_apart():
    assert stacked_equals_separate(SignSGD, {"lr": 0.1})
    assert stacked_equals_separate(torch.optim.Adam, {"lr": 0.1})
    assert not stacked_equals_separate(NormalizedGD, {"lr": 0.1})
    assert not stacked_equals_separate(torch.optim.LBFGS, {"lr": 1.0})  # its step needs a closure
    assert not is_elementwise(OPTIMIZERS.get("torch-lbfgs"))  # declared
    assert is_elementwise(OPTIMIZERS.get("torch-adam"))


class CountingLBFGS(torch.optim.LBFGS):
    calls = 0

    def step(self, closure):
        def counted():
            CountingLBFGS.calls += 1
            return closure()

        return super().step(counted)


def test_a_closure_optimizer_gets_a_closure_that_reevaluates_once_it_has_moved():
    """LBFGS's first call costs nothing (the core's own backward); later calls re-evaluate at the new point."""
    OPTIMIZERS.add("test-counting-lbfgs", CountingLBFGS, override=True)
    CountingLBFGS.calls = 0
    ours = execute(prepare("linreg", "test-counting-lbfgs", lr=1.0, epochs=3, seed=0, hyperparameters={"max_iter": 5}))
    problem = PROBLEMS.get("linreg").target(seed=0)
    opt = torch.optim.LBFGS(list(problem.parameters()), lr=1.0, max_iter=5)
    evaluations = 0

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        loss = problem.loss()
        loss.backward()
        return loss

    reference = [problem.loss().item()]
    for _ in range(3):
        opt.step(closure)
        reference.append(problem.loss().item())
    assert ours["loss"].tolist() == pytest.approx(reference, rel=1e-6)
    assert CountingLBFGS.calls == evaluations  # the same number of calls; only the first of each step is free
    assert ours["loss"].iloc[-1] == pytest.approx(ours["optimum"].iloc[0], rel=1e-4)


# Schedules, time, devices ------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear", "step"])
def test_a_schedule_is_the_closed_form_lr_at_every_step(schedule):
    lr, steps, warmup = 0.3, 12, 3
    table = optbench.run("linreg", "gd", lr=lr, epochs=steps, seed=0, schedule=schedule, warmup_steps=warmup)
    t = iter(range(steps))
    reference = hand_written(
        lambda p, g, base: p.sub_(base * factor(schedule, next(t), total=steps, warmup=warmup) * g), lr, steps
    )
    assert table["loss"].tolist() == pytest.approx(reference, rel=1e-6)
    assert set(table["schedule"]) == {schedule} and set(table["warmup_steps"]) == {warmup}


def test_schedule_factors_by_hand():
    assert [factor("step", t, total=8) for t in range(8)] == [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01]
    assert [factor("linear", t, total=4, warmup=2) for t in range(4)] == [0.5, 1.0, 1.0, 0.5]
    assert factor("cosine", 3, total=6) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_time_s_means_one_run_alone_in_every_path():
    """A stacked run's time_s is its steps times the per-step time of one run timed alone (calibrated),
    never a 1/K share of the batch: linear in the step, and the same rate for every run of the group."""
    specs = [prepare("linreg", "gd", lr=0.1, epochs=40, seed=s) for s in range(8)]
    table = execute(specs)
    rates = (table["time_s"] / table["step"]).where(table["step"] > 0).dropna()
    assert rates.min() > 0 and rates.max() == pytest.approx(rates.min(), rel=1e-9)
    assert set(table["batch_runs"]) == {8}
    alone = optbench.run("linreg", "gd", lr=0.1, epochs=40, seed=0)
    assert alone["time_s"].is_monotonic_increasing and alone["time_s"].iloc[-1] > 0


def test_bad_device_and_schedule_are_one_line_errors():
    with pytest.raises(InvalidValueError, match="--device 'tpu' is not valid; valid: cpu, cuda, cuda:N"):
        prepare("linreg", "gd", device="tpu")
    with pytest.raises(InvalidValueError, match="--schedule 'cosin' is not valid \\(did you mean 'cosine'\\?\\)"):
        prepare("linreg", "gd", schedule="cosin")
    with pytest.raises(InvalidValueError, match="--warmup-steps -1 is out of range"):
        prepare("linreg", "gd", warmup_steps=-1)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidValueError, match="no CUDA GPU is available here; use --device cpu"):
            prepare("linreg", "gd", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", ["linreg", "moons-mlp"])
def test_cuda_runs_match_cpu_runs(case):
    cpu = execute(specs_for("torch-adam", case))
    cuda = execute(specs_for("torch-adam", case, device="cuda"))
    assert set(cuda["device"]) == {"cuda:0"}
    pd.testing.assert_series_equal(cpu["loss"], cuda["loss"], rtol=1e-4, atol=1e-6)


def test_on_record_sees_each_run_alone():
    seen = []
    run_specs([prepare("linreg", "gd", epochs=3, seed=s) for s in (0, 1)], on_record=lambda step, p: seen.append(step))
    assert seen == [0, 1, 2, 3, 0, 1, 2, 3]


def test_a_closure_ignoring_plugin_file_trains_through_the_cli(tmp_path):
    """The 12-line sign-SGD a new user writes: it used to report status ok with a flat loss 6.637 -> 6.637."""

    plugin = tmp_path / "sign_sgd.py"
    plugin.write_text(sign_sgd_plugin("sign-sgd"))
    out = tmp_path / "sign.parquet"
    args = ["run", "--plugin", str(plugin), "--optimizer", "sign-sgd", "--lr", "0.05", "--epochs", "40"]
    result = invoke(*args, "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    reference = hand_written(lambda p, g, lr: p.add_(torch.sign(g), alpha=-lr), 0.05, 40)
    assert table["loss"].tolist() == pytest.approx(reference, rel=1e-6)
    assert table["loss"].iloc[-1] < 0.2 * table["loss"].iloc[0]


def test_a_bad_problem_option_mid_sweep_gives_error_rows_and_the_sweep_completes(tmp_path):

    out = tmp_path / "s.parquet"
    args = ["sweep", "--problem", "linreg", "--optimizer", "gd,torch-sgd", "--problem-opt", "n=1,50"]
    result = invoke(*args, "--seeds", "0-2", "--epochs", "5", "--out", out)
    assert result.exit_code == 1, result.output  # some runs errored: documented exit 1, not an abort
    table = pd.read_parquet(out)
    status = table.groupby(["problem_n", "optimizer", "seed"])["status"].first()
    assert set(status.loc[1]) == {"error"} and len(status.loc[1]) == 6
    assert set(status.loc[50]) == {"ok"} and len(status.loc[50]) == 6
    assert "linreg n=1 is out of range" in table[table["problem_n"] == 1]["message"].iloc[0]


def test_an_optimizers_default_batch_shrinks_to_a_small_problem_but_an_explicit_one_does_not():
    table = optbench.run("rosenbrock", "sgd", epochs=3)  # sgd's default 10 > rosenbrock's single row
    assert set(table["batch_size"]) == {1} and table["step"].max() == 3
    with pytest.raises(InvalidValueError, match="--batch-size 10 is larger than the 1 training examples"):
        optbench.run("rosenbrock", "gd", batch_size=10)


def test_a_stacked_cpu_loop_keeps_large_blocks_in_the_heap_and_gives_them_back(monkeypatch):
    """glibc unmaps each freed block over 32 MB, so a big stack faulted its activations in at every step
    (1,000 MLP runs: 1.75x slower); the loop asks for them to be kept, and after it restores and trims."""
    from optbench import private_apis as allocator

    calls = []

    class Libc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(allocator, "_libc", Libc)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    specs = [prepare("linreg", "gd", lr=lr, epochs=2, seed=s) for lr in (0.1, 0.2) for s in (0, 1)]
    assert set(execute(specs)["batch_runs"]) == {4}
    keep, usual = 1 << 30, 32 << 20
    assert calls == [(-3, keep), (-1, keep), (-3, usual), (-1, 2 * usual), ("trim", 0)]

    calls.clear()
    execute(specs[0])  # a run alone allocates little: nothing asked
    assert calls == []
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # the user's setting stands
    execute(specs)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")  # so does a tunable
    execute(specs)
    assert calls == []
