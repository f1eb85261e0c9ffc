"""Limits and checks in one place: flags, sweep TOML files and baselines get the same checks and messages,
files never import modules on their own, and sizes are refused before anything is built."""

import json

import pytest
from support import invoke

import optbench
from optbench.settings import validate

EVIL = "optbench_test_evil"  # a module whose import leaves a mark: importing it is running its code


def one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optbench: error: "), result.output
    return lines[0].removeprefix("optbench: error: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0-999999999"], "--seeds '0-999999999' gives 1,000,000,000 values"),
        (["--lr", "1e-4:1:1000000000"], "--lr '1e-4:1:1000000000' gives 1,000,000,000 values"),
        (["--seeds", "0-999", "--lr", "1e-4:1:101"], "the grid has 101,000 runs, above the limit of 100,000"),
        (
            ["--seeds", "0-1", "--lr", "0.1,0.2", "--max-runs", "3"],
            "the grid has 4 runs, above the limit of 3; pass --max-runs 4",
        ),
        (["--epochs", "10000000"], "--epochs 10000000 is above the limit of 100000 epochs per run"),
        (["--epochs", "5", "--max-epochs", "4"], "pass --max-epochs 5 to allow it"),
        (["--seeds", "18446744073709551616"], "--seeds 18446744073709551616 is out of range"),
        (["--lr", "0.1", "--opt", "lr=0.2"], "--lr and --opt lr= both set the learning rate"),
        (["--optimizer", "torch-sgd", "--opt", "momentum=0", "--opt", "momentum=0.9"], "--opt momentum is given twice"),
        (["--jobs", "0"], "--jobs 0 is out of range; expected a whole number >= 1"),
    ],
)
def test_limits_and_conflicts_are_refused_at_once(tmp_path, args, message, monkeypatch):
    from optbench.settings.grid import Grid

    def built(self):
        raise AssertionError("the grid's runs were built before its size was checked")

    monkeypatch.setattr(Grid, "jobs", built)  # counted, not built
    result = invoke("sweep", *args, "--out", tmp_path / "s.parquet")
    assert message in one_line_error(result)
    assert not (tmp_path / "s.parquet").exists()


def test_a_setting_of_the_wrong_type_is_refused_before_any_run(tmp_path):
    result = invoke("sweep", "--optimizer", "torch-sgd", "--opt", "momentum=abc", "--out", tmp_path / "s.parquet")
    assert "--opt momentum=abc: expected a number" in one_line_error(result)
    assert not (tmp_path / "s.parquet").exists()


def test_a_raised_limit_lets_the_grid_run(tmp_path):
    result = invoke(
        "sweep", "--seeds", "0-3", "--max-runs", "4", "--epochs", "4", "--max-epochs", "4", "--out", tmp_path / "s.csv"
    )
    assert result.exit_code == 0 and result.output.startswith("4 runs (4 ok")


def test_jobs_are_capped_at_the_useful_number(tmp_path):
    assert validate.jobs(12, 2, 16) == 2 and validate.jobs(12, 40, 4) == 4 and validate.jobs(3, 40, None) == 3
    result = invoke("sweep", "--seeds", "0-1", "--epochs", "2", "--jobs", "12", "--out", tmp_path / "s.parquet")
    assert result.exit_code == 0 and "--jobs 12: starting 1 process(es)" in result.output


