"""Reports from a multi-seed, multi-lr, two-problem result: files, figure content, numbers, bad input.

Figures are checked through what they draw (lines, colours, styles, axis limits, texts), not only
through files existing; each check was seen to fail with the feature it guards broken.
"""

import math
import re

import matplotlib
import matplotlib.collections
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from support import invoke

import optbench
from optbench.reports import figures as fg
from optbench.reports import html as page
from optbench.reports.data import (
    best_settings,
    finals,
    float_floor,
    label_runs,
    performance_profile,
    read_results,
    summary,
)
from optbench.reports.styles import KNOWN, PALETTE, color, style

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
]  # no performance profile over 2 problems (test_no_performance_profile_under_four_problems)


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
def coinciding():
    """linreg: gd and torch-sgd (identical full-batch runs) fast enough to reach float32 noise, and
    minibatch sgd taking 10 steps per epoch; 2 seeds."""
    runs = [
        optbench.run("linreg", name, lr=lr, epochs=60, seed=seed, batch_size=batch)
        for name, lr, batch in (("gd", 0.5, None), ("torch-sgd", 0.5, None), ("sgd", 0.05, 10))
        for seed in (0, 1)
    ]
    df = label_runs(pd.concat(runs, ignore_index=True))
    return df, finals(df)


@pytest.fixture(scope="module")
def four_problems():
    """Four problems: linreg at three sizes (one problem per size) and classification; gd and torch-adam."""
    runs = [
        optbench.run(problem, name, lr=0.1, epochs=6, seed=seed, problem_options=options)
        for problem, options in (("linreg", {"n": 50}), ("linreg", {"n": 100}), ("linreg", {"n": 200}))
        for name in ("gd", "torch-adam")
        for seed in (0, 1)
    ]
    runs += [optbench.run("classification", name, lr=0.1, epochs=6, seed=0) for name in ("gd", "torch-adam")]
    df = label_runs(pd.concat(runs, ignore_index=True))
    return df, finals(df)


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = invoke("report", results, "--out", out, "--svg")
    assert result.exit_code == 0, result.output
    return out


