"""What many tests share, written once: the repository's root, the CLI called as a user's shell calls it,
and the optimizer people write first (sign-SGD), as a class and as a ``--plugin`` file.

Importable from every test module as ``support`` (pyproject: ``pythonpath = ["tests"]``).
"""

import inspect
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args, **kwargs):
    """``optbench ARGS...`` in this process; paths and numbers are passed as the text a shell would pass.

    Keyword arguments go to click's ``CliRunner.invoke`` (``env=``, ``input=``, ``catch_exceptions=``).
    """
    from click.testing import CliRunner

    from optbench.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


HEAVY = ("torch", "pandas", "seaborn", "matplotlib", "optbench_lion")  # what a refusal must not wait for

_ANSWER_ALL = f"""
import contextlib, io, json, sys
from optbench.cli import cli

answers = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(args, standalone_mode=False)
    heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
    answers.append({{"code": code, "stderr": err.getvalue(), "imported": heavy}})
print(json.dumps(answers))
"""


def answers_in_a_fresh_process(cases, cwd, env=None):
    """Each ``optbench ARGS...`` of ``cases`` in turn, in one new Python process: for each, its exit code,
    its stderr and which of :data:`HEAVY` were imported by then (the first case that imports one is the
    one named; every later case shows it too). ``env``: variables added to this process's environment."""
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _ANSWER_ALL, json.dumps([[str(a) for a in args] for args in cases])],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class SignSGD(torch.optim.Optimizer):
    """The usual hand-written optimizer: reads p.grad, ignores the closure, keeps lr in its param groups."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])


def sign_sgd_plugin(name: str = "sign-sgd") -> str:
    """The text of a ``--plugin`` file that registers :class:`SignSGD` under ``name``: the same class, as a
    user would save it next to their work."""
    header = f"import torch\nimport optbench\n\n\n@optbench.register_optimizer({name!r})\n"
    return header + inspect.getsource(SignSGD)


def sign_sgd_module(class_name: str = "SignSGD") -> str:
    """The text of a plain module defining :class:`SignSGD` as ``class_name``, registering nothing."""
    return "import torch\n\n\n" + inspect.getsource(SignSGD).replace("class SignSGD(", f"class {class_name}(", 1)


# A --plugin file of planted optimizers, for judging the judge: one better (its lr 4x inside), exact copies
# of gd (gd-twin, gd-same) and one that diverges on some seeds (flaky-gd).
PLANTED = '''
"""Planted optimizers: better, an exact copy (two), and one that diverges on some seeds."""
import optbench
from optbench.optimizers.gd import GradientDescent


@optbench.register_optimizer("boosted-gd", elementwise=True)
class BoostedGD(GradientDescent):
    """gd that steps 4x what it is told: a better default hidden inside."""

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] *= 4
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= 4


@optbench.register_optimizer("gd-twin", elementwise=True)
class TwinGD(GradientDescent):
    """An exact copy of gd."""


@optbench.register_optimizer("flaky-gd", elementwise=False)
class FlakyGD(GradientDescent):
    """gd that blows up on the runs whose first gradient's 4th decimal is odd: about half the seeds."""

    def step(self, closure=None):
        if not hasattr(self, "blows"):
            grads = [p.grad.sum() for g in self.param_groups for p in g["params"] if p.grad is not None]
            self.blows = int(abs(float(sum(grads))) * 1e4) % 2 == 1  # a coin the data flips
        scale = 1e8 if self.blows else 1.0
        for group in self.param_groups:
            group["lr"] *= scale
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= scale


@optbench.register_optimizer("gd-same", elementwise=True)
class SameGD(GradientDescent):
    """Another exact copy of gd, for a baseline listed twice under two names."""
'''


TWO_STEPS = '''
"""Two plain SGD steps per step, the second on a fresh gradient through the closure; and plain SGD renamed."""
import torch

import optbench


@optbench.register_optimizer("two-step-sgd", elementwise=True)
class TwoStepSGD(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        super().step()
        with torch.enable_grad():
            self.zero_grad()
            loss = closure()
        super().step()
        return loss


@optbench.register_optimizer("sgd-copy", elementwise=True)
class CopySGD(torch.optim.SGD):
    """torch-sgd under another name."""
'''


def two_steps_class() -> type:
    """:data:`TWO_STEPS`'s TwoStepSGD, registered (inside the caller's registry snapshot)."""
    namespace: dict = {}
    exec(compile(TWO_STEPS, "two_steps.py", "exec"), namespace)
    return namespace["TwoStepSGD"]


class Averaged(torch.optim.Optimizer):
    """A schedule-free-shaped optimizer (tests of composites and of the modes word): it steps the fast
    weights, and eval() shows their running mean."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})
        self.training = False

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def train(self):
        if not self.training:
            for p in self._params():
                if "mean" in self.state[p]:
                    p.copy_(self.state[p]["fast"])
            self.training = True

    @torch.no_grad()
    def eval(self):
        if self.training:
            for p in self._params():
                if "mean" in self.state[p]:
                    self.state[p]["fast"] = p.detach().clone()
                    p.copy_(self.state[p]["mean"])
            self.training = False

    @torch.no_grad()
    def step(self, closure=None):
        assert self.training, "call train() before stepping"
        for p in self._params():
            p.sub_(self.defaults["lr"] * p.grad)
            state = self.state[p]
            state["n"] = state.get("n", 0) + 1
            state["mean"] = p.detach().clone() if state["n"] == 1 else state["mean"] + (p - state["mean"]) / state["n"]