def toml(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text('problems = ["linreg"]\noptimizers = ["gd", "torch-sgd"]\n' + text)
    return path


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ('epochs = "abc"\n', ["--epochs", "abc"]),
        ("epochs = 0\n", ["--epochs", "0"]),
        ("epochs = 10000000\n", ["--epochs", "10000000"]),
        ("lr = -1\n", ["--lr", "-1"]),
        ('lr = "abc"\n', ["--lr", "abc"]),
        ("seeds = -1\n", ["--seeds", "-1"]),
        ("batch_size = 0\n", ["--batch-size", "0"]),
        ("[opt.torch-sgd]\nmomentum = true\n", ["--opt", "momentum=true"]),
        ('[opt.torch-sgd]\nmomentum = "abc"\n', ["--opt", "momentum=abc"]),
    ],
)
def test_toml_values_get_the_flags_checks_and_messages(tmp_path, text, flags):
    config = toml(tmp_path, text)
    from_file = one_line_error(invoke("sweep", "--config", config, "--out", tmp_path / "a.parquet"))
    from_flags = one_line_error(invoke("sweep", "--optimizer", "gd,torch-sgd", *flags, "--out", tmp_path / "b.parquet"))
    flag = flags[0]
    key = {"--batch-size": "batch_size", "--opt": "opt"}.get(flag, flag.removeprefix("--"))
    # the same words, with the file and its key where the flag was
    assert from_file.replace(f"{config}: {key}", flag) == from_flags.replace(f"{flag} --", "--")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr = []\n", "s.toml: lr: the grid is empty"),
        ("seeds = []\n", "s.toml: seeds: the grid is empty"),
        ("[opt.sgdd]\nlr = 0.1\n", "[opt.sgdd] is not one of this grid's optimizers (did you mean 'gd'?); its optim"),
        (
            "[opt.torch-sgd]\nmomentm = 0.9\n",
            "s.toml: opt momentm: optimizer 'torch-sgd' takes no setting 'momentm'",
        ),
        ("[opt.torch-adam]\nlr = 0.1\n", "[opt.torch-adam] is not one of this grid's optimizers"),
        ("opt = 3\n", "opt must be tables such as [opt.gd]"),
        ("[problem_opt.linreg]\nn = []\n", "problem_opt.linreg.n: the grid is empty"),
        ('schedule = "wavy"\n', "s.toml: schedule 'wavy' is not valid"),  # the file's key, not a flag
        ("device = 3\n", "device 3 is not text"),
        ('select = "best"\n', "select 'best' is not valid; valid: final, time"),
        ("tune_seeds = [-1]\n", "tune_seeds -1 is out of range"),
        ("epoch = 3\n", "unknown key 'epoch' (did you mean 'epochs'?)"),
    ],
)
def test_bad_toml_values_are_one_line(tmp_path, text, message):
    config = toml(tmp_path, text)
    assert message in one_line_error(invoke("sweep", "--config", config, "--out", tmp_path / "a.parquet"))


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """An importable module that writes a mark when imported (as torch.hub:load runs hubconf.py)."""
    (tmp_path / f"{EVIL}.py").write_text(
        f"import pathlib\npathlib.Path({str(tmp_path / 'ran')!r}).write_text('ran')\nclass Opt:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "ran"


def test_a_sweep_file_cannot_import_a_module(tmp_path, evil):
    config = tmp_path / "s.toml"
    config.write_text(f'problems = "linreg"\noptimizers = ["gd", "{EVIL}:Opt"]\n')
    message = one_line_error(invoke("sweep", "--config", config, "--out", tmp_path / "s.parquet"))
    assert f"optimizer '{EVIL}:Opt' is an import path; a file may name only registered optimizers" in message
    assert "--allow-import-paths" in message and not evil.exists()
    config.write_text(f'problems = "{EVIL}:Problem"\noptimizers = "gd"\n')
    assert "is an import path" in one_line_error(invoke("sweep", "--config", config, "--out", tmp_path / "s.parquet"))
    allowed = invoke("sweep", "--config", config, "--allow-import-paths", "--out", tmp_path / "s.parquet")
    assert allowed.exit_code == 2 and evil.exists()  # asked for on the command line: imported (and refused: no class)


def test_a_flag_may_still_name_an_import_path(tmp_path):
    result = invoke(
        "sweep", "--optimizer", "torch.optim:SGD", "--lr", "0.1", "--epochs", "2", "--out", tmp_path / "s.csv"
    )
    assert result.exit_code == 0, result.output


@pytest.fixture
def baseline(tmp_path):
    matrix = tmp_path / "m.toml"
    matrix.write_text('epochs = 3\nseeds = [0]\n[[cells]]\nproblems = "linreg"\noptimizers = ["gd", "torch-adam"]\n')
    path = tmp_path / "b.json"
    made = invoke("baseline", "--config", matrix, "--out", path)
    assert made.exit_code == 0, made.output
    return path


def edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["cells"]["linreg/gd"].update(final="abc"), "cell 'linreg/gd': final: 'abc' is not a number"),
        (lambda d: d["cells"]["linreg/gd"].update(final=True), "final: True is not a number"),
        (lambda d: d["cells"]["linreg/gd"].update(per_seed=3), "per_seed 3 is not a list of numbers"),
        (lambda d: d["cells"]["linreg/gd"].update(per_seed=["x"]), "per_seed: 'x' is not a number"),
        (lambda d: d["cells"]["linreg/gd"].update(metric="accuracy"), "metric 'accuracy' is not suboptimality or loss"),
        (lambda d: d["cells"]["linreg/gd"].update(status=1), "status 1 is not ok, diverged or error"),
        (lambda d: d["cells"]["linreg/gd"].update(steps_to_target=[]), "steps_to_target: [] is not a number or null"),
        (lambda d: d["cells"]["linreg/gd"].pop("final"), "expected the fields final, metric, per_seed"),
        (lambda d: d["cells"].update({"linreg/gd": "ok"}), "expected the fields"),
        (
            lambda d: d["matrix"]["cells"][0].update(epochs="abc"),
            "epochs 'abc' is not a whole number; expected e.g. 10",
        ),
        (lambda d: d["matrix"]["cells"][0].update(seeds=[-1]), "seeds -1 is out of range"),
        (lambda d: d["matrix"]["cells"][0].update(lr=-1), "lr -1 is out of range"),
        (lambda d: d["matrix"]["cells"][0].update(rtol="x"), "rtol 'x' is not a number"),
        (lambda d: d["matrix"]["cells"][0].update(opt=[1]), "opt must be a table"),
        (lambda d: _with_opt(d, "momentum", 0.9), "optimizer 'gd' takes no setting 'momentum'"),
        (lambda d: _with_opt(d, "lr", "abc"), "cell 'linreg/gd/lr=abc': opt lr=abc: expected a number"),
        (lambda d: d["matrix"].update(cells=[1]), "expected a table with problems and optimizers"),
        (lambda d: d.update(matrix=[]), "expected a table of settings and [[cells]]"),
    ],
)
def test_wrong_baseline_values_are_one_line(baseline, change, message):
    assert message in one_line_error(invoke("check", "--baseline", edit(baseline, change)))