def _lines(ax):
    """The optimizer lines of an axes, by label (seaborn's bands and helper lines have none)."""
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_report_writes_every_figure_a_summary_and_a_page(written):
    for name in FIGURES:
        assert (written / f"{name}.png").stat().st_size > 5_000, name
        assert (written / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    html = (written / "index.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    assert "band spans min to max over 3 seed(s)" in html
    summary_csv = pd.read_csv(written / "summary.csv")
    assert len(summary_csv) == 2 * len(OPTIMIZERS) * len(LRS)


def test_the_page_opens_with_the_best_settings_then_the_main_figure(written):
    html = (written / "index.html").read_text()
    best, first_figure, summary_at = html.index('id="best"'), html.index("<figure"), html.index('id="summary"')
    assert best < first_figure < summary_at  # what the reader came for, then figures, then the long tables
    assert re.search(r'<figure id="loss_vs_step">', html[first_figure : first_figure + 40])  # the main figure
    cards = html[best:first_figure]
    assert cards.count('class="card"') == 2  # a card per problem
    for optimizer in OPTIMIZERS:  # each optimizer named with its colour swatch
        assert f"background:{color(optimizer)}'></span>{optimizer}" in cards
    assert "lr=0.3" in cards and "of 3</td>" in cards  # its best setting and how many seeds reached the target
    assert html.count('<div class="wide">') >= 4  # every table scrolls in its own box


def test_best_settings_by_hand(table):
    """linreg, torch-adam: of its three lrs the one with the lowest median final gap, with min and max."""
    runs = table[(table["problem"] == "linreg") & (table["optimizer"] == "torch-adam")]
    gaps = runs.groupby(["lr", "seed"])["objective"].last()
    lr = gaps.groupby("lr").median().idxmin()
    row = best_settings(finals(table)).set_index(["problem", "optimizer"]).loc[("linreg", "torch-adam")]
    assert row["setting"] == f"lr={lr:g}" and row["seeds"] == 3
    assert row["final"] == pytest.approx(gaps[lr].median())
    assert (row["low"], row["high"]) == (pytest.approx(gaps[lr].min()), pytest.approx(gaps[lr].max()))
    assert row["reached"] == 3 and row["diverged"] == 0


def test_a_long_summary_starts_collapsed(table, tmp_path):
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG")
    final = finals(table)
    best, short = best_settings(final), summary(final)
    long = pd.concat([short] * 3, ignore_index=True)  # 36 rows
    settings = pd.DataFrame({"setting": ["lr"], "values": ["0.1"]})
    opened = page.render([(png, "c")], best, short, settings, [], ["r"], "t")
    collapsed = page.render([(png, "c")], best, long, settings, [], ["r"], "t")
    assert "<details open><summary>The summary table: 12 rows" in opened
    assert "<details><summary>The summary table: 36 rows" in collapsed


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


def test_loss_curves_draw_each_optimizer_in_its_own_style(table):
    final = finals(table)
    figure = fg.loss_curves(table, final)
    axes = figure.figure.axes
    assert [ax.get_title() for ax in axes] == ["classification", "linreg"]
    best = fg.best_configs(final).set_index(["problem_label", "optimizer"])["config"]
    for ax in axes:
        assert ax.get_yscale() == "log" and ax.get_xlabel() == "optimizer steps"
        lines = _lines(ax)
        assert sorted(lines) == OPTIMIZERS
        for name, line in lines.items():
            look = style(name)
            assert matplotlib.colors.to_hex(line.get_color()) == look.color
            assert (line.get_linestyle(), line.get_marker()) == (look.linestyle, look.marker)
    linreg = _lines(axes[1])["torch-adam"]  # the line is the median over seeds of the best config
    runs = table[(table["problem"] == "linreg") & (table["config"] == best[("linreg", "torch-adam")])]
    np.testing.assert_allclose(linreg.get_ydata(), runs.groupby("step")["objective"].median(), rtol=1e-6)
    assert axes[1].get_ylabel() == "suboptimality  loss - f*" and axes[0].get_ylabel() == "training loss"
    assert [t.get_text() for t in figure.figure.legends[0].get_texts()] == OPTIMIZERS
    assert "best setting" in figure.caption and "min to max over 3 seed(s)" in figure.caption


def test_identical_runs_stay_visible_and_are_named(coinciding):
    df, final = coinciding
    figure = fg.loss_curves(df, final)
    lines = _lines(figure.figure.axes[0])
    gd, twin = lines["gd"], lines["torch-sgd"]
    np.testing.assert_array_equal(gd.get_ydata(), twin.get_ydata())  # the same curve ...
    assert gd.get_color() != twin.get_color() and gd.get_marker() != twin.get_marker()  # ... drawn two ways
    assert gd.get_linestyle() != twin.get_linestyle()
    assert gd.get_markevery() != twin.get_markevery()  # markers at different points: neither hides the other
    legend = [t.get_text() for t in figure.figure.legends[0].get_texts()]
    assert legend == ["gd", "sgd", "torch-sgd (= gd)"]
    assert "torch-sgd (= gd)" not in [
        t.get_text() for t in fg.loss_curves(df, final, "time_s").figure.legends[0].get_texts()
    ]
    assert "Identical runs (losses equal to 1e-5 at every record): torch-sgd and gd on linreg" in figure.caption


def test_the_time_figure_is_one_median_line_per_optimizer_at_its_seconds_per_step(table):
    """Not a line per seed (50 a facet in a bench): seeds share the optimizer's median per-step cost."""
    final = finals(table)
    figure = fg.loss_curves(table, final, "time_s")
    best = fg.best_configs(final).set_index(["problem_label", "optimizer"])["config"]
    for ax in figure.figure.axes:
        problem = ax.get_title()
        lines = _lines(ax)
        assert sorted(lines) == OPTIMIZERS and len(ax.get_lines()) == len(OPTIMIZERS)  # one series each
        chosen = table[(table["problem_label"] == problem)]
        chosen = chosen[chosen["config"] == chosen["optimizer"].map(lambda o, p=problem: best[(p, o)])]
        for name, line in lines.items():
            runs = chosen[(chosen["optimizer"] == name) & (chosen["step"] > 0)].groupby("run_id")
            rate = (runs["time_s"].max() / runs["step"].max()).median()
            steps = np.sort(chosen.loc[chosen["optimizer"] == name, "step"].unique())
            np.testing.assert_allclose(line.get_xdata(), steps * rate, rtol=1e-9)
    caption = figure.caption
    assert "median of 5 timed windows" in caption and "Seconds per step: classification: gd " in caption
    assert "x gd's step)" in caption  # each cost relative to the lesson's gd


def test_x_counts_epochs_when_batch_sizes_differ(coinciding, table):
    df, final = coinciding
    ax = fg.loss_curves(df, final).figure.axes[0]
    assert ax.get_xlabel() == "epochs (passes over the training data)"
    lines = _lines(ax)
    assert lines["sgd"].get_xdata().max() == lines["gd"].get_xdata().max() == 60  # not 600 steps against 60
    assert "x counts epochs" in fg.loss_curves(df, final).caption
    assert fg.time_to_target(final, "t").caption.count("the count is epochs") == 1


def test_the_log_axis_stops_at_float_resolution(coinciding):
    df, final = coinciding
    floor = float_floor(df)["linreg"]
    start = df[df["step"] == 0]["loss"].median()
    assert floor == pytest.approx(np.finfo(np.float32).eps * start)
    assert df["objective"].min() < floor  # the raw runs do go below it (into noise, even below 0)
    figure = fg.loss_curves(df, final)
    ax = figure.figure.axes[0]
    assert ax.get_ylim()[0] == pytest.approx(floor / 2)
    assert min(line.get_ydata().min() for line in _lines(ax).values()) == pytest.approx(floor)
    dotted = [line for line in ax.get_lines() if list(line.get_ydata()) == [floor, floor]]
    assert len(dotted) == 1
    assert "float resolution, machine epsilon of its dtype (float32)" in figure.caption
    box = fg.final_distribution(final, float_floor(df))
    assert box.figure.axes[0].get_xlim()[0] == pytest.approx(floor / 2)  # the finals are clipped the same way


def test_the_same_table_draws_the_same_figures(coinciding):
    """The seeds' points jitter across a box the same way every time (seaborn draws the jitter from
    numpy's global generator), and the caller's generator is left where it was."""
    _, final = coinciding

    def points():
        ax = fg.final_distribution(final).figure.axes[0]
        return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])

    np.random.seed(5)
    first, after = points(), np.random.random()
    np.random.seed(6)
    second = points()
    np.random.seed(5)
    assert np.array_equal(first, second) and np.random.random() == after
    assert len(np.unique(first[:, 1])) > len(final["optimizer"].unique())  # they do jitter


