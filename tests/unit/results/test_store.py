"""OUT as a store of runs: concurrent writers, SIGKILL and Ctrl-C, --force, retries, other grids, write failures."""

import errno
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from support import invoke

import optbench
from optbench.cli import EXIT_INTERRUPTED, EXIT_WRITE
from optbench.results.store import Store

SLOW = """
import os, time, optbench
from optbench.optimizers.gd import GradientDescent  # not a torch.optim class: no 1.5 s first construction

@optbench.register_optimizer("test-slow", elementwise=False, override=True)
class Slow(GradientDescent):
    '''SGD that sleeps OPTBENCH_TEST_SLOW seconds a step: a sweep process slow enough to interrupt.'''

    def step(self, closure=None):
        time.sleep(float(os.environ.get("OPTBENCH_TEST_SLOW", "0")))
        return super().step(closure)
"""
# Both kinds of group: gd and sgd stack (a part each), test-slow trains alone (a part per run,
# saved as each finishes). Slowed down in the killed process only: its numbers are the same.
GRID = ["--optimizer", "gd,sgd,test-slow", "--lr", "0.05,0.5", "--seeds", "0-5", "--epochs", "4"]
RUNS = 3 * 2 * 6
FLAKY = """
import os, torch, optbench

@optbench.register_optimizer("test-flaky", elementwise=False, override=True)
class Flaky(torch.optim.SGD):
    '''SGD that raises while OPTBENCH_TEST_FLAKY is set, and Ctrl-C when OPTBENCH_TEST_CTRL_C says at which lr.'''

    def step(self, closure=None):
        if os.environ.get("OPTBENCH_TEST_FLAKY"):
            raise RuntimeError("flaky today")
        if float(os.environ.get("OPTBENCH_TEST_CTRL_C", "inf")) == self.defaults["lr"]:
            raise KeyboardInterrupt
        return super().step(closure)
"""


def command(*args):
    return [sys.executable, "-m", "optbench.cli", *map(str, args)]


def slowed(seconds):
    return {**os.environ, "OPTBENCH_TEST_SLOW": str(seconds)}


def comparable(df):
    """Every column but time_s, rows in a canonical order."""
    df = df.drop(columns="time_s").sort_values(["run_key", "step"]).reset_index(drop=True)
    return df[sorted(df.columns)]


def stored_keys(out):
    return set(Store(out).index())


def runs_in(out):
    return optbench.load_results(out)["run_key"].nunique()


def wait_for_parts(process, parts):
    """Until the first part is saved (a part's temporary file, in the same folder, is not one yet)."""
    deadline = time.time() + 60
    while process.poll() is None and not any(parts.glob("part-*.parquet")) and time.time() < deadline:
        time.sleep(0.01)


@pytest.fixture
def flaky(tmp_path):
    path = tmp_path / "flaky.py"
    path.write_text(FLAKY)
    return path


