"""Hybrids (``A+B``) and wrappers (``W(B)``): who gets which parameters, their settings by part,
stacking per matrix, and the forms people write them in (a wrapper around a built optimizer, a
SAM-style class taking ``base_optimizer``, a schedule-free optimizer with train/eval modes, a
class that flags its groups ``use_muon``)."""

import math
import os
from typing import ClassVar
from unittest import mock

import pandas as pd
import pytest
import torch
from support import Averaged, invoke

import optbench
from optbench.core.engine import optimizer_for
from optbench.core.runner import execute, prepare
from optbench.errors import InvalidValueError, PluginError, UnknownNameError
from optbench.problems.base import parameter_roles
from optbench.registry import snapshot


@pytest.fixture(autouse=True)
def _registry():
    with snapshot():
        yield


def names_of(problem, tensors):
    by_id = {id(p): k for k, p in problem.params.items()}
    return sorted(by_id[id(t)] for t in tensors)


def test_muon_gets_exactly_the_hidden_matrices_and_adamw_everything_else():
    spec = prepare("lm", "torch-muon+torch-adamw", problem_options={"n_layer": 2})
    problem = spec.problem.target(seed=0, n_layer=2)
    opt = optimizer_for(spec, list(problem.parameters()), problem)
    muon, adamw = opt.parts
    assert type(muon) is torch.optim.Muon and type(adamw) is torch.optim.AdamW
    hidden = [f"blocks.{i}.{w}.weight" for i in range(2) for w in ("qkv", "proj", "fc", "out")]
    assert names_of(problem, [p for g in muon.param_groups for p in g["params"]]) == sorted(hidden)
    rest = sorted(set(problem.params) - set(hidden))
    assert names_of(problem, [p for g in adamw.param_groups for p in g["params"]]) == rest
    assert {"token.weight", "position.weight", "head.weight", "ln_f.weight", "blocks.0.qkv.bias"} <= set(rest)
    roles = dict(zip(problem.params, parameter_roles(problem), strict=True))
    assert roles["token.weight"] == roles["position.weight"] == "embedding" and roles["head.weight"] == "head"


def test_a_hybrid_steps_both_parts_at_the_same_point_as_a_hand_loop():
    """torch-muon+torch-adamw on lm equals torch's own Muon and AdamW stepped by hand, bit for bit
    (on a fixed set of sequences, full batch: the hybrid's plumbing is what this reads)."""
    options = {"n_train": 32, "n_val": 8, "regime": "fixed"}
    run = optbench.run(
        "lm", "torch-muon+torch-adamw", lr=0.05, epochs=6, problem_options=options, **{"torch-adamw.lr": 0.01}
    )
    problem = optbench.get_problem("lm").target(seed=0, **options)
    matrices = [p for k, p in problem.params.items() if p.dim() == 2 and k.startswith("blocks")]
    others = [p for k, p in problem.params.items() if not (p.dim() == 2 and k.startswith("blocks"))]
    muon, adamw = torch.optim.Muon(matrices, lr=0.05), torch.optim.AdamW(others, lr=0.01)
    losses = [float(problem.loss())]
    for _ in range(6):
        for p in problem.params.values():
            p.grad = None
        problem.loss().backward()
        muon.step()
        adamw.step()
        losses.append(float(problem.loss()))
    assert run["loss"].tolist() == pytest.approx(losses, rel=1e-6)
    assert run["lr"].iloc[0] == 0.05 and run["torch-adamw.lr"].iloc[0] == 0.01
    assert run["optimizer"].iloc[0] == "torch-muon+torch-adamw"


def test_a_hybrid_is_named_and_keyed_canonically_and_its_settings_are_addressed_by_part(tmp_path):
    store = tmp_path / "s.parquet"
    common = ["--problem", "lm", "--problem-opt", "n_train=16", "--epochs", "2", "--out", store]
    first = invoke("sweep", *common, "--optimizer", "torch-muon + torch-adamw", "--lr", "0.02")
    assert first.exit_code == 0, first.output
    again = invoke("sweep", *common, "--optimizer", "torch-muon+torch-adamw", "--opt", "torch-muon.lr=0.02")
    assert again.exit_code == 0 and "1 of this grid (skipped)" in again.output  # the same run, however spelt
    table = pd.read_parquet(store)
    assert set(table["optimizer"]) == {"torch-muon+torch-adamw"} and set(table["lr"]) == {0.02}
    assert {"torch-muon.momentum", "torch-adamw.lr", "torch-adamw.weight_decay"} <= set(table.columns)
    run = ["run", "--problem", "lm", "--optimizer", "torch-muon+torch-adamw"]
    both = invoke(*run, "--lr", "0.02", "--opt", "torch-muon.lr=0.1")
    assert both.exit_code == 2 and "give only one of them" in both.output
    typo = invoke(*run, "--opt", "torch-adamw.weight_decy=0.1")
    assert typo.exit_code == 2 and "did you mean 'torch-adamw.weight_decay'" in typo.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("torch-muon+torch-adamw+torch-sgd", "a hybrid has two parts"),
        ("torch-adam+torch-adam", "names 'torch-adam' twice"),
        ("torch-muon+", "is not a composite name"),
        ("torch-adam(torch-sgd", "is not a composite name"),
    ],
)
def test_a_malformed_composite_is_one_line(name, message):
    result = invoke("run", "--optimizer", name)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_an_unknown_part_is_named_with_a_suggestion():
    with pytest.raises(UnknownNameError, match=r"'torch-adamx' \(did you mean 'torch-adamax'"):
        optbench.run("lm", "torch-muon+torch-adamx")
    assert "torch-muon+torch-adamw" not in optbench.list_optimizers()  # composites are spelt, not listed


