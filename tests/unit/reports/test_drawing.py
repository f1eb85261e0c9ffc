"""A report's figures drawn in worker processes are the files one process draws, and each figure is
laid out once and drawn once by savefig."""

import re
from unittest import mock

import matplotlib
import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import pytest

import optbench
from optbench.reports import report
from optbench.reports.drawing import lay_out_once


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    runs = [
        optbench.run("linreg", name, lr=lr, epochs=10, seed=seed)
        for name in ("gd", "torch-adam")
        for lr in (0.05, 0.2)
        for seed in (0, 1)
    ]
    optbench.save_results(pd.concat(runs, ignore_index=True), folder / "linreg.parquet")
    return folder / "linreg.parquet"


def _page(index):
    """index.html without what names its folder and the minute it was written."""
    text = index.read_text()
    return re.sub(r"generated [0-9-]+ [0-9:]+", "", text.replace(str(index.parent), ""))


def test_figures_drawn_in_two_processes_are_the_files_one_process_draws(results, tmp_path):
    # the caller's matplotlib settings reach the workers: without them their figures would differ
    with matplotlib.rc_context({"lines.linewidth": 4.0, "axes.facecolor": "#f4f4f4"}):
        one = report([results], tmp_path / "one", jobs=1)
        two = report([results], tmp_path / "two", jobs=2)
    pngs = sorted(p.name for p in one.parent.glob("*.png"))
    assert len(pngs) >= 4 and pngs == sorted(p.name for p in two.parent.glob("*.png"))
    for name in pngs:
        assert (one.parent / name).read_bytes() == (two.parent / name).read_bytes(), name
    assert _page(one) == _page(two)
    # and the settings were used: a figure drawn without them is another picture
    plain = report([results], tmp_path / "plain", jobs=1)
    assert (plain.parent / pngs[0]).read_bytes() != (one.parent / pngs[0]).read_bytes()


def test_a_figure_laid_out_once_is_drawn_once_when_saved(tmp_path):
    fig = plt.figure(figsize=(4, 3), layout="constrained")
    fig.subplots(1, 2)
    fig.legend([], [], loc="outside upper center")
    lay_out_once(fig)
    assert fig.get_layout_engine() is None  # not a placeholder engine, for which savefig draws twice
    real = matplotlib.figure.Figure.draw
    with mock.patch.object(matplotlib.figure.Figure, "draw", autospec=True, side_effect=real) as draw:
        fig.savefig(tmp_path / "f.png", dpi=110)
    plt.close(fig)
    assert draw.call_count == 1
