"""Paths that are not what optbench expects, and disks that fill up: one line each, exit 2 before the
work (nothing run, nothing written) or exit 74 after it, never a hang or an internal error. The disk
cases run on a small tmpfs, mounted where this process may (root), skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import invoke

from optbench.cli import EXIT_WRITE

TINY_SUITE = """
lr = "0.05,0.1"
tune_seeds = "0"
eval_seeds = "10-17"
[[problems]]
problem = "linreg"
epochs = 3
target = 0.5
"""


@pytest.fixture
def mount(tmp_path):
    """``mount(size, read_only=False)``: a fresh tmpfs of that size under tmp_path, unmounted after."""
    mounted: list[Path] = []

    def make(size: str, read_only: bool = False) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]).returncode:
            pytest.skip("mounting a small tmpfs needs root (and a system that allows it)")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def one_line_exit_2(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"optbench: error: {expected}"]


def test_a_fifo_as_out_is_refused_at_once_not_written_into(tmp_path):
    """It used to hang the sweep (opening a FIFO for writing waits for a reader): a fresh process, bounded."""
    fifo = tmp_path / "out.parquet"
    os.mkfifo(fifo)
    exe = Path(sys.executable).with_name("optbench")
    done = subprocess.run(
        [str(exe), "sweep", "--epochs", "2", "--out", str(fifo)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"optbench: error: --out {str(fifo)!r} is a FIFO (named pipe), not a file; expected a file path"
    )


def test_a_file_where_the_parts_folder_goes_and_a_folder_where_the_lock_goes(tmp_path):
    (tmp_path / "a.parquet.parts").write_text("stale")
    result = invoke("sweep", "--epochs", "2", "--out", tmp_path / "a.parquet")
    where = tmp_path / "a.parquet.parts"
    one_line_exit_2(
        result, f"--out: {str(where)!r} is a file where optbench keeps a folder; move it away or choose another --out"
    )
    (tmp_path / ".b.parquet.lock").mkdir()
    result = invoke("sweep", "--epochs", "2", "--out", tmp_path / "b.parquet")
    where = tmp_path / ".b.parquet.lock"
    one_line_exit_2(
        result, f"--out: {str(where)!r} is a folder where optbench writes a file; move it away or choose another --out"
    )
    assert not (tmp_path / "a.parquet").exists() and not (tmp_path / "b.parquet").exists()  # nothing ran


def test_bench_refuses_an_out_whose_places_are_taken_before_any_run(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    args = ["bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", suite, "--no-report", "--out"]
    (tmp_path / "b" / "leaderboard.md").mkdir(parents=True)
    where = tmp_path / "b" / "leaderboard.md"
    expected = f"--out: {str(where)!r} is a folder where optbench writes a file; move it away or choose another --out"
    one_line_exit_2(invoke(*args, tmp_path / "b"), expected)
    (tmp_path / "c" / "runs" / "linreg.parquet.parts").parent.mkdir(parents=True)
    (tmp_path / "c" / "runs" / "linreg.parquet.parts").write_text("stale")
    where = tmp_path / "c" / "runs" / "linreg.parquet.parts"
    expected = f"--out: {str(where)!r} is a file where optbench keeps a folder; move it away or choose another --out"
    one_line_exit_2(invoke(*args, tmp_path / "c"), expected)
    (tmp_path / "d").write_text("a file")
    one_line_exit_2(
        invoke(*args, tmp_path / "d"),
        f"Invalid value for '--out': Directory {str(tmp_path / 'd')!r} is a file.",  # click's own check
    )
    assert not (tmp_path / "b" / "runs").exists()  # refused before any run


def test_bench_into_a_read_only_folder_is_refused_before_any_run(tmp_path, mount):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    read_only = mount("64k", read_only=True)
    result = invoke("bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", suite, "--out", read_only)
    where = read_only / "leaderboard.md"
    one_line_exit_2(result, f"--out {str(where)!r} cannot be written: Read-only file system (EROFS)")


@pytest.mark.parametrize("suffix", [".gif", ".html", ".mp4"])
def test_an_animation_onto_a_full_disk_is_exit_74_and_leaves_no_file(mount, suffix):
    if suffix == ".mp4" and not _has("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    disk = mount("64k")
    target = disk / f"fit{suffix}"
    result = invoke("animate", "--out", target)
    assert result.exit_code == EXIT_WRITE, result.output
    assert result.output.strip() == f"optbench: error: cannot write {str(target)!r}: No space left on device (ENOSPC)"
    assert list(disk.iterdir()) == []  # no half file, no temporary file


def test_a_report_and_a_bench_onto_a_full_disk_are_exit_74(tmp_path, mount):
    results = tmp_path / "s.parquet"
    assert invoke("sweep", "--optimizer", "gd,torch-adam", "--epochs", "3", "--out", results).exit_code == 0
    disk = mount("64k")
    report = invoke("report", results, "--out", disk / "report")
    assert report.exit_code == EXIT_WRITE, report.output
    assert "No space left on device (ENOSPC)" in report.output.strip().splitlines()[-1]
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    bigger = mount("300k")  # room for the runs, not for the page
    bench = invoke("bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", suite, "--out", bigger / "b")
    assert bench.exit_code == EXIT_WRITE, bench.output
    last = bench.output.strip().splitlines()[-1]
    assert last.startswith("optbench: error: cannot write ") and last.endswith("No space left on device (ENOSPC)")


def _has(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None