def test_muon_alone_refuses_what_it_cannot_take_and_a_hybrid_says_which_part_got_nothing():
    with pytest.raises(InvalidValueError, match="torch-muon' takes matrix parameters only; problem 'lm' also has"):
        optbench.run("lm", "torch-muon", epochs=1)
    run = optbench.run("matrix-factorization", "torch-muon", lr=0.1, epochs=30)  # every parameter a matrix
    assert run["loss"].iloc[-1] < 0.05 * run["loss"].iloc[0]  # measured: 0.562 -> 0.0067
    with pytest.raises(InvalidValueError, match="torch-adamw gets no parameters"):
        optbench.run("matrix-factorization", "torch-muon+torch-adamw", epochs=1)


class ShapeSpy(torch.optim.Muon):
    """torch's Muon, recording the shape of every parameter it is given."""

    seen: ClassVar[list] = []

    def __init__(self, params, **kwargs):
        params = list(params)
        ShapeSpy.seen += [tuple(p.shape) for p in params]
        super().__init__(params, **kwargs)


def test_stacked_runs_give_a_matrix_optimizer_each_runs_own_matrices():
    optbench.register_optimizer("spy-muon", roles=("matrix",))(ShapeSpy)
    ShapeSpy.seen = []
    options = {"n_train": 16, "n_val": 8}
    specs = [
        prepare("lm", "spy-muon+torch-adamw", lr=0.02, seed=s, epochs=2, problem_options=options) for s in range(4)
    ]
    table = execute(specs)
    assert set(table["batch_runs"]) == {4} and (table["status"] == "ok").all()
    alone = optbench.get_problem("lm").target(seed=0, **options)
    own = sorted(tuple(p.shape) for k, p in alone.params.items() if k.startswith("blocks") and p.dim() == 2)
    stacked_builds = ShapeSpy.seen[: 4 * len(own)]  # one Muon per run in the stack, then the spot check's
    assert sorted(stacked_builds) == sorted(own * 4)  # never (4, m, n), never a stacked vector


