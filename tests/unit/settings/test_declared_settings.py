"""One declaration drives every run setting: flags, file keys, grid jobs, group key, run key, columns."""

import json
import subprocess
import sys
import textwrap

import pytest

from optbench.errors import InvalidValueError
from optbench.settings import declared

# A process in which one more run setting is declared, before anything reads the declaration; each
# check prints one JSON line. Nothing else in optbench is told about `dummy_knob`.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from optbench.settings import declared as d

    d.SETTINGS = (*d.SETTINGS, d.Setting("dummy_knob", 0, d._whole(0), "A knob nothing uses."))
    d.NAMES = tuple(s.name for s in d.SETTINGS)

    from click.testing import CliRunner
    import optbench
    from optbench.cli import cli
    from optbench.core.runner import execute, prepare

    def invoke(*args):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        return {"code": result.exit_code, "output": result.output}

    out = {}
    out["run_help"] = "--dummy-knob" in invoke("run", "--help")["output"]
    out["sweep_help"] = "--dummy-knob" in invoke("sweep", "--help")["output"]
    out["run"] = invoke("run", "--epochs", "2", "--dummy-knob", "3", "--out", "run.parquet", "-q")
    table = optbench.load_results("run.parquet")
    out["run_column"] = sorted(set(table["dummy_knob"].tolist()))
    out["run_role"] = table.attrs["optbench"]["roles"]["dummy_knob"]
    out["bad_flag"] = invoke("run", "--dummy-knob", "-1")
    for knob in ("1", "2"):
        out["sweep_" + knob] = invoke("sweep", "--epochs", "2", "--dummy-knob", knob, "--out", "s.parquet")
    swept = optbench.load_results("s.parquet")
    out["keys_by_knob"] = {str(k): v for k, v in swept.groupby("dummy_knob")["run_key"].nunique().items()}
    with open("s.toml", "w") as f:
        f.write('problems = "linreg"\\noptimizers = "gd"\\nepochs = 2\\ndummy_knob = 5\\n')
    out["file"] = invoke("sweep", "--config", "s.toml", "--out", "f.parquet")
    out["file_column"] = sorted(set(optbench.load_results("f.parquet")["dummy_knob"].tolist()))
    with open("bad.toml", "w") as f:
        f.write('problems = "linreg"\\noptimizers = "gd"\\ndummy_knob = -1\\n')
    out["bad_file"] = invoke("sweep", "--config", "bad.toml", "--out", "g.parquet")
    specs = [prepare("linreg", "gd", epochs=2, seed=s, dummy_knob=k) for s in (0, 1) for k in (7, 8)]
    out["spec_attribute"] = specs[0].dummy_knob
    out["stacked_with"] = sorted(set(execute(specs)["batch_runs"].tolist()))  # only runs of one knob stack
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def declared_once(tmp_path_factory):
    folder = tmp_path_factory.mktemp("declared")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_declared_setting_is_a_flag_of_run_and_sweep(declared_once):
    assert declared_once["run_help"] and declared_once["sweep_help"]
    assert declared_once["run"]["code"] == 0, declared_once["run"]["output"]
    bad = declared_once["bad_flag"]
    assert bad["code"] == 2 and "--dummy-knob -1 is out of range; expected a whole number >= 0" in bad["output"]


def test_a_declared_setting_is_a_column_with_the_setting_role(declared_once):
    assert declared_once["run_column"] == [3]
    assert declared_once["run_role"] == "setting"
    assert declared_once["spec_attribute"] == 7


def test_a_declared_setting_is_part_of_the_run_key(declared_once):
    assert declared_once["sweep_1"]["code"] == 0 and declared_once["sweep_2"]["code"] == 0
    assert "1 runs (1 ok" in declared_once["sweep_2"]["output"]  # knob 2 is a new run, not one resumed
    assert declared_once["keys_by_knob"] == {"1": 1, "2": 1}


def test_a_declared_setting_is_a_key_of_sweep_files_checked_as_its_flag(declared_once):
    assert declared_once["file"]["code"] == 0, declared_once["file"]["output"]
    assert declared_once["file_column"] == [5]
    bad = declared_once["bad_file"]
    assert bad["code"] == 2 and "bad.toml: dummy_knob -1 is out of range" in bad["output"]


def test_runs_that_differ_in_a_declared_setting_never_share_a_stack(declared_once):
    assert declared_once["stacked_with"] == [2]  # seeds 0 and 1 of each knob: two stacks of two


def test_the_declaration_checks_and_resolves():
    assert declared.resolve({}) == declared.defaults()
    assert declared.resolve({"warmup_steps": "4", "schedule": "cosine"})["warmup_steps"] == 4
    with pytest.raises(InvalidValueError, match=r"--warmup-stesp: not a run setting \(did you mean 'warmup_steps'"):
        declared.resolve({"warmup_stesp": 1})
    with pytest.raises(InvalidValueError, match="is too large; the largest whole number a results table holds"):
        declared.resolve({"warmup_steps": "99999999999999999999"})
    with pytest.raises(InvalidValueError, match="--schedule 'wavy' is not valid; valid: constant, cosine"):
        declared.resolve({"schedule": "wavy"})
