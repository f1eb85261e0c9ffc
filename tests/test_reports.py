"""Reports from a multi-seed, multi-lr, two-problem result: files, figure content, numbers, bad input."""

import math

import matplotlib
import matplotlib.collections
import pandas as pd
import pytest
from click.testing import CliRunner

import optbench
from optbench.cli import cli
from optbench.reports import figures as fg
from optbench.reports.data import finals, label_runs, performance_profile, read_results, summary

matplotlib.use("Agg")

OPTIMIZERS = ["gd", "torch-adam"]
LRS = [0.03, 0.3, 300.0]  # 300 makes gd overflow float32 on linreg within 15 steps
SEEDS = [0, 1, 2]
FIGURES = [
    "loss_vs_step",
    "loss_vs_time",
    "test_accuracy",
    "lr_sensitivity",
    "final_distribution",
    "time_to_target",
    "performance_profile",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two files in a folder (parquet and csv), as a sweep might leave them."""
    folder = tmp_path_factory.mktemp("results")
    for problem, suffix in (("linreg", ".parquet"), ("classification", ".csv")):
        runs = [optbench.run(problem, o, lr=lr, epochs=15, seed=s) for o in OPTIMIZERS for lr in LRS for s in SEEDS]
        optbench.save_results(pd.concat(runs, ignore_index=True), folder / f"{problem}{suffix}")
    return folder


@pytest.fixture(scope="module")
def table(results):
    return label_runs(read_results([results]))


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(cli, ["report", str(results), "--out", str(out), "--svg"])
    assert result.exit_code == 0, result.output
    return out


def test_report_writes_every_figure_a_summary_and_a_page(written):
    for name in FIGURES:
        assert (written / f"{name}.png").stat().st_size > 5_000, name
        assert (written / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    page = (written / "index.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    assert "band spans min to max over 3 seed(s)" in page
    summary_csv = pd.read_csv(written / "summary.csv")
    assert len(summary_csv) == 2 * len(OPTIMIZERS) * len(LRS)


def test_summary_numbers_match_the_table(table):
    final = finals(table)
    rows = summary(final).set_index(["problem", "config"])
    raw = table[(table["problem"] == "linreg") & (table["optimizer"] == "torch-adam") & (table["lr"] == 0.3)]
    last = raw.groupby("seed").tail(1)
    gaps = last["loss"] - last["optimum"]
    row = rows.loc[("linreg", "torch-adam (lr=0.3)")]
    assert row["runs"] == 3 and row["diverged"] == 0
    assert row["final_mean"] == pytest.approx(gaps.mean())
    assert row["final_std"] == pytest.approx(gaps.std(ddof=1))
    assert row["final_best"] == pytest.approx(gaps.min())
    blown = rows.loc[("linreg", "gd (lr=300)")]
    assert blown["diverged"] == 3 and blown["steps_to_target"] == math.inf and blown["reached_target"] == 0
    accuracy = table[(table["problem"] == "classification") & (table["config"] == "gd (lr=0.3)")]
    assert rows.loc[("classification", "gd (lr=0.3)")]["test_accuracy_mean"] == pytest.approx(
        accuracy.groupby("seed")["test_accuracy"].last().mean()
    )


def test_steps_to_target_by_hand(table):
    """The first recorded step whose loss - f* is at most 10% of the starting one."""
    final = finals(table).set_index("run")
    run = table[table["run"] == "linreg | gd (lr=0.3) | seed 1"]
    gap = run["loss"] - run["optimum"]
    expected = int(run["step"][gap <= 0.1 * gap.iloc[0]].iloc[0])
    assert final.loc["linreg | gd (lr=0.3) | seed 1", "steps_to_target"] == expected


def test_loss_curves_draw_one_line_per_optimizer_per_problem(table):
    final = finals(table)
    colors = fg.palette(list(table["optimizer"]))
    figure = fg.loss_curves(table, final, colors)
    axes = figure.figure.axes
    assert [ax.get_title() for ax in axes] == ["classification", "linreg"]
    for ax in axes:
        assert ax.get_yscale() == "log" and ax.get_xlabel() == "optimizer steps"
        drawn = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
        assert sorted(matplotlib.colors.to_hex(line.get_color()) for line in drawn) == sorted(
            matplotlib.colors.to_hex(colors[o]) for o in OPTIMIZERS
        )
    assert axes[1].get_ylabel() == "suboptimality  loss - f*" and axes[0].get_ylabel() == "training loss"
    legend = figure.figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == OPTIMIZERS
    assert "best setting" in figure.caption and "min to max over 3 seed(s)" in figure.caption


def test_lr_sensitivity_and_the_same_color_everywhere(table):
    final = finals(table)
    colors = fg.palette(list(table["optimizer"]))
    figure = fg.lr_sensitivity(final, colors)
    linreg = figure.figure.axes[1]
    assert linreg.get_xscale() == "log" and linreg.get_xlabel() == "learning rate"
    adam = [line for line in linreg.get_lines() if line.get_color() == colors["torch-adam"] and len(line.get_xdata())]
    assert list(adam[0].get_xdata()) == LRS
    marks = [c for c in linreg.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert [list(m.get_offsets()[:, 0]) for m in marks] == [[300.0]]  # gd diverged at lr 300: an x on the top edge
    assert fg.lr_sensitivity(final[final["lr"] == 0.3], colors) is None  # one lr: nothing to draw


def test_performance_profile_by_hand():
    final = pd.DataFrame(
        {
            "problem_label": ["p1", "p1", "p2", "p2"],
            "optimizer": ["a", "b", "a", "b"],
            "config": ["a", "b", "a", "b"],
            "final": [1.0, 1.0, 1.0, 1.0],
            "steps_to_target": [10.0, 20.0, 30.0, math.inf],
        }
    )
    prof = performance_profile(final).set_index(["optimizer", "tau"])["fraction"]
    assert prof[("a", 1.0)] == 1.0  # a is the fastest on both problems
    assert prof[("b", 1.0)] == 0.0 and prof[("b", 2.0)] == 0.5  # b: p1 at 2x, p2 never


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.parquet", "results '{d}/missing.parquet' do not exist"),
        (lambda d: _write(d / "empty.csv", ""), "cannot be read"),
        (lambda d: _write(d / "other.csv", "a,b\n1,2\n"), "is not an optbench table"),
    ],
)
def test_bad_input_is_one_line(tmp_path, make, message):
    path = make(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert message.format(d=tmp_path) in result.output
    assert not (tmp_path / "out" / "index.html").exists()


def test_report_needs_results(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Missing argument 'RESULTS...'" in result.output


def _write(path, text):
    path.write_text(text)
    return path
