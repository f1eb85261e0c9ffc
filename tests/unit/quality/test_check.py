"""Quality regression checks: baseline, check, verdicts, reports, bad input."""

import json
import os
import xml.etree.ElementTree as ET

import pytest
from support import ROOT, invoke

import optbench
from optbench.quality.regression import expand, load_baseline, load_matrix

# An optimizer whose step size the test can spoil: gd with its lr scaled by an environment variable.
SCALED_GD = '''
import os, torch, optbench
from optbench.optimizers.gd import GradientDescent

@optbench.register_optimizer("test-scaled-gd", override=True)
class ScaledGD(GradientDescent):
    """gd with lr multiplied by OPTBENCH_TEST_LR_SCALE: a regression on demand."""

    @torch.no_grad()
    def step(self, closure=None):
        scale = float(os.environ.get("OPTBENCH_TEST_LR_SCALE", "1"))
        for group in self.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * scale
        return super().step(closure)
'''

MATRIX = """
epochs = 30
seeds = [0, 1, 2]
[[cells]]
problems = ["linreg", "classification"]
optimizers = ["test-scaled-gd", "torch-adam"]
lr = 0.1
"""


@pytest.fixture
def setup(tmp_path):
    plugin = tmp_path / "scaled.py"
    plugin.write_text(SCALED_GD)
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    baseline = tmp_path / "baseline.json"
    made = invoke("baseline", "--plugin", plugin, "--config", matrix, "--out", baseline)
    assert made.exit_code == 0, made.output
    assert made.output.strip() == f"baseline of 4 cells written to {baseline}"
    return {"plugin": plugin, "matrix": matrix, "baseline": baseline, "dir": tmp_path}


def check(setup, *extra):
    return invoke("check", "--plugin", setup["plugin"], "--baseline", setup["baseline"], *extra)


def rows(output):
    return {line.split()[0]: line.split() for line in output.splitlines() if "/" in line.split()[0]}


def test_baseline_contents(setup):
    data = json.loads(setup["baseline"].read_text())
    cell = data["cells"]["linreg/test-scaled-gd/lr=0.1"]
    assert cell["metric"] == "suboptimality" and cell["status"] == "ok"
    assert len(cell["per_seed"]) == 3 and cell["final"] == sorted(cell["per_seed"])[1]  # the median
    # the same numbers straight from the runner: median over seeds of the final loss - f*, in float64
    gaps = []
    for seed in (0, 1, 2):
        df = optbench.run("linreg", "gd", lr=0.1, epochs=30, seed=seed, problem_options={"dtype": "float64"})
        gaps.append(df["loss"].iloc[-1] - df["optimum"].iloc[0])
    assert cell["per_seed"] == pytest.approx(gaps, rel=1e-12)
    first_hit = (df["loss"] - df["optimum"] <= 0.1 * (df["loss"].iloc[0] - df["optimum"].iloc[0])).idxmax()
    assert cell["steps_to_target"] is not None and 0 < first_hit <= 30
    assert data["cells"]["classification/torch-adam/lr=0.1"]["metric"] == "loss"


def test_an_unchanged_tree_passes(setup):
    result = check(setup, "--config", setup["matrix"])
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert len(table) == 4 and all(r[-1] == "ok" and r[4] == "+0.0%" for r in table.values())
    assert "4 cells: 0 failed, 0 improved" in result.output


def test_a_worse_optimizer_fails_naming_the_cell(setup, monkeypatch):
    monkeypatch.setenv("OPTBENCH_TEST_LR_SCALE", "0.5")
    junit, verdicts = setup["dir"] / "check.xml", setup["dir"] / "check.json"
    result = check(setup, "--junit-xml", junit, "--json", verdicts)
    assert result.exit_code == 1
    table = rows(result.output)
    assert table["linreg/test-scaled-gd/lr=0.1"][-1] == "WORSE"
    assert table["classification/test-scaled-gd/lr=0.1"][-1] == "WORSE"
    assert table["linreg/torch-adam/lr=0.1"][-1] == "ok"  # the others are untouched
    assert "FAILED linreg/test-scaled-gd/lr=0.1: final suboptimality beyond rtol 0.05" in result.output
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "2"
    failed = {case.get("name") for case in suite if case.find("failure") is not None}
    assert failed == {"linreg/test-scaled-gd/lr=0.1", "classification/test-scaled-gd/lr=0.1"}
    data = json.loads(verdicts.read_text())
    assert {d["cell"] for d in data if d["failed"]} == failed


def test_a_cell_that_now_diverges_fails(setup, monkeypatch):
    monkeypatch.setenv("OPTBENCH_TEST_LR_SCALE", "1e40")  # overflows float64 within a few steps
    result = check(setup)
    assert result.exit_code == 1
    assert rows(result.output)["linreg/test-scaled-gd/lr=0.1"][-1] == "DIVERGES"
    assert "FAILED linreg/test-scaled-gd/lr=0.1: a run now diverges" in result.output