@pytest.fixture
def slow(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    return path


def test_sigkill_at_a_random_moment_then_resume_gives_the_uninterrupted_table(tmp_path, slow):
    grid = ["--plugin", slow, *GRID]
    reference = tmp_path / "reference.parquet"
    assert invoke("sweep", *grid, "--out", reference).exit_code == 0
    out = tmp_path / "killed.parquet"
    parts = tmp_path / "killed.parquet.parts"
    process = subprocess.Popen(command("sweep", *grid, "--out", out, "--no-progress"), env=slowed(0.04))
    wait_for_parts(process, parts)
    time.sleep(random.uniform(0, 12 * 4 * 0.04))  # anywhere from the first saved group to the last run
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 0 < len(stored_keys(out)) <= RUNS
    resumed = invoke("sweep", *grid, "--out", out)
    assert resumed.exit_code == 0, resumed.output
    table = optbench.load_results(out)
    pd.testing.assert_frame_equal(comparable(table), comparable(optbench.load_results(reference)))
    assert not list(parts.glob("part-*.parquet"))  # all merged (a killed write's temporary file is no result)


def test_two_concurrent_sweeps_to_one_out_keep_both_grids(tmp_path, slow, monkeypatch):
    """One sweep in a process of its own, the other in this one, both writing and merging at once."""
    out = tmp_path / "shared.parquet"
    mine = ["--optimizer", "gd,test-slow", "--lr", "0.2", "--seeds", "0-3", "--epochs", "3"]
    theirs = ["--optimizer", "test-slow", "--lr", "0.1,0.5", "--seeds", "0-3", "--epochs", "3"]
    other = subprocess.Popen(
        command("sweep", "--plugin", slow, *theirs, "--out", out, "--no-progress"), env=slowed(0.02)
    )
    wait_for_parts(other, tmp_path / "shared.parquet.parts")
    seen, failures, done = [], [], threading.Event()

    def watch():  # a third reader, all along: parts are merged and removed under its feet
        while not done.is_set():
            try:
                seen.append(len(Store(out).index()))
            except Exception as exc:
                failures.append(exc)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    monkeypatch.setenv("OPTBENCH_TEST_SLOW", "0.02")  # slowed so that the parts and merges of the two interleave
    try:
        assert invoke("sweep", "--plugin", slow, *mine, "--out", out).exit_code == 0
        assert other.wait(timeout=120) == 0
    finally:
        done.set()
        watcher.join()
    assert failures == [] and seen == sorted(seen)  # a stored run never disappears, even for a moment
    table = optbench.load_results(out)
    assert table["run_key"].nunique() == 8 + 8
    assert table.groupby("run_key")["step"].apply(lambda s: (s == 0).sum()).eq(1).all()  # no run twice
    assert set(table[table["lr"] == 0.2]["optimizer"]) == {"gd", "test-slow"}


def test_ctrl_c_of_a_real_sweep_says_what_is_saved_and_resumes(tmp_path, slow):
    out = tmp_path / "long.parquet"
    grid = ["--plugin", slow, "--optimizer", "test-slow", "--lr", "0.01:1:8", "--seeds", "0-5", "--epochs", "5"]
    process = subprocess.Popen(
        command("sweep", *grid, "--out", out),
        stderr=subprocess.PIPE,
        text=True,
        env=slowed(0.05),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background job's shell ignores it
    )
    wait_for_parts(process, tmp_path / "long.parquet.parts")
    assert process.poll() is None, "the sweep finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED and "Traceback" not in stderr, stderr
    saved = int(re.search(r"interrupted; (\d+) of 48 runs are saved in", stderr)[1])
    assert 0 < saved < 48 and runs_in(out) == saved  # the message is true
    assert "without --force" in stderr
    resumed = invoke("sweep", *grid, "--out", out)
    assert resumed.exit_code == 0 and f"{saved} of this grid (skipped)" in resumed.output
    assert runs_in(out) == 48


def test_an_interrupted_force_leaves_out_as_it_was_and_a_finished_one_replaces(tmp_path, flaky, monkeypatch):
    out = tmp_path / "f.parquet"
    grid = ["--plugin", flaky, "--optimizer", "test-flaky", "--lr", "0.1,0.2,0.3", "--epochs", "3", "--out", out]
    assert invoke("sweep", *grid).exit_code == 0
    other = invoke("sweep", "--optimizer", "gd", "--epochs", "3", "--out", out)
    assert "3 of other grids (kept" in other.output
    before = out.read_bytes()
    monkeypatch.setenv("OPTBENCH_TEST_CTRL_C", "0.3")  # the third run presses Ctrl-C
    interrupted = invoke("sweep", *grid, "--force")
    assert interrupted.exit_code == EXIT_INTERRUPTED
    assert "f.parquet is unchanged (3 of this grid's 3 runs stored)" in interrupted.output
    assert "the 2 runs of this attempt were discarded" in interrupted.output
    assert out.read_bytes() == before and not (tmp_path / "f.parquet.parts").exists()
    monkeypatch.delenv("OPTBENCH_TEST_CTRL_C")
    monkeypatch.setenv("OPTBENCH_TEST_FLAKY", "1")
    forced = invoke("sweep", *grid, "--force")
    assert forced.exit_code == 1  # the new results, all errors, replaced the old ones once all had finished
    table = optbench.load_results(out)
    assert table["run_key"].nunique() == 4 and set(table[table["optimizer"] == "gd"]["status"]) == {"ok"}
    assert set(table[table["optimizer"] == "test-flaky"]["status"]) == {"error"}


def test_errored_runs_are_retried_on_resume_unless_told_not_to(tmp_path, flaky, monkeypatch):
    out = tmp_path / "e.parquet"
    grid = ["--plugin", flaky, "--optimizer", "test-flaky,gd", "--seeds", "0-1", "--epochs", "3", "--out", out]
    monkeypatch.setenv("OPTBENCH_TEST_FLAKY", "1")
    assert invoke("sweep", *grid).exit_code == 1
    monkeypatch.delenv("OPTBENCH_TEST_FLAKY")
    kept = invoke("sweep", *grid, "--no-retry-errors")
    assert kept.exit_code == 1 and "2 of them errored (kept: --no-retry-errors)" in kept.output
    retried = invoke("sweep", *grid)
    assert retried.exit_code == 0 and "2 errored of this grid (retried)" in retried.output
    table = optbench.load_results(out)
    assert table["run_key"].nunique() == 4 and set(table["status"]) == {"ok"}


def test_an_interrupt_of_the_python_api_merges_what_finished(tmp_path, flaky, monkeypatch):
    from optbench.registry.plugins import load_file
    from optbench.studies.sweeps import Interrupted, sweep

    load_file(flaky)
    monkeypatch.setenv("OPTBENCH_TEST_CTRL_C", "0.2")
    out = tmp_path / "i.csv"
    with pytest.raises(Interrupted) as info:
        sweep(problems="linreg", optimizers="test-flaky", lr=[0.1, 0.2, 0.3], epochs=2, out=out)
    assert (info.value.saved, info.value.total) == (1, 3) and optbench.load_results(out)["lr"].tolist() == [0.1] * 3


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_results_files_get_the_umask_mode(tmp_path, suffix):
    old = os.umask(0o027)
    try:
        optbench.save_results(optbench.run("linreg", "gd", epochs=1), tmp_path / f"r{suffix}")
        made = invoke("sweep", "--epochs", "1", "--out", tmp_path / f"s{suffix}")
    finally:
        os.umask(old)
    assert made.exit_code == 0
    assert (tmp_path / f"r{suffix}").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / f"s{suffix}").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("x" * 245 + ".parquet", "the name is too long here (259 bytes with what optbench adds; at most 255)"),
        ("x" * 250 + ".parquet", "the name is too long here (264 bytes with what optbench adds; at most 255)"),
        ("/proc/optbench-test.parquet", "cannot be written"),
        ("s.txt", "expected a file ending in .parquet or .csv"),
    ],
)
def test_unwritable_outs_are_refused_before_any_work(tmp_path, out, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr("optbench.studies.sweeps.run_group", lambda *a: started.append(1))
    result = invoke("sweep", "--out", out)
    assert result.exit_code == 2 and not started
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


def test_a_full_disk_after_the_work_is_one_line_and_exit_74(tmp_path, monkeypatch):
    out = tmp_path / "d.parquet"
    grid = ["--optimizer", "torch-lbfgs,gd", "--seeds", "0-2", "--epochs", "2", "--out", out]

    def full(df, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("optbench.results.store.write_parquet", full)
    result = invoke("sweep", *grid)
    assert result.exit_code == EXIT_WRITE
    assert len(result.output.strip().splitlines()) == 1
    assert "No space left on device (ENOSPC)" in result.output and "rerun to resume" in result.output
    assert "Traceback" not in result.output


def test_a_sweep_into_a_file_that_is_not_a_store_is_refused(tmp_path):
    out = tmp_path / "run.parquet"
    optbench.save_results(optbench.run("linreg", "gd", epochs=1), out)
    result = invoke("sweep", "--epochs", "1", "--out", out)
    assert result.exit_code == 2 and "not from a sweep (no run_key column)" in result.output


def test_stale_temporary_files_of_dead_processes_are_cleaned(tmp_path):
    out = tmp_path / "c.parquet"
    assert invoke("sweep", "--epochs", "1", "--seeds", "0-1", "--out", out).exit_code == 0
    parts = Path(f"{out}.parts")
    parts.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = parts / f".optbench-{dead.pid}-abcd.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    Store(out).write_part(optbench.sweep(problems="linreg", optimizers="gd", seeds=[5], epochs=1))
    Store(out).merge()
    assert not parts.exists() and optbench.load_results(out)["run_key"].nunique() == 3


def test_ctrl_c_before_any_run_says_what_is_stored(tmp_path, monkeypatch):
    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("optbench.studies.sweeps.keyed", pressed)
    result = invoke("sweep", "--epochs", "1", "--out", tmp_path / "s.parquet")
    assert result.exit_code == EXIT_INTERRUPTED
    assert (
        f"{tmp_path / 's.parquet'} holds 0 runs; to go on, run the same command again without --force" in result.output
    )


def test_counts_tell_merged_runs_from_runs_that_wait_in_part_files(tmp_path):
    """What an interrupted bench reports: runs in OUT, runs only part files hold, and the part files."""
    store = Store(tmp_path / "o.parquet")
    assert store.counts() == (0, 0, 0)
    runs = optbench.load_results(_sweep(tmp_path / "src.parquet"))
    keys = list(dict.fromkeys(runs["run_key"]))
    assert len(keys) == 4
    store.write_part(runs[runs["run_key"].isin(keys[:2])])
    store.merge()
    store.write_part(runs[runs["run_key"].isin(keys[1:3])])  # one run again, one new
    store.write_part(runs[runs["run_key"] == keys[3]])
    assert store.counts() == (2, 2, 2)
    store.merge()
    assert store.counts() == (4, 0, 0)


def _sweep(out):
    result = invoke("sweep", "--optimizer", "gd,torch-sgd", "--seeds", "0-1", "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    return out
