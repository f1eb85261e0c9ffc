"""The three plugin routes end to end: entry points, import paths, local files."""

import importlib
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support import ROOT, invoke

import optbench
from optbench.errors import PluginError

MY_PLUGINS = ROOT / "examples" / "my_plugins.py"


def optbench_cli(*args, env=None):
    """The installed console script in a fresh process: discovery as a user meets it."""
    exe = Path(sys.executable).with_name("optbench")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


@dataclass
class Answer:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def discovering(monkeypatch):
    """``optbench_cli`` in this process, as a fresh one would discover plugins: ``env``'s PYTHONPATH on
    sys.path and its switches set, the registries as a fresh process holds them (:meth:`Registry.reset`),
    everything put back after (:func:`optbench.registry.snapshot`). A fresh process costs 2-3 s of torch
    import; the end-to-end test and the broken site's first listing keep one."""
    from optbench.registry import OPTIMIZERS, PROBLEMS, snapshot

    modules = set(sys.modules)

    def as_a_fresh_process(*args, env=None):
        env = dict(env or {})
        paths = env.pop("PYTHONPATH", "").split(os.pathsep)
        with monkeypatch.context() as patch:
            patch.setattr(sys, "path", [p for p in paths if p] + sys.path)
            for key, value in env.items():
                patch.setenv(key, value)
            importlib.invalidate_caches()
            for registry in (OPTIMIZERS, PROBLEMS):
                registry.reset()
            result = invoke(*args)
        return Answer(result.exit_code, result.stdout, result.stderr)

    with snapshot():
        yield as_a_fresh_process
    for name in set(sys.modules) - modules:  # e.g. a broken site's raising_optimizer: another test's is another file
        del sys.modules[name]


# --- route 1: entry points (the example distribution examples/optbench-lion, installed by conftest)


def test_entry_point_plugin_end_to_end(tmp_path):
    listed = optbench_cli("list", "l*")
    assert listed.returncode == 0 and "  lion  Lion: step along the sign" in listed.stdout
    out = tmp_path / "lion.parquet"
    ran = optbench_cli("run", "--problem", "classification", "--optimizer", "lion", "--lr", "0.01", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    assert "test acc." in ran.stdout
    expected = optbench.run("classification", "lion", lr=0.01)
    pd.testing.assert_frame_equal(optbench.load_results(out).drop(columns="time_s"), expected.drop(columns="time_s"))
    assert expected["test_accuracy"].iloc[-1] >= 0.9


def test_lion_follows_its_update_rule():
    """One step by hand from the paper: m = 0, so c = (1 - beta1) g and p -= lr * sign(g)."""
    import torch

    lion = optbench.get_optimizer("lion").target
    p = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    p.grad = torch.tensor([0.3, -0.2, 0.0])
    opt.step()
    # p * (1 - lr * wd) - lr * sign(c): [1 * 0.95 - 0.1, -2 * 0.95 + 0.1, 3 * 0.95 - 0]
    torch.testing.assert_close(p.detach(), torch.tensor([0.85, -1.8, 2.85]))
    torch.testing.assert_close(opt.state[p]["exp_avg"], torch.tensor([0.003, -0.002, 0.0]))


def test_listing_names_imports_no_plugin():
    code = "import sys, optbench; print('lion' in optbench.list_optimizers(), 'optbench_lion' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


# --- route 2: import paths


def test_import_path_optimizer_and_problem(tmp_path):
    result = invoke(
        "run",
        "--optimizer",
        "optbench_lion:Lion",
        "--lr",
        "0.01",
        "--opt",
        "betas=0.8,0.9",
        "--epochs",
        "30",
        "--plugin",
        MY_PLUGINS,
        "--problem",
        "examples_free_problem:Quadratic",
    )
    # the problem module does not exist: one clear line
    assert result.exit_code == 2
    assert result.output.strip() == (
        "optbench: error: problem 'examples_free_problem:Quadratic': no module named 'examples_free_problem'"
    )
    ok = invoke("run", "--optimizer", "optbench_lion:Lion", "--lr", "0.01", "--opt", "betas=0.8,0.9")
    assert ok.exit_code == 0, ok.output
    df = optbench.run("linreg", "optbench_lion:Lion", lr=0.01, betas=(0.8, 0.9))
    assert df["betas"].iloc[0] == "0.8,0.9" and df["optimizer"].iloc[0] == "optbench_lion:Lion"
    torch_path = optbench.run("linreg", "torch.optim:SGD", lr=0.1, epochs=5)
    assert torch_path["loss"].tolist() == optbench.run("linreg", "torch-sgd", lr=0.1, epochs=5)["loss"].tolist()


def test_import_path_problem(tmp_path, monkeypatch):
    (tmp_path / "shifted_quadratic.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Quadratic:
                '''f(w) = |w - 3|^2, minimum 0.'''
                n_train = 1
                optimum = 0.0

                def __init__(self, seed=0, *, dim: int = 4):
                    self.w = torch.zeros(dim, requires_grad=True)

                def parameters(self):
                    return [self.w]

                def loss(self, idx=None):
                    return ((self.w - 3) ** 2).sum()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    df = optbench.run("shifted_quadratic:Quadratic", "gd", lr=0.1, epochs=50, problem_options={"dim": 2})
    # gd on |w - 3|^2: the error shrinks by (1 - 2 lr) = 0.8 a step, so loss_t = 18 * 0.64^t
    assert df["loss"].iloc[0] == 18.0
    assert df["loss"].iloc[10] == pytest.approx(18 * 0.64**10, rel=1e-5)
    assert df["problem_dim"].iloc[0] == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("optbench_lion:Nope", "optimizer 'optbench_lion:Nope': module 'optbench_lion' has no attribute 'Nope'"),
        ("math:pi", "optimizer 'math:pi' is a float, not a class; expected a class with step() and zero_grad()"),
        ("collections:OrderedDict", "class OrderedDict has no step() and zero_grad()"),
        ("nosuchmodule:X", "optimizer 'nosuchmodule:X': no module named 'nosuchmodule'"),
        (":X", "expected an import path like package.module:ClassName"),
    ],
)
def test_bad_import_paths_are_one_line(name, message):
    result = invoke("run", "--optimizer", name)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