class Lookahead(torch.optim.Optimizer):
    """The wrapper people write (Zhang et al., 2019): every k steps, pull the slow weights toward the fast."""

    def __init__(self, optimizer, k=3, alpha=0.5):
        self.optimizer, self.k, self.alpha, self.steps = optimizer, k, alpha, 0
        self.param_groups = optimizer.param_groups
        self.defaults, self.state = optimizer.defaults, optimizer.state
        self.slow = [p.detach().clone() for g in self.param_groups for p in g["params"]]
        self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks = {}, {}

    @torch.no_grad()
    def step(self, closure=None):
        self.optimizer.step()
        self.steps += 1
        if self.steps % self.k == 0:
            for slow, p in zip(self.slow, [p for g in self.param_groups for p in g["params"]], strict=True):
                slow.add_(p - slow, alpha=self.alpha)
                p.copy_(slow)


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimisation (Foret et al., 2021) as its papers' code has it: the base
    optimizer comes as a class, and the step needs a closure (a second gradient, at the perturbed point)."""

    def __init__(self, params, base_optimizer, rho=0.05, **kwargs):
        super().__init__(params, {"rho": rho, **kwargs})
        self.base = base_optimizer(self.param_groups, **kwargs)

    @torch.no_grad()
    def step(self, closure):
        params = [p for g in self.param_groups for p in g["params"]]
        norm = torch.norm(torch.stack([p.grad.norm() for p in params]))
        shifts = [p.grad * self.param_groups[0]["rho"] / (norm + 1e-12) for p in params]
        for p, e in zip(params, shifts, strict=True):
            p.add_(e)
        with torch.enable_grad():
            closure()
        for p, e in zip(params, shifts, strict=True):
            p.sub_(e)
        self.base.step()


def linreg_by_hand(step, steps):
    problem = optbench.get_problem("linreg").target(seed=0)
    losses = [float(problem.loss())]
    for _ in range(steps):
        problem.a.grad = None
        problem.loss().backward()
        step(problem)
        losses.append(float(problem.loss()))
    return losses


def test_a_wrapper_around_a_built_optimizer_trains_as_by_hand():
    optbench.register_optimizer("test-lookahead")(Lookahead)
    run = optbench.run("linreg", "test-lookahead(torch-sgd)", lr=0.1, epochs=12, **{"test-lookahead.alpha": 0.3})
    state = {}

    def step(problem):
        if not state:
            state["sgd"] = torch.optim.SGD([problem.a], lr=0.1)
            state["w"] = Lookahead(state["sgd"], k=3, alpha=0.3)
        state["w"].step()

    assert run["loss"].tolist() == pytest.approx(linreg_by_hand(step, 12), rel=1e-9)
    assert run["test-lookahead.alpha"].iloc[0] == 0.3 and run["lr"].iloc[0] == 0.1


def test_a_sam_style_wrapper_builds_its_base_from_a_class_and_gets_its_closure():
    optbench.register_optimizer("test-sam")(SAM)
    run = optbench.run("linreg", "test-sam(torch-sgd)", lr=0.1, epochs=10, **{"torch-sgd.momentum": 0.5})
    assert (run["status"] == "ok").all()
    assert run["grad_evals"].iloc[-1] == 20  # two gradients a step: the closure was called and counted
    state = {}

    def step(problem):
        if not state:
            state["sam"] = SAM([problem.a], torch.optim.SGD, lr=0.1, momentum=0.5)

        def closure():
            problem.a.grad = None
            loss = problem.loss()
            loss.backward()
            return loss

        state["sam"].step(closure)

    assert run["loss"].tolist() == pytest.approx(linreg_by_hand(step, 10), rel=1e-9)
    hybrid = invoke("run", "--problem", "classification", "--optimizer", "torch-muon+test-sam(torch-sgd)")
    assert hybrid.exit_code in (1, 2) and "needs a closure" in hybrid.output


def test_an_optimizer_with_train_and_eval_modes_is_recorded_at_its_evaluation_point():
    optbench.register_optimizer("test-averaged")(Averaged)
    run = optbench.run("linreg", "test-averaged", lr=0.3, epochs=8)
    optbench.register_optimizer("test-lookahead")(Lookahead)  # a wrapper around it: its modes still switch
    wrapped = optbench.run("linreg", "test-lookahead(test-averaged)", lr=0.3, epochs=8, **{"test-lookahead.k": 100})
    assert wrapped["loss"].tolist() == run["loss"].tolist()  # k = 100: Lookahead never pulls in 8 steps
    problem = optbench.get_problem("linreg").target(seed=0)
    means, fast = [], problem.a.detach().clone()
    expected = [float(problem.loss())]
    for _ in range(8):
        a = fast.clone().requires_grad_()
        problem.a.data.copy_(a)
        problem.a.grad = None
        problem.loss().backward()
        fast = fast - 0.3 * problem.a.grad
        means.append(fast)
        with torch.no_grad():
            problem.a.copy_(torch.stack(means).mean(dim=0))  # evaluated at the mean of the iterates
            expected.append(float(problem.loss()))
    assert run["loss"].tolist() == pytest.approx(expected, rel=1e-6)


class MuonWithAuxAdam(torch.optim.Optimizer):
    """Keller Jordan's convention: groups flagged ``use_muon`` (Muon's update) or not (its own AdamW)."""

    def __init__(self, params, lr=0.02):
        params = list(params)
        for group in params:
            if "use_muon" not in group:
                raise ValueError("use_muon must be set in every group")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                update = torch.sign(p.grad) if group["use_muon"] else p.grad
                p.sub_(group["lr"] * update)


def test_a_class_that_flags_its_groups_use_muon_gets_them_by_role():
    optbench.register_optimizer("test-aux")(MuonWithAuxAdam)
    spec = prepare("lm", "test-aux", problem_options={"n_train": 8})
    problem = spec.problem.target(seed=0, n_train=8)
    opt = optimizer_for(spec, list(problem.parameters()), problem)
    flagged = {g["use_muon"]: names_of(problem, g["params"]) for g in opt.param_groups}
    assert flagged[True] == sorted(k for k, p in problem.params.items() if k.startswith("blocks") and p.dim() == 2)
    assert "token.weight" in flagged[False] and "head.weight" in flagged[False]
    assert (optbench.run("linreg", "test-aux", epochs=3)["status"] == "ok").all()  # a vector only: one group
    hybrid = optimizer_for(prepare("lm", "test-aux+torch-adamw"), list(problem.parameters()), problem)
    assert [g["use_muon"] for g in hybrid.parts[0].param_groups] == [True]


def test_every_command_takes_a_hybrid(tmp_path):
    """sweep -> report, tune, bench and check (a matrix file) with torch-muon+torch-adamw."""
    hybrid = "torch-muon+torch-adamw"
    store = tmp_path / "s.parquet"
    grid = ["--problem", "classification", "--optimizer", hybrid, "--lr", "0.01,0.05", "--seeds", "0-1"]
    swept = invoke("sweep", *grid, "--opt", "torch-adamw.lr=0.01", "--epochs", "20", "--out", store)
    assert swept.exit_code == 0, swept.output
    table = pd.read_parquet(store)
    assert set(table["batch_runs"]) == {4} and set(table["torch-adamw.lr"]) == {0.01}
    assert invoke("report", store, "--out", tmp_path / "report").exit_code == 0
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary["optimizer"]) == {hybrid}
    tuned = invoke(  # both parts' spaces, refined: one small study is enough to show it takes a hybrid
        "tune",
        *grid[:4],
        "--lr",
        "0.01,0.05",
        "--epochs",
        "10",
        "--studies",
        "1",
        "--trials",
        "4",
        "--max-trials",
        "8",
        "--out",
        tmp_path / "t.parquet",
    )
    assert "torch-adamw.lr=" in tuned.output  # the second part's lr is searched too
    assert tuned.exit_code == 0, tuned.output
    matrix = tmp_path / "m.toml"
    matrix.write_text(f'epochs = 10\nseeds = [0]\n[[cells]]\nproblems = "classification"\noptimizers = "{hybrid}"\n')
    base = tmp_path / "b.json"
    assert invoke("baseline", "--config", matrix, "--out", base).exit_code == 0
    assert invoke("check", "--baseline", base).exit_code == 0
    assert math.isfinite(table["loss"].iloc[-1])


def test_what_a_review_found_stays_fixed(tmp_path):
    """Mixed-type settings in one store, --lr against a lead's lr in a sweep, a role label that names
    no parameter, a SAM-style wrapper and its base taking the same keyword, pydoc windows longer
    than its blocks, and conformance settings of an optimizer that declares roles."""
    from optbench.quality.conformance import check_optimizer

    store = tmp_path / "mixed.parquet"  # Adafactor's eps is a pair, Adam's a number: one column
    assert invoke("sweep", "--optimizer", "torch-adafactor,torch-adam", "--epochs", "2", "--out", store).exit_code == 0
    assert set(pd.read_parquet(store).groupby("optimizer")["eps"].first()) == {"nan,0.001", "1e-08"}
    both = invoke("sweep", "--optimizer", "torch-muon+torch-adamw", "--problem", "classification", "--lr", "0.01",
                  "--opt", "torch-muon.lr=0.05", "--out", tmp_path / "b.parquet")  # fmt: skip
    assert both.exit_code == 2 and "both set the learning rate" in both.output

    class Typo(optbench.get_problem("linreg").target):
        def __init__(self, seed=0):
            super().__init__(seed=seed)
            self.roles = {"aa": "matrix"}

    optbench.register_problem("test-typo")(Typo)
    with pytest.raises(PluginError, match="labels 'aa' with a role, but it has no parameter of that name"):
        optbench.run("test-typo", "torch-adam", epochs=1)
    optbench.register_optimizer("test-sam")(SAM)
    with pytest.raises(InvalidValueError, match="both take 'rho'"):
        optbench.register_optimizer("test-rho-sgd", defaults={"rho": 0.1})(torch.optim.SGD)
        optbench.run("linreg", "test-sam(test-rho-sgd)", epochs=1)
    with (
        mock.patch.dict(os.environ, {"OPTBENCH_MAX_MEMORY": "1e9"}),  # past the size check: the text's own
        pytest.raises(InvalidValueError, match="block_size=50000 is too long for the pydoc text"),
    ):
        optbench.run("lm", "torch-adam", epochs=1, problem_options={"corpus": "pydoc", "block_size": 50000})
    checks = check_optimizer("torch-muon", epochs=5, hyperparameters={"momentum": 0.9}, raise_on_failure=False)
    assert checks[0].passed and "momentum=0.9" in checks[0].detail  # given to Muon, alone and in the hybrid
    assert all("takes no setting" not in c.detail for c in checks)
