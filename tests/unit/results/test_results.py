"""Saving and loading the results table."""

import os
from pathlib import Path

import pandas as pd
import pytest

import optbench
from optbench.errors import InvalidValueError, ResultsFileError
from optbench.results.io import save_results


@pytest.fixture(scope="module")
def table():
    parts = [
        optbench.run("linreg", "torch-lbfgs", epochs=3),  # None-valued settings (max_eval, line_search_fn)
        optbench.run("classification", "torch-adam", epochs=3, eval_every=2),  # tuple-valued betas
        optbench.run("linreg", "gd", lr=5.0, epochs=100),  # diverged: inf loss and a message
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_is_identical(table, tmp_path, suffix):
    path = save_results(table, tmp_path / f"results{suffix}")
    pd.testing.assert_frame_equal(optbench.load_results(path), table)


def test_write_is_atomic(table, tmp_path, monkeypatch):
    path = tmp_path / "r.parquet"
    save_results(table.iloc[:5], path)
    before = path.read_bytes()

    def broken(df, path):
        Path(path).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt  # interrupted half-way through writing

    monkeypatch.setattr("optbench.results.io.write_parquet", broken)
    with pytest.raises(KeyboardInterrupt):
        save_results(table, path)
    assert path.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["r.parquet"]  # and no temporary file is left behind


def test_unwritable_paths_are_refused(tmp_path):
    with pytest.raises(InvalidValueError, match="does not exist"):
        save_results(pd.DataFrame(), tmp_path / "missing" / "r.csv")
    with pytest.raises(InvalidValueError, match=r"\.parquet or \.csv"):
        save_results(pd.DataFrame(), tmp_path / "r.xlsx")


def test_bad_files_give_one_clear_error(tmp_path):
    with pytest.raises(ResultsFileError, match="does not exist"):
        optbench.load_results(tmp_path / "nope.parquet")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really")
    with pytest.raises(ResultsFileError, match="cannot be read"):
        optbench.load_results(corrupt)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ResultsFileError, match="not an optbench table"):
        optbench.load_results(other)


def test_round_trip_of_runs_with_different_settings(tmp_path):
    """Concatenated runs leave holes (gd has no momentum, torch-sgd has a bool nesterov)."""
    table = pd.concat([optbench.run("linreg", "gd", epochs=2), optbench.run("linreg", "torch-sgd", epochs=2)])
    table = table.reset_index(drop=True)
    for suffix in (".parquet", ".csv"):
        path = save_results(table, tmp_path / f"mixed{suffix}")
        pd.testing.assert_frame_equal(optbench.load_results(path), table)