# --- route 3: local files


def test_local_file_plugin_adds_a_problem_and_an_optimizer():
    result = invoke(
        "run", "--plugin", MY_PLUGINS, "--problem", "my-rosenbrock", "--optimizer", "heavy-ball", "--epochs", "2000"
    )
    assert result.exit_code == 0, result.output
    assert "heavy-ball on my-rosenbrock: 2000 steps" in result.output
    df = optbench.run("my-rosenbrock", "heavy-ball", epochs=2000)
    assert df["loss"].iloc[0] == pytest.approx(2.5**2 + 100 * (2 - 2.25) ** 2)  # at the start (-1.5, 2)
    assert df["loss"].iloc[-1] < 1e-6  # into the valley's bottom at (1, 1)


def test_broken_and_clashing_files(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import optbench\ndef broken(:\n")
    result = invoke("run", "--plugin", bad)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"optbench: error: --plugin '{bad}' failed to import: SyntaxError: invalid syntax (bad.py, line 2)"
    ]
    clash = tmp_path / "clash.py"
    clash.write_text("import torch, optbench\noptbench.register_optimizer('gd')(torch.optim.SGD)\n")
    result = invoke("list", "--plugin", clash)
    assert result.exit_code == 2
    assert f"optimizer 'gd' is registered twice: by built-in and by file {clash}" in result.output
    missing = invoke("run", "--plugin", tmp_path / "nope.py")
    assert missing.exit_code == 2 and "does not exist" in missing.output


# --- broken entry points, the off switch, collisions


def _fake_distribution(folder: Path, name: str, entry_points: str) -> None:
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def broken_site(tmp_path):
    (tmp_path / "raising_optimizer.py").write_text(
        "import torch\n\nclass Raises(torch.optim.SGD):\n"
        "    def __init__(self, params, lr=0.1):\n        raise RuntimeError('needs a GPU')\n"
    )
    _fake_distribution(
        tmp_path,
        "broken_plugins",
        "[optbench.optimizers]\n"
        "missing-module = optbench_no_such_module:Opt\n"
        "wrong-type = math:pi\n"
        "raises = raising_optimizer:Raises\n"
        "gd = torch.optim:Adam\n",
    )
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]])}


