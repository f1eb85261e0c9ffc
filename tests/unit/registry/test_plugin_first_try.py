"""Plugins on the first try: the ways a newcomer's first plugin fails, each answered with what to do."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import invoke, sign_sgd_module

import optbench

SIGNUM = sign_sgd_module("Signum")  # a user's own file in the folder they run optbench from


def test_an_import_path_finds_a_module_in_the_current_folder(tmp_path):
    """As `python -m` would: the console script's sys.path does not hold the current folder."""
    (tmp_path / "signum_first_try.py").write_text(SIGNUM)
    exe = Path(sys.executable).with_name("optbench")
    args = [str(exe), "run", "--optimizer", "signum_first_try:Signum", "--lr", "0.01", "--epochs", "3", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([*args, "--out", "r.csv"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    table = optbench.load_results(tmp_path / "r.csv")
    assert table["optimizer"].iloc[0] == "signum_first_try:Signum" and table["status"].eq("ok").all()
    assert table["loss"].iloc[-1] < table["loss"].iloc[0]


def test_a_plugin_file_imports_its_sibling_module(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "sibling_rule_first_try.py").write_text("def update(p, lr):\n    p -= lr * p.grad\n")
    (folder / "plugin.py").write_text(
        textwrap.dedent(
            """
            import torch, optbench
            from sibling_rule_first_try import update  # next to this file, not installed

            @optbench.register_optimizer("sibling-gd", override=True)
            class SiblingGD(torch.optim.Optimizer):
                def __init__(self, params, lr=0.1):
                    super().__init__(params, {"lr": lr})

                @torch.no_grad()
                def step(self, closure=None):
                    for group in self.param_groups:
                        for p in group["params"]:
                            update(p, group["lr"])
            """
        )
    )
    result = invoke("run", "--plugin", folder / "plugin.py", "--optimizer", "sibling-gd", "--epochs", "100")
    assert result.exit_code == 0, result.output
    assert "final loss   0.081" in result.output  # the lesson's gd: lr 0.1, 100 steps
    assert sys.path[0] != str(folder)  # first only while the file ran: nothing else is shadowed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SIGNUM,
            "registered nothing; it defines optimizer or problem classes but registers none: put "
            '@optbench.register_optimizer("signum") above class Signum (import optbench)',
        ),
        (
            "X = 1\n",
            "registered nothing; it defines no class with step() and zero_grad() (an optimizer) or loss() "
            'and parameters() (a problem); register one with @optbench.register_optimizer("name") above its class',
        ),
    ],
)
def test_a_plugin_file_that_registers_nothing_says_what_to_add(tmp_path, text, expected):
    plugin = tmp_path / "unregistered.py"
    plugin.write_text(text)
    result = invoke("run", "--plugin", plugin, "--optimizer", "signum", "--epochs", "2")
    assert result.exit_code == 2
    assert result.output.strip() == f"optbench: error: --plugin {str(plugin)!r} {expected}"


def test_a_step_without_no_grad_gets_a_hint(tmp_path):
    plugin = tmp_path / "forgot.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import torch, optbench

            @optbench.register_optimizer("forgot-no-grad", override=True)
            class Forgot(torch.optim.Optimizer):
                def __init__(self, params, lr=0.1):
                    super().__init__(params, {"lr": lr})

                def step(self, closure=None):  # no @torch.no_grad(): autograd refuses p -= ...
                    for group in self.param_groups:
                        for p in group["params"]:
                            p -= group["lr"] * p.grad
            """
        )
    )
    out = tmp_path / "r.csv"
    result = invoke("run", "--plugin", plugin, "--optimizer", "forgot-no-grad", "--epochs", "2", "--out", out)
    assert result.exit_code == 1
    message = optbench.load_results(out)["message"].iloc[0]
    assert message.startswith("RuntimeError: a leaf Variable that requires grad is being used in an in-place")
    assert message.endswith("decorate step() with @torch.no_grad(), as torch.optim's optimizers do)")
    assert "hint: an optimizer changes its parameters in place" in result.output
