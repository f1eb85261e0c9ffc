"""Plugin classes written the ways real ones are (pytorch-optimizer's A2Grad, wrappers, dtype settings,
callable defaults) behave as a user expects."""

import textwrap

import pytest
from support import invoke

import optbench

PLUGINS = textwrap.dedent(
    '''
    import pathlib

    import torch
    import optbench


    def _descend(opt, lr):
        with torch.no_grad():
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.sub_(lr * p.grad)


    def default_rule(step):
        return 1.0


    @optbench.register_optimizer("f-lr-none")
    class LrNone(torch.optim.Optimizer):
        """lr=None: the class picks its own step size (as A2Grad and SaRA do)."""

        def __init__(self, params, lr=None, beta=10.0):
            super().__init__(params, dict(lr=lr, beta=beta))

        def step(self, closure=None):
            _descend(self, self.param_groups[0]["lr"] or 0.05)


    @optbench.register_optimizer("f-no-lr")
    class NoLr(torch.optim.Optimizer):
        """No learning rate at all."""

        def __init__(self, params, momentum=0.9):
            super().__init__(params, dict(momentum=momentum))

        def step(self, closure=None):
            _descend(self, 0.05)


    @optbench.register_optimizer("f-typed")
    class Typed(torch.optim.Optimizer):
        """A dtype setting and a class-valued one (a wrapper's base optimizer)."""

        def __init__(
            self, params, lr=0.05, state_dtype=torch.float32, base_optimizer=torch.optim.SGD, rule=default_rule
        ):
            seen = f"{state_dtype} {base_optimizer.__module__}.{base_optimizer.__name__}"
            pathlib.Path(__file__).with_suffix(".seen").write_text(seen)  # what the class was given
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            _descend(self, self.param_groups[0]["lr"])


    @optbench.register_optimizer("f-random")
    class Random(torch.optim.Optimizer):
        """Noisy steps from torch's global generator (as Gravity's state and Kron's updates are)."""

        def __init__(self, params, lr=0.05):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            for p in self.param_groups[0]["params"]:
                p.sub_(self.param_groups[0]["lr"] * (p.grad + torch.randn_like(p)))


    @optbench.register_optimizer("f-wrapper")
    class Wrapper(torch.optim.Optimizer):
        """Its parameters come first under another name, as a wrapper's do (pytorch-optimizer's Magma:
        `optimizer`, parameters or a base optimizer); `keep` scales its step."""

        def __init__(self, optimizer, keep=0.5, lr=0.1):
            super().__init__(optimizer, dict(keep=keep, lr=lr))

        def step(self, closure=None):
            _descend(self, self.param_groups[0]["lr"] * self.param_groups[0]["keep"])


    @optbench.register_optimizer("f-raises")
    class Raises(torch.optim.Optimizer):
        """A step that always fails."""

        def __init__(self, params, lr=0.05):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            raise RuntimeError("this step is broken")
    '''
)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "faults.py"
    path.write_text(PLUGINS)
    return path


def test_an_lr_none_default_runs_without_lr_and_records_it_missing(plugin, tmp_path):
    result = invoke("run", "--plugin", plugin, "--optimizer", "f-lr-none", "--epochs", "3", "--out", tmp_path / "a.csv")
    assert result.exit_code == 0, result.output
    table = optbench.load_results(tmp_path / "a.csv")
    assert table["lr"].isna().all() and table["status"].eq("ok").all()
    assert table["loss"].iloc[-1] < table["loss"].iloc[0]


def test_lr_on_a_class_without_one_says_so(plugin):
    result = invoke("run", "--plugin", plugin, "--optimizer", "f-no-lr", "--lr", "0.1")
    assert result.exit_code == 2
    assert "--lr 0.1: optimizer 'f-no-lr' takes no learning rate (its settings: momentum)" in result.output


