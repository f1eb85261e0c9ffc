"""Sweeps: grid syntax, the vectorized engine against single runs, executors, resume, tuning, bad input."""

import os

import pandas as pd
import pytest
from support import invoke

import optbench
from optbench.errors import InvalidValueError
from optbench.settings.grid import Grid, parse_values
from optbench.studies.sweeps import sweep
from optbench.studies.tuning import tune


def normalized(df):
    df = df.sort_values(["run_key", "step"]).reset_index(drop=True).drop(columns=["time_s", "batch_runs"])
    return df[sorted(df.columns)]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0.001,0.01,0.1", [0.001, 0.01, 0.1]),
        ("0-3", [0, 1, 2, 3]),
        ("0-2,10,20-21", [0, 1, 2, 10, 20, 21]),
        ("1e-4:1:5", [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
        ("0.5", [0.5]),
        ("blobs,moons", ["blobs", "moons"]),
    ],
)
def test_grid_values(text, values):
    assert parse_values(text, "--x") == pytest.approx(values) if values and isinstance(values[0], float) else values


@pytest.mark.parametrize(
    ("text", "message"),
    [("5-1", "runs backwards"), ("1,,2", "an empty item"), ("0:1:5", "START, STOP > 0"), ("1:x:3", "START:STOP:COUNT")],
)
def test_bad_grid_values(text, message):
    with pytest.raises(InvalidValueError, match=message):
        parse_values(text, "--lr")


def test_unsupported_optimizers_fall_back_with_the_same_results(tmp_path):
    grid = Grid(
        problems=["linreg", "classification"],
        optimizers=["gd", "torch-lbfgs", "torch-rmsprop"],
        lr=[0.05, 0.5],
        seeds=[0, 1],
        epochs=4,
    )
    fast = sweep(grid, tmp_path / "a.parquet")
    slow = sweep(grid, tmp_path / "b.parquet", vectorize=False)
    pd.testing.assert_frame_equal(normalized(fast), normalized(slow), check_exact=False, rtol=1e-5)
    assert fast["run_key"].nunique() == 2 * 3 * 2 * 2


def test_every_executor_gives_the_same_table(tmp_path):
    from distributed import LocalCluster

    grid = Grid(
        problems=["linreg"], optimizers=["gd", "sgd", "torch-adagrad"], lr=[0.01, 0.1], seeds=[0, 1, 2], epochs=10
    )
    local = normalized(sweep(grid, tmp_path / "local.parquet"))
    processes = normalized(sweep(grid, tmp_path / "jobs.parquet", jobs=2))
    # The dask worker is a thread of this process (processes across a pickle boundary: jobs=2 above).
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", protocol="tcp", dashboard_address=None, processes=False
    ) as cluster:
        dask = normalized(sweep(grid, tmp_path / "dask.parquet", executor="dask", scheduler=cluster.scheduler_address))
    pd.testing.assert_frame_equal(local, processes)
    pd.testing.assert_frame_equal(local, dask)


def test_results_match_the_grid_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "s.parquet"
    args = [
        "sweep",
        "--problem",
        "linreg",
        "--optimizer",
        "gd,torch-sgd",
        "--lr",
        "0.01,0.1",
        "--seeds",
        "0-2",
        "--epochs",
        "5",
        "--opt",
        "momentum=0,0.9",
        "--out",
        str(out),
    ]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("18 runs (18 ok, 0 diverged, 0 errors;")  # gd 2 lrs + torch-sgd 2 lrs x 2 momenta
    table = optbench.load_results(out)
    assert table["run_key"].nunique() == 18 and set(table["seed"]) == {0, 1, 2}
    assert set(table[table["optimizer"] == "torch-sgd"]["momentum"]) == {0, 0.9}
    before = out.stat().st_mtime_ns
    again = invoke(*args)
    assert again.exit_code == 0 and out.stat().st_mtime_ns == before  # nothing to do, nothing rewritten
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0 and out.stat().st_mtime_ns != before


