"""`report` on inputs with nothing or little to draw, and where it writes: a page that says so, exit 0,
nothing written outside --out, its own outputs never read back as results."""

import pandas as pd
import pytest
from support import invoke

import optbench


def report(results, out):
    result = invoke("report", *results, "--out", out)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "summary.csv") if (out / "summary.csv").stat().st_size > 1 else None, (
        out / "index.html"
    ).read_text()


def sweep(out, *args):
    result = invoke("sweep", *args, "--out", out)
    assert result.exit_code in (0, 1), result.output
    return out


def test_every_run_diverged(tmp_path):
    results = sweep(
        tmp_path / "d.parquet", "--optimizer", "gd,torch-sgd", "--lr", "300", "--seeds", "0-2", "--epochs", "20"
    )
    summary, page = report([results], tmp_path / "r")
    assert set(summary["diverged"]) == {3} and set(summary["runs"]) == {3}
    assert "Every run diverged: there is no final value to show as a distribution" in page
    assert (tmp_path / "r" / "loss_vs_step.png").exists()  # the curves up to the divergence are drawn


def test_every_run_errored(tmp_path):
    results = sweep(tmp_path / "e.parquet", "--problem-opt", "n=1", "--seeds", "0-2", "--epochs", "2")
    summary, page = report([results], tmp_path / "r")
    assert summary["errors"].tolist() == [3]
    assert "Nothing to draw: none of the 3 runs recorded a finite loss (3 errored, 0 diverged)" in page
    assert not list((tmp_path / "r").glob("*.png"))


def test_a_single_run(tmp_path):
    results = tmp_path / "one.csv"
    assert invoke("run", "--epochs", "3", "--out", results).exit_code == 0
    summary, page = report([results], tmp_path / "r")
    assert summary["runs"].tolist() == [1] and "over 1 seed(s)" in page


@pytest.mark.parametrize("kind", ["no rows", "empty folder"])
def test_no_runs_at_all(tmp_path, kind):
    if kind == "no rows":
        results = tmp_path / "none.parquet"
        optbench.save_results(optbench.run("linreg", "gd", epochs=1).iloc[:0], results)
    else:
        results = tmp_path / "nothing"
        results.mkdir()
    summary, page = report([results], tmp_path / "r")
    assert summary is None and "No runs:" in page and "hold no results rows" in page


def test_a_symlink_in_out_is_replaced_not_followed(tmp_path):
    results = sweep(tmp_path / "s.parquet", "--seeds", "0-1", "--epochs", "2")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "r"
    out.mkdir()
    (out / "index.html").symlink_to(victim)
    (out / "summary.csv").symlink_to(victim)
    report([results], out)
    assert victim.read_text() == "precious"
    assert not (out / "index.html").is_symlink() and "<html" in (out / "index.html").read_text()


def test_a_report_into_its_own_results_folder_ignores_its_outputs(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    sweep(folder / "s.parquet", "--optimizer", "gd,sgd", "--seeds", "0-1", "--epochs", "2")
    first, _ = report([folder], folder)
    second, _ = report([folder], folder)  # summary.csv from the first is not read as results
    pd.testing.assert_frame_equal(first, second)
    assert first["runs"].tolist() == [2, 2]


@pytest.mark.parametrize("out", ["/proc/optbench-report", "/proc/self"])
def test_an_unwritable_out_is_one_line_before_drawing(tmp_path, out):
    results = tmp_path / "one.csv"
    assert invoke("run", "--epochs", "1", "--out", results).exit_code == 0
    result = invoke("report", results, "--out", out)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
