"""The thread policy (one thread for small work, every core for large tensors, the user's count over both)
and time_s from the median of timed windows."""

import os

import pandas as pd
import pytest
import torch
from support import invoke

import optbench
from optbench.core import threads
from optbench.errors import InvalidValueError


def test_small_work_gets_one_thread_large_work_every_core_and_the_user_decides_over_both(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 6)
    assert threads.for_work(threads.LARGE - 1) == 1
    assert threads.for_work(threads.LARGE) == 6
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.for_work(10) == 3 and threads.for_work(10 * threads.LARGE) == 3
    for bad in ("0", "two", "1.5", "٣"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(InvalidValueError, match=f"OPTBENCH_THREADS={bad!r} is not valid"):
            threads.for_work(10)


def test_intra_op_threads_are_put_back():
    before = torch.get_num_threads()
    with threads.intra_op(before + 1) as count:
        assert torch.get_num_threads() == count == before + 1
    assert torch.get_num_threads() == before


def test_a_slow_window_does_not_move_the_rate():
    steady = [0.01] * 40
    spiked = [0.5] + [0.01] * 31 + [0.2] * 8  # a slow first step and a slow last window
    assert threads.seconds_per_step(spiked) == pytest.approx(threads.seconds_per_step(steady)) == pytest.approx(0.01)
    assert threads.seconds_per_step([0.02, 0.04]) == pytest.approx(0.03)  # too few steps: all of them
    assert threads.seconds_per_step([]) == 0.0


def test_time_s_is_the_step_count_times_the_median_window_rate(monkeypatch):
    """Every recorded time is step x one rate, for runs alone and for stacked groups (their rate
    measured on one run alone), and the table says how many threads timed it."""
    monkeypatch.delenv(threads.ENV, raising=False)
    alone = optbench.run("linreg", "gd", epochs=30)
    stacked = optbench.sweep(problems="linreg", optimizers="gd", lr=[0.1], seeds=range(4), epochs=30)
    for table in (alone, stacked):
        ok = table[table["step"] > 0]
        rates = ok["time_s"] / ok["step"]
        assert rates.max() == pytest.approx(rates.min(), rel=1e-9) and rates.min() > 0
        assert set(table["threads"]) == {1}  # small work: one thread
    assert set(stacked["batch_runs"]) == {4}


def test_large_tensors_get_every_core_and_threads_flag_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "LARGE", 1_000)  # linreg's 200 values of data and 2 parameters: small
    big = optbench.run("linreg", "gd", epochs=2, problem_options={"n": 1000})
    small = optbench.run("linreg", "gd", epochs=2)
    assert set(big["threads"]) == {2} and set(small["threads"]) == {1}
    before = torch.get_num_threads()
    result = invoke("run", "--epochs", "2", "--threads", "3", "--out", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(tmp_path / "r.csv")["threads"]) == {3}
    assert torch.get_num_threads() == before and threads.ENV not in os.environ
    bad = invoke("run", "--threads", "0")
    assert bad.exit_code == 2 and "--threads 0 is out of range" in bad.output


def test_the_docstring_examples_hold():
    import doctest

    from optbench.core import threads as module

    assert doctest.testmod(module).failed == 0