def test_an_improvement_is_reported_and_passes(setup, monkeypatch):
    monkeypatch.setenv("OPTBENCH_TEST_LR_SCALE", "1.5")
    result = check(setup)
    assert result.exit_code == 0, result.output
    assert rows(result.output)["linreg/test-scaled-gd/lr=0.1"][-1] == "improved"


def test_more_steps_to_target_fails(tmp_path, setup, monkeypatch):
    """Same final loss, reached later: a tolerance wide on loss still catches the slowdown."""
    loose = setup["dir"] / "loose.toml"
    loose.write_text(MATRIX.replace("epochs = 30", "epochs = 60\nrtol = 1e6\natol = 1"))
    baseline = setup["dir"] / "loose.json"
    assert invoke("baseline", "--plugin", setup["plugin"], "--config", loose, "--out", baseline).exit_code == 0
    monkeypatch.setenv("OPTBENCH_TEST_LR_SCALE", "0.7")
    result = invoke("check", "--plugin", setup["plugin"], "--baseline", baseline)
    assert result.exit_code == 1
    assert rows(result.output)["linreg/test-scaled-gd/lr=0.1"][-1] == "SLOWER"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.json", "does not exist; make one with `optbench baseline`"),
        (lambda d: _write(d / "corrupt.json", '{"optbench_baseline": 1, "cells": {'), "is corrupt"),
        (lambda d: _write(d / "other.json", '{"hello": "world"}'), "is not an optbench baseline"),
    ],
)
def test_bad_baseline_files(setup, make, message):
    result = invoke("check", "--baseline", make(setup["dir"]))
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


def test_a_baseline_from_another_matrix(setup):
    other = setup["dir"] / "other.toml"
    other.write_text(MATRIX.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    result = check(setup, "--config", other)
    assert result.exit_code == 2 and "was made from another matrix" in result.output
    data = json.loads(setup["baseline"].read_text())
    del data["cells"]["linreg/torch-adam/lr=0.1"]
    _write(setup["dir"] / "cut.json", json.dumps(data))
    cut = invoke("check", "--baseline", setup["dir"] / "cut.json")
    assert cut.exit_code == 2 and "cells do not match its matrix" in cut.output
    many = json.loads(setup["baseline"].read_text())  # very many seeds: it ran for minutes before a check refused it
    for cell in many["matrix"]["cells"]:
        cell["seeds"] = list(range(20_000))
    _write(setup["dir"] / "many.json", json.dumps(many))
    refused = invoke("check", "--baseline", setup["dir"] / "many.json")
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
    assert "has 20,000 seeds in its matrix but 3 stored results; make it again" in refused.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs = 3\n", "needs at least one [[cells]] table"),
        ("epoch = 3\n[[cells]]\nproblems='linreg'\noptimizers='gd'\n", "unknown key 'epoch' (did you mean 'epochs'?)"),
        ("[[cells]]\nproblems='linreg'\n", "needs optimizers"),
        ("[[cells]\n", "is not valid TOML"),
    ],
)
def test_bad_matrix_files(tmp_path, text, message):
    matrix = _write(tmp_path / "m.toml", text)
    result = invoke("baseline", "--config", matrix, "--out", tmp_path / "b.json")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert message in result.output


def test_the_committed_baseline_covers_every_built_in_on_both_problems():
    baseline = load_baseline(ROOT / "benchmarks" / "baseline.json")
    assert baseline["matrix"] == load_matrix(ROOT / "benchmarks" / "matrix.toml")
    covered = {(c.problem, c.optimizer) for c in expand(baseline["matrix"])}
    built_in = [n for n in optbench.list_optimizers() if optbench.get_optimizer(n).source == "built-in"]
    anywhere = [n for n in built_in if not optbench.get_optimizer(n).roles]
    assert {(p, o) for p in ("linreg", "classification") for o in anywhere} <= covered
    for name in set(built_in) - set(anywhere):  # Muon: matrices only, alone and with AdamW on the rest
        assert {("matrix-factorization", name), ("classification", f"{name}+torch-adamw")} <= covered


def _write(path, text):
    path.write_text(text)
    return path


def test_check_help():
    for command in ("baseline", "check"):
        assert invoke(command, "--help").exit_code == 0
    assert os.environ.get("OPTBENCH_TEST_LR_SCALE") is None


def test_the_pytest_fixture_for_users(setup, pytester, monkeypatch):
    pytester.makepyfile(
        f"""
        from optbench.registry.plugins import load_file

        load_file({str(setup["plugin"])!r})

        def test_within_baseline(optbench_regression):
            verdicts = optbench_regression({str(setup["baseline"])!r})
            assert len(verdicts) == 4
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("OPTBENCH_TEST_LR_SCALE", "0.5")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*linreg/test-scaled-gd/lr=0.1*WORSE*", "*2 failed, 0 improved*"])