def _with_opt(data, key, value):
    """A hyperparameter added to the matrix, and the cells renamed to match (a hand edit done right)."""
    data["matrix"]["cells"][0]["opt"] = {key: value}
    data["cells"] = {f"{cell}/{key}={value}": stored for cell, stored in data["cells"].items()}


def test_a_baseline_cannot_import_a_module(baseline, evil):
    def plant(data):
        data["matrix"]["cells"][0]["optimizers"] = [f"{EVIL}:Opt"]

    message = one_line_error(invoke("check", "--baseline", edit(baseline, plant)))
    assert "is an import path; a file may name only registered optimizers" in message and not evil.exists()


def test_check_json_is_strict_and_junit_is_written_atomically(baseline, tmp_path):
    def diverged(data):  # a stored cell that had diverged: final inf, written as a string
        data["cells"]["linreg/gd"].update(final="inf", status="diverged", per_seed=["inf"], steps_to_target=None)

    edit(baseline, diverged)
    target = tmp_path / "elsewhere.xml"
    target.write_text("not mine to overwrite")
    junit = tmp_path / "check.xml"
    junit.symlink_to(target)
    verdicts = tmp_path / "check.json"
    result = invoke("check", "--baseline", baseline, "--junit-xml", junit, "--json", verdicts)
    assert result.exit_code in (0, 1), result.output

    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    data = json.loads(verdicts.read_text(), parse_constant=refuse)
    gd = next(d for d in data if d["cell"] == "linreg/gd")
    assert gd["baseline"]["final"] == "inf"
    assert target.read_text() == "not mine to overwrite" and not junit.is_symlink()
    assert junit.read_text().startswith("<?xml")
    stored = json.loads(baseline.read_text(), parse_constant=refuse)  # `baseline` writes strict JSON too
    assert stored["optbench_baseline"] == 1


def test_check_refuses_an_unwritable_report_path_before_running(baseline, tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr("optbench.quality.regression.measure", lambda *a, **k: ran.append(1))
    message = one_line_error(invoke("check", "--baseline", baseline, "--junit-xml", "/proc/optbench/c.xml"))
    assert "/proc/optbench" in message and "cannot be made" in message and not ran  # a missing folder is made


def test_an_unknown_opt_is_an_error_even_for_kwargs_classes():
    import torch

    @optbench.register_optimizer("test-kwargs", override=True)
    class Kwargs(torch.optim.SGD):
        def __init__(self, params, lr=0.1, momentum=0.0, **kwargs):
            super().__init__(params, lr=lr, momentum=momentum)

    result = invoke("run", "--optimizer", "test-kwargs", "--opt", "momentun=0.9", "--epochs", "1")
    message = one_line_error(result)
    assert "takes no setting 'momentun' (did you mean 'momentum'?); valid settings: lr, momentum" in message
    assert "its **kwargs are not open to unnamed settings" in message
    with pytest.raises(optbench.OptbenchError, match="takes no setting 'typo'"):
        optbench.run("linreg", "test-kwargs", typo=1, epochs=1)