def test_an_erroring_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    plugin = tmp_path / "flaky.py"
    plugin.write_text(
        "import torch, optbench\n\n"
        "@optbench.register_optimizer('test-flaky', override=True)\n"
        "class Flaky(torch.optim.SGD):\n"
        "    def step(self, closure=None):\n"
        "        if self.defaults['lr'] > 0.05:\n"
        "            raise RuntimeError('lr too hot')\n"
        "        return super().step(closure)\n"
    )
    result = invoke(
        "sweep",
        "--plugin",
        plugin,
        "--optimizer",
        "test-flaky,gd",
        "--lr",
        "0.01,0.1",
        "--epochs",
        "3",
        "--out",
        tmp_path / "f.parquet",
    )
    assert result.exit_code == 1
    assert result.output.startswith("4 runs (3 ok, 0 diverged, 1 errors;")
    table = optbench.load_results(tmp_path / "f.parquet")
    error = table[table["status"] == "error"]
    assert set(error["lr"]) == {0.1} and error["message"].iloc[0] == "RuntimeError: lr too hot"


def test_toml_grid_with_per_optimizer_settings(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        'problems = ["linreg", "classification"]\noptimizers = ["gd", "torch-sgd"]\nseeds = "0-1"\nepochs = 4\n'
        'lr = "0.01:0.1:2"\n[opt.torch-sgd]\nmomentum = [0, 0.9]\nlr = [0.05]\n'
        '[problem_opt.classification]\nshape = ["blobs", "moons"]\n'
    )
    result = invoke("sweep", "--config", config, "--out", tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    table = optbench.load_results(tmp_path / "t.parquet")
    runs = table.groupby("run_key").first()
    # linreg: gd 2 lrs + torch-sgd 1 lr x 2 momenta = 4 configs; classification twice that (2 shapes); x 2 seeds
    assert len(runs) == (4 + 8) * 2
    assert set(runs[runs["optimizer"] == "torch-sgd"]["lr"]) == {0.05}
    assert set(runs[runs["optimizer"] == "gd"]["lr"]) == {0.01, 0.1}


def test_tuning_picks_the_best_lr_on_tuning_seeds_and_evaluates_on_fresh_ones(tmp_path):
    grid = Grid(problems=["linreg"], optimizers=["gd", "torch-adam"], lr=[0.001, 0.03, 0.3], epochs=20)
    table, chosen = tune(grid, tmp_path / "tune.parquet", tune_seeds=[0, 1, 2], eval_seeds=[10, 11])
    tuning = table[table["phase"] == "tune"]
    evaluation = table[table["phase"] == "eval"]
    assert set(tuning["seed"]) == {0, 1, 2} and set(evaluation["seed"]) == {10, 11}
    for optimizer in ("gd", "torch-adam"):
        finals = tuning[tuning["optimizer"] == optimizer].groupby(["lr", "seed"])[["loss", "optimum"]].last()
        best_lr = (finals["loss"] - finals["optimum"]).groupby("lr").median().idxmin()  # by hand
        pick = next(c for c in chosen if c["job"]["optimizer"] == optimizer)
        assert pick["job"]["hyperparameters"]["lr"] == best_lr
        assert set(evaluation[evaluation["optimizer"] == optimizer]["lr"]) == {best_lr}
    with pytest.raises(InvalidValueError, match="overlap"):
        tune(grid, tmp_path / "x.parquet", tune_seeds=[0, 1], eval_seeds=[1, 2])


def test_tune_cli_prints_the_chosen_settings(tmp_path):
    result = invoke(
        "tune",
        "--optimizer",
        "gd,sgd",
        "--lr",
        "0.01,0.1",
        "--epochs",
        "10",
        "--tune-seeds",
        "0-1",
        "--eval-seeds",
        "5-6",
        "--search",
        "lr",  # the values given, as they are
        "--out",
        tmp_path / "t.csv",
    )
    assert result.exit_code == 0, result.output
    assert "chosen settings" in result.output and "linreg          gd             lr=0.1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", ","], "--optimizer: the grid is empty"),
        (["--seeds", "3-1"], "--seeds '3-1': the range runs backwards"),
        (["--lr", "0,1"], "--lr 0 is out of range"),
        (["--opt", "momentum=0.9"], "--opt momentum: none of the optimizers gd takes it"),
        (["--problem-opt", "shape=moons"], "--problem-opt shape: none of the problems linreg takes it"),
        (
            ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
            "--scheduler 'tcp://127.0.0.1:9' cannot be reached",
        ),
        (["--out", "/no/dir/s.parquet"], "folder '/no/dir' does not exist"),
    ],
)
def test_bad_sweep_input_is_one_line(tmp_path, args, message):
    result = invoke("sweep", "--epochs", "2", "--out", tmp_path / "s.parquet", *args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


def test_unknown_toml_key(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text('problems = "linreg"\noptimizers = "gd"\nepoch = 3\n')
    result = invoke("sweep", "--config", config, "--out", tmp_path / "s.parquet")
    assert result.exit_code == 2
    assert "unknown key 'epoch' (did you mean 'epochs'?)" in result.output


def test_run_keys_are_canonical():
    """The same run gets the same key however it was spelled: defaults explicit or not, 0.1 or 1e-1,
    options in any order, a tuple or its text; any real difference gives another key."""
    from optbench.core.runner import prepare
    from optbench.results.schema import run_key

    base = run_key(prepare("linreg", "torch-sgd", lr=0.1, epochs=5))
    same = [
        prepare("linreg", "torch-sgd", lr="1e-1", epochs=5, hyperparameters={"momentum": "0"}),
        prepare("linreg", "torch-sgd", epochs=5, hyperparameters={"momentum": 0.0, "lr": 0.1, "nesterov": False}),
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, problem_options={"n": 100, "a": "3,2", "dtype": "float32"}),
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, problem_options={"dtype": "float32", "a": (3.0, 2.0)}),
    ]
    assert [run_key(s) for s in same] == [base] * len(same)
    assert run_key(prepare("linreg", "sgd", batch_size=10)) == run_key(prepare("linreg", "sgd"))
    different = [
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, seed=1),
        prepare("linreg", "torch-sgd", lr=0.1, epochs=6),
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, hyperparameters={"momentum": 0.9}),
        prepare("linreg", "torch-sgd", lr=0.1, epochs=5, problem_options={"n": 101}),
    ]
    keys = {run_key(s) for s in different}
    assert len(keys) == len(different) and base not in keys
    assert run_key(same[0], phase="tune") != base
    assert os.environ.get("OPTBENCH_DISABLE_PLUGIN_AUTOLOAD") is None