def test_facets_wrap_two_to_a_row(four_problems):
    df, final = four_problems
    figure = fg.loss_curves(df, final)
    axes = figure.figure.axes
    assert len(axes) == 4
    columns = {round(ax.get_position().x0, 2) for ax in axes}
    rows = {round(ax.get_position().y0, 2) for ax in axes}
    assert len(columns) == 2 and len(rows) == 2
    assert figure.figure.get_figwidth() * 110 < 1100  # fits the page at the report's dpi, no downscaling


def test_performance_profile_ticks_range_and_problem_count(four_problems):
    _, final = four_problems
    figure = fg.profile(final)
    ax = figure.figure.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) >= 2 and labels == [str(2**i) for i in range(len(labels))]  # 1, 2, 4, ... in plain numbers
    right = ax.get_xlim()[1]
    taus = performance_profile(final)["tau"]
    assert right >= taus[taus.map(math.isfinite)].max()
    for line in _lines(ax).values():  # every solver drawn across the whole range
        assert line.get_xdata()[0] == 1 and line.get_xdata()[-1] == right
    assert ax.get_ylabel() == "fraction of the 4 problems"  # linreg at three sizes is three problems ...
    for label in ("classification", "linreg n=50", "linreg n=100", "linreg n=200"):  # ... named as such
        assert label in figure.caption


def test_no_performance_profile_under_four_problems(table, written):
    final = finals(table)
    assert final["problem_label"].nunique() == 2 and fg.profile(final) is None
    assert not (written / "performance_profile.png").exists()
    page = (written / "index.html").read_text()
    assert "No performance profile: it needs at least 4 problems (here 2)" in page


def test_the_paired_figure_draws_every_seed_of_every_comparison_diverged_ones_at_the_edge():
    inf = math.inf
    figure = fg.paired([("p", "new", "gd", [0.1, 1.0, inf, 0.0]), ("p", "new", "adam", [10.0, 10.0, 10.0, 10.0])])
    ax = figure.figure.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(points) == 8  # every seed of both comparisons, none dropped
    gd = sorted(y for x, y in points if x < 0.5)
    edge = ax.get_ylim()[1] / 1.05
    np.testing.assert_allclose(gd, [-edge, -1.0, 0.0, edge])  # the baseline diverged; 10x better; a tie; ours did
    assert sorted(y for x, y in points if x > 0.5) == [1.0] * 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vs gd", "vs adam"]
    assert "2 seed(s) where only one side diverged sit at the edge" in figure.caption
    assert fg.paired([]) is None


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