def test_broken_entry_points_are_one_line_each_and_break_nothing_else(broken_site, discovering):
    listed = optbench_cli("list", env=broken_site)  # a fresh process; the rest in this one, as fresh
    assert listed.returncode == 0
    assert "  lion " in listed.stdout and re.search(r"^  gd +Hand-written", listed.stdout, re.M)  # not the plugin's
    warnings = listed.stderr.strip().splitlines()
    assert len(warnings) == 3, listed.stderr
    entry = "entry point optbench.optimizers:{} = {} from broken_plugins 1.0"
    missing = entry.format("missing-module", "optbench_no_such_module:Opt")
    assert (
        f"optbench: warning: optimizer plugin 'missing-module' ({missing}) failed to load: "
        "ModuleNotFoundError: No module named 'optbench_no_such_module'" in warnings
    )
    assert any("'wrong-type'" in w and "is a float, not a class" in w for w in warnings)
    assert any(f"'gd' ({entry.format('gd', 'torch.optim:Adam')}) clashes with built-in" in w for w in warnings)

    raised = discovering("run", "--optimizer", "raises", env=broken_site)
    assert raised.returncode == 2
    assert raised.stderr.strip() == (
        f"optbench: error: optimizer 'raises' ({entry.format('raises', 'raising_optimizer:Raises')}) failed to build: "
        "RuntimeError: needs a GPU"
    )
    wrong = discovering("run", "--optimizer", "wrong-type", env=broken_site)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1

    fine = discovering("run", "--optimizer", "gd", "--epochs", "5", env=broken_site)
    assert fine.returncode == 0 and fine.stderr == ""  # the built-in gd, untouched by the clash


def test_the_off_switch_and_the_allow_list(broken_site, discovering):
    off = discovering("list", env={**broken_site, "OPTBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert off.returncode == 0 and "lion" not in off.stdout and off.stderr == ""
    only = discovering("list", env={**broken_site, "OPTBENCH_PLUGINS": "lion"})
    assert "  lion " in only.stdout and "raises" not in only.stdout and only.stderr == ""
    refused = discovering("run", "--optimizer", "lion", env={**broken_site, "OPTBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert refused.returncode == 2 and "unknown optimizer 'lion'" in refused.stderr


def test_the_same_entry_point_twice_is_one_plugin(tmp_path, discovering):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _fake_distribution(tmp_path / folder, "dup", "[optbench.optimizers]\ntwice = torch.optim:SGD\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b"), os.environ["PYTHONPATH"]])}
    listed = discovering("list", "twice", env=env)
    assert listed.returncode == 0 and listed.stdout.count("twice") == 1 and listed.stderr == ""


# --- describe


def test_describe_a_built_in():
    out = invoke("describe", "torch-sgd").output
    assert "torch-sgd (optimizer)" in out and "source      built-in" in out
    assert "batch size  full batch" in out
    assert "momentum" in out and "nesterov" in out and "foreach" not in out


def test_describe_an_entry_point_plugin(discovering):
    out = discovering("describe", "lion").stdout
    assert "source      entry point optbench.optimizers:lion = optbench_lion:Lion from optbench-lion 0.1.0" in out
    assert "lr            float                0.0001" in out
    assert "betas         tuple[float, float]  (0.9, 0.99)" in out


def test_describe_an_import_path_and_a_file_and_a_problem():
    out = invoke("describe", "torch.optim:RMSprop").output
    assert "source      import path torch.optim:RMSprop" in out and "alpha" in out
    out = invoke("describe", "--plugin", MY_PLUGINS, "my-rosenbrock").output
    assert "my-rosenbrock (problem)" in out and f"source      file {MY_PLUGINS}" in out and "start" in out
    bad = invoke("describe", "adamw")
    assert bad.exit_code == 2 and "did you mean 'torch-adamw'?" in bad.output


def test_registry_api_errors():
    with pytest.raises(PluginError, match="no module named"):
        optbench.get_optimizer("no_such_pkg.mod:Opt")


# --- a file over an installed plugin

SHADOW = """
import torch, optbench

@optbench.register_optimizer("lion"{override})
class MyLion(torch.optim.SGD):
    '''A file's own lion.'''
"""


@pytest.mark.parametrize("override", [False, True])
def test_a_file_over_an_installed_plugin_says_so_in_one_line_unless_override(tmp_path, discovering, override):
    plugin = tmp_path / "mine.py"
    plugin.write_text(SHADOW.format(override=", override=True" if override else ""))
    described = discovering("describe", "--plugin", str(plugin), "lion")
    assert described.returncode == 0, described.stderr
    assert f"source      file {plugin}" in described.stdout  # the file's lion is the one used
    if override:
        assert described.stderr == ""
    else:
        assert described.stderr.strip().splitlines() == [
            f"optbench: warning: optimizer 'lion' from file {plugin} shadows the installed plugin of that name"
            " (entry point optbench.optimizers:lion = optbench_lion:Lion from optbench-lion 0.1.0);"
            " pass override=True to say that is meant"
        ]