def test_an_explicit_default_is_the_same_run_in_a_sweep(tmp_path):
    """Issue 10 failure 4: `--opt momentum=0` used to store the same run twice."""
    out = tmp_path / "s.parquet"
    args = ["sweep", "--optimizer", "torch-sgd", "--lr", "0.1", "--seeds", "0-1", "--epochs", "3", "--out", str(out)]
    assert invoke(*args).exit_code == 0
    again = invoke(*args[:-2], "--lr", "1e-1", "--opt", "momentum=0", "--out", out)
    assert again.exit_code == 0, again.output
    assert "2 of this grid (skipped)" in again.output
    assert optbench.load_results(out)["run_key"].nunique() == 2


def test_python_api():
    df = optbench.sweep(
        problems="linreg",
        optimizers=["gd", "torch-sgd"],
        lr=[0.01, 0.1],
        seeds=range(3),
        epochs=6,
        opt={"momentum": [0, 0.9]},
    )
    assert df["run_key"].nunique() == (2 + 2 * 2) * 3
    alone = optbench.run("linreg", "torch-sgd", lr=0.1, momentum=0.9, epochs=6, seed=2)
    row = df[(df["optimizer"] == "torch-sgd") & (df["lr"] == 0.1) & (df["momentum"] == 0.9) & (df["seed"] == 2)]
    assert row["loss"].tolist() == pytest.approx(alone["loss"].tolist(), rel=1e-5)


def test_progress_bar(capsys):
    sweep(Grid(problems=["linreg"], optimizers=["gd", "torch-rprop"], seeds=[0, 1], epochs=3), progress=True)
    err = capsys.readouterr().err
    assert "sweep:" in err and "4/4" in err and "run/s" in err  # tqdm: done of all, rate (and ETA)


RAISING = '''
import torch
import optbench
from optbench.problems.base import Problem


@optbench.register_problem("test-raises", override=True)
class Raises:
    """Object form: its loss raises at step 0 for seed 1, MemoryError for seed 2."""

    n_train = 20

    def __init__(self, seed=0):
        self.seed = seed
        self.w = torch.zeros(2, requires_grad=True)

    def parameters(self):
        return [self.w]

    def loss(self, idx=None):
        if self.seed == 1:
            raise RuntimeError("loss exploded at step 0")
        if self.seed == 2:
            raise MemoryError("out of memory")
        return (self.w - 1).pow(2).sum()


@optbench.register_problem("test-raises-stacked", override=True)
class RaisesStacked(Problem):
    """Functional form (stacks): the loss of seed 1 raises at step 0."""

    def __init__(self, seed=0):
        self.seed = seed
        self.params = {"w": torch.zeros(2, requires_grad=True)}
        self.data = {"y": torch.full((20,), float(seed))}
        self.n_train = 20

    def loss_fn(self, params, data, idx=None):
        if self.seed == 1:
            raise RuntimeError("loss exploded at step 0")
        y = data["y"] if idx is None else data["y"][idx]
        return ((params["w"].sum() - y) ** 2).mean()
'''