def test_time_to_target_says_so_in_words(coinciding):
    _, final = coinciding
    costs = ["steps_to_target", "epochs_to_target", "seconds_to_target"]
    never = final.assign(**{c: math.inf for c in costs})  # nobody got there
    figure = fg.time_to_target(never, "t").figure
    message = [t for t in figure.findobj(matplotlib.text.Text) if t.get_text() == "no run reached the target"]
    assert len(message) == 1 and message[0].get_fontsize() >= 10 and not figure.axes  # words, not empty axes
    slow = final.copy()
    slow.loc[slow["optimizer"] == "sgd", costs] = math.inf
    figure = fg.time_to_target(slow, "t").figure
    marks = [t for t in figure.findobj(matplotlib.text.Text) if t.get_text() == "not reached"]
    assert len(marks) == 2 and all(t.get_position()[1] == 1 for t in marks)  # sgd's row (gd, sgd, torch-sgd)
    bars = figure.axes[0].patches
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars if b.get_width() > 0] == [
        color("gd"),
        color("torch-sgd"),
    ]


def test_lr_sensitivity_and_diverged_marks(table):
    final = finals(table)
    figure = fg.lr_sensitivity(final, float_floor(table))
    linreg = figure.figure.axes[1]
    assert linreg.get_xscale() == "log" and linreg.get_xlabel() == "learning rate"
    assert list(_lines(linreg)["torch-adam"].get_xdata()) == LRS
    assert _lines(linreg)["torch-adam"].get_color() == color("torch-adam")
    marks = [c for c in linreg.collections if isinstance(c, matplotlib.collections.PathCollection)]
    # at lr 300 gd overflows and Adam passes 1000x its start (diverged too, finite): an x each on the top edge,
    # side by side
    xs = [x for m in marks for x in m.get_offsets()[:, 0]]
    assert len(xs) == 2 and all(abs(math.log(x / 300.0)) < 0.1 for x in xs)
    diverged = final[(final["lr"] == 300.0) & (final["status"] == "diverged")]
    assert set(diverged["optimizer"]) == {"gd", "torch-adam"}
    assert fg.lr_sensitivity(final[final["lr"] == 0.3]) is None  # one lr: nothing to draw


def test_every_colour_stands_out_on_the_white_page():
    """WCAG's contrast ratio for graphics, >= 3:1 against white, for every line and swatch (issue 30: the
    default baseline's pink had 1.7:1)."""

    def luminance(hex_colour):
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    ratios = {c: 1.05 / (luminance(c) + 0.05) for c in PALETTE}
    assert min(ratios.values()) >= 3.0, ratios
    assert len(set(PALETTE)) == len(PALETTE) == 16


def test_one_look_per_optimizer_name_everywhere(coinciding):
    assert len({style(name).color for name in KNOWN}) == len(KNOWN)  # the built-ins never share a colour
    assert color("gd") == "#0173b2" and color("torch-adam") == "#029e73"  # fixed: last week's report agrees
    assert color("my-plugin-optimizer") == PALETTE[11] == "#949431"  # a stable hash, not Python's salted one
    df, final = coinciding
    alone = fg.loss_curves(df[df["optimizer"] != "gd"], final[final["optimizer"] != "gd"])
    together = fg.loss_curves(df, final)
    for figure in (alone, together):  # another set of optimizers on the page: sgd keeps its look
        sgd = _lines(figure.figure.axes[0])["sgd"]
        assert (sgd.get_color(), sgd.get_marker()) == (color("sgd"), style("sgd").marker)
    boxes = fg.final_distribution(final).figure.axes[0].patches  # a box per optimizer, in its colour
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in boxes] == [
        color(n) for n in ("gd", "sgd", "torch-sgd")
    ]


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
    result = invoke("report", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert message.format(d=tmp_path) in result.output
    assert not (tmp_path / "out" / "index.html").exists()


def test_report_needs_results(tmp_path):
    result = invoke("report", "--out", tmp_path)
    assert result.exit_code == 2 and "Missing argument 'RESULTS...'" in result.output


def _write(path, text):
    path.write_text(text)
    return path