def test_dtype_text_and_a_registered_name_become_a_dtype_and_a_class(plugin):
    result = invoke(
        "run", "--plugin", plugin, "--optimizer", "f-typed", "--epochs", "2",
        "--opt", "state_dtype=float64", "--opt", "base_optimizer=torch-adam",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert plugin.with_suffix(".seen").read_text() == "torch.float64 torch.optim.adam.Adam"
    bad = invoke("run", "--plugin", plugin, "--optimizer", "f-typed", "--opt", "base_optimizer=nosuch")
    assert bad.exit_code == 2 and "expected the name of a registered optimizer" in bad.output


def test_a_class_whose_parameters_argument_has_another_name_runs_as_gd_would(plugin, tmp_path):
    """Magma-style: `optimizer` is where the parameters go, not a setting a user must give."""
    described = invoke("describe", "--plugin", plugin, "f-wrapper")
    assert described.exit_code == 0, described.output
    settings = described.output.split("hyperparameters:")[1].split()
    assert "keep" in settings and "lr" in settings and "optimizer" not in settings
    result = invoke(
        "run", "--plugin", plugin, "--optimizer", "f-wrapper", "--opt", "keep=0.25", "--lr", "0.4",
        "--epochs", "20", "--out", tmp_path / "w.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    wrapped = optbench.load_results(tmp_path / "w.csv")
    plain = optbench.run("linreg", "gd", lr=0.1, epochs=20)  # 0.4 x 0.25: the lesson's step
    assert wrapped["keep"].eq(0.25).all() and wrapped["lr"].eq(0.4).all()
    assert wrapped["loss"].to_numpy() == pytest.approx(plain["loss"].to_numpy(), rel=1e-6)
    assert wrapped["loss"].iloc[-1] < 0.5 * wrapped["loss"].iloc[0]


def test_describe_names_a_callable_default_without_its_address(plugin):
    result = invoke("describe", "--plugin", plugin, "f-typed")
    assert result.exit_code == 0, result.output
    assert "0x" not in result.output and ".default_rule" in result.output


def test_test_plugin_does_not_call_failing_runs_deterministic(plugin):
    result = invoke("test-plugin", "--plugin", plugin, "f-raises", "--epochs", "2")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "deterministic" in line)
    assert "FAIL" in line and "this step is broken" in line


def test_a_tuple_setting_in_a_sweep_flag_is_one_value(tmp_path):
    one = invoke(
        "sweep",
        "--optimizer",
        "torch-adam",
        "--opt",
        "betas=0.9,0.99",
        "--epochs",
        "2",
        "--out",
        tmp_path / "a.parquet",
    )
    assert one.exit_code == 0 and "1 runs" in one.output, one.output
    assert set(optbench.load_results(tmp_path / "a.parquet")["betas"]) == {"0.9,0.99"}
    grid = "betas=0.9,0.99;0.8,0.9"
    two = invoke("sweep", "--optimizer", "torch-adam", "--opt", grid, "--epochs", "2", "--out", tmp_path / "b.parquet")
    assert two.exit_code == 0 and "2 runs" in two.output, two.output


@pytest.mark.parametrize("text", ["1_0", "\u0660.\u0661"])
def test_numbers_are_plain_ascii(text):
    result = invoke("run", "--lr", text)
    assert result.exit_code == 2 and "is not a number" in result.output


def test_an_optimizer_that_draws_random_numbers_gives_the_same_run_twice(plugin, tmp_path):
    for name in ("a", "b"):
        args = ("sweep", "--plugin", plugin, "--optimizer", "f-random", "--seeds", "0-2", "--epochs", "3")
        assert invoke(*args, "--out", tmp_path / f"{name}.parquet").exit_code == 0
    a, b = (optbench.load_results(tmp_path / f"{name}.parquet") for name in ("a", "b"))
    assert a["loss"].tolist() == b["loss"].tolist()
    assert a.groupby("seed")["loss"].last().nunique() == 3  # seeded by the run: each seed its own noise