def test_errors_outside_the_optimizer_step_become_rows_and_the_sweep_completes(tmp_path):
    """Issue 10 failure 6: a loss that raises at step 0 or runs out of memory, and an allocation failure,
    used to abort the whole sweep with exit 70 and lose its group."""
    plugin = tmp_path / "raising.py"
    plugin.write_text(RAISING)
    out = tmp_path / "e.parquet"
    args = ["sweep", "--plugin", plugin, "--problem", "test-raises,test-raises-stacked", "--optimizer", "gd,sgd"]
    result = invoke(*args, "--seeds", "0-3", "--epochs", "2", "--out", out)
    assert result.exit_code == 1, result.output  # some runs errored: the documented code, not an abort
    assert result.output.splitlines()[1:] == [  # why they failed, most frequent first, on stderr
        "optbench: runs that failed, by message:",
        "  4 runs: RuntimeError: loss exploded at step 0 (gd on test-raises, test-raises-stacked; "
        "sgd on test-raises, test-raises-stacked)",
        "  2 runs: MemoryError: out of memory (gd on test-raises; sgd on test-raises)",
    ]
    assert "optbench: runs that failed" in result.stderr
    table = optbench.load_results(out)
    status = table.groupby(["problem", "optimizer", "seed"])["status"].first()
    message = table.groupby(["problem", "optimizer", "seed"])["message"].first()
    for optimizer in ("gd", "sgd"):
        assert status[("test-raises", optimizer, 1)] == "error"
        assert message[("test-raises", optimizer, 1)] == "RuntimeError: loss exploded at step 0"
        assert message[("test-raises", optimizer, 2)] == "MemoryError: out of memory"
        assert status[("test-raises-stacked", optimizer, 1)] == "error"
        assert {status[(p, optimizer, s)] for p in ("test-raises", "test-raises-stacked") for s in (0, 3)} == {"ok"}
    args = ["sweep", "--problem-opt", "n=10000000000000,10", "--epochs", "1", "--out", tmp_path / "m.csv"]
    refused = invoke(*args)  # 2.4e14 bytes of data: refused before anything is built
    assert refused.exit_code == 2 and "problem 'linreg' would need about" in refused.output, refused.output
    huge = invoke(*args, "--max-memory", "1e9")  # allowed: then the allocation itself fails, as a run's error
    assert huge.exit_code == 1 and huge.output.startswith("2 runs (1 ok, 0 diverged, 1 errors;")
    assert "can't allocate memory" in optbench.load_results(tmp_path / "m.csv")["message"].iloc[0]


def test_a_single_run_whose_loss_raises_is_an_error_row_not_an_internal_error(tmp_path):
    plugin = tmp_path / "raising.py"
    plugin.write_text(RAISING)
    result = invoke("run", "--plugin", plugin, "--problem", "test-raises-stacked", "--seed", "1")
    assert result.exit_code == 1 and "status       error: RuntimeError: loss exploded at step 0" in result.output


def test_a_reused_worker_process_takes_the_callers_settings_of_now(monkeypatch):
    """Worker processes outlive a call (loky reuses them): one started under OPTBENCH_EPOCHS_SCALE must
    not keep scaling the runs of a later call made without it (a fuzz test's scale once shortened the
    benches of every later test in its process)."""
    from optbench.settings.grid import Grid
    from optbench.studies.sweeps import keyed, run_jobs

    planned = keyed(Grid(problems=["linreg"], optimizers=["gd", "torch-sgd"], seeds=[0], epochs=4, lr=[0.1]).jobs())
    monkeypatch.setenv("OPTBENCH_EPOCHS_SCALE", "0.5")
    scaled = run_jobs(planned, None, jobs=2)
    monkeypatch.delenv("OPTBENCH_EPOCHS_SCALE")
    full = run_jobs(planned, None, jobs=2)
    assert scaled["step"].max() == 2 and full["step"].max() == 4
