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
