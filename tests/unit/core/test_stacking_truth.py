"""Stacking never changes a result: optimizers written the ways that fooled the old probe give, in a
stacked sweep, the numbers and statuses of the same sweep run one by one (--no-vectorize), and
`describe` says which of them stack."""

import textwrap

import pandas as pd
import pytest
from support import invoke

import optbench

PLUGINS = textwrap.dedent(
    '''
    import torch
    import optbench


    def _global_norm(params):
        return torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))


    class _SGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def _params(self):
            return [p for g in self.param_groups for p in g["params"] if p.grad is not None]


    @optbench.register_optimizer("t-global-norm")
    class GlobalNorm(_SGD):
        """Normalised gradient descent: the step divided by the norm of every gradient together."""

        @torch.no_grad()
        def step(self, closure=None):
            params = self._params()
            norm = _global_norm(params) + 1e-12
            for p in params:
                p.sub_(self.param_groups[0]["lr"] * p.grad / norm)


    @optbench.register_optimizer("t-late-scale")
    class LateScale(_SGD):
        """Plain SGD for 10 steps, then a step size set from the global gradient norm."""

        @torch.no_grad()
        def step(self, closure=None):
            self.count = getattr(self, "count", 0) + 1
            params = self._params()
            scale = 1.0 if self.count <= 10 else 1.0 / (1.0 + _global_norm(params))
            for p in params:
                p.sub_(self.param_groups[0]["lr"] * scale * p.grad)


    @optbench.register_optimizer("t-by-ndim")
    class ByNdim(_SGD):
        """SGD with weight decay on matrices only (a rule that switches on p.ndim, as AdamP's does)."""

        @torch.no_grad()
        def step(self, closure=None):
            for p in self._params():
                decay = 0.5 * p if p.ndim > 1 else 0.0
                p.sub_(self.param_groups[0]["lr"] * (p.grad + decay))


    @optbench.register_optimizer("t-closure-loss")
    class ClosureLoss(_SGD):
        """A step size that shrinks with the loss the closure returns (the plain lr without one)."""

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            lr = self.param_groups[0]["lr"] / (1.0 + (float(loss) if loss is not None else 0.0))
            for p in self._params():
                p.sub_(lr * p.grad)
            return loss


    @optbench.register_optimizer("t-requires-grad")
    class RequiresGrad(_SGD):
        """SGD over the parameters that require grad (a filter real optimizers apply)."""

        @torch.no_grad()
        def step(self, closure=None):
            for p in self._params():
                if p.requires_grad:
                    p.sub_(self.param_groups[0]["lr"] * p.grad)


    @optbench.register_optimizer("t-sneaky")
    class Sneaky(_SGD):
        """Elementwise SGD for 20 steps (longer than any probe), then normalised by the global norm."""

        @torch.no_grad()
        def step(self, closure=None):
            self.count = getattr(self, "count", 0) + 1
            params = self._params()
            norm = _global_norm(params) + 1e-12 if self.count > 20 else 1.0
            for p in params:
                p.sub_(self.param_groups[0]["lr"] * p.grad / norm)
    '''
)
FOOLED = ["t-global-norm", "t-late-scale", "t-by-ndim", "t-closure-loss", "t-requires-grad"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    path = tmp_path_factory.mktemp("stacking") / "stand_ins.py"
    path.write_text(PLUGINS)
    return path


def swept(plugin, folder, optimizer, *extra):
    out = folder / f"{optimizer}{'-alone' if extra else ''}.parquet"
    result = invoke(
        "sweep", "--plugin", plugin, "--problem", "classification", "--optimizer", optimizer,
        "--lr", "0.05,0.2", "--seeds", "0-3", "--epochs", "40", "--out", out, *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = optbench.load_results(out)
    return table.sort_values(["lr", "seed", "step"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("optimizer", [*FOOLED, "t-sneaky"])
def test_a_stacked_sweep_gives_the_numbers_of_runs_alone(plugin, tmp_path, optimizer):
    stacked = swept(plugin, tmp_path, optimizer)
    alone = swept(plugin, tmp_path, optimizer, "--no-vectorize")
    columns = ["lr", "seed", "step", "status"]
    pd.testing.assert_frame_equal(stacked[columns], alone[columns])
    pd.testing.assert_series_equal(stacked["loss"], alone["loss"], rtol=1e-5, atol=1e-7)


def test_a_class_that_would_fool_a_probe_steps_one_copy_per_run(plugin, tmp_path):
    stacked = swept(plugin, tmp_path, "t-sneaky")
    assert set(stacked["batch_runs"]) == {8}  # stacked: not declared elementwise, so never one optimizer
    assert not stacked["message"].str.startswith("trained alone").any()  # over the stack, and nothing to catch


@pytest.mark.parametrize(
    ("optimizer", "verdict"),
    [(name, "each step their own copy") for name in FOOLED] + [("torch-adam", "share one optimizer")],
)
def test_describe_tells_the_truth_about_stacking(plugin, optimizer, verdict):
    result = invoke("describe", "--plugin", plugin, optimizer)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("stacking"))
    assert verdict in line
