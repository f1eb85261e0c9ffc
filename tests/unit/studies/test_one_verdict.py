"""One verdict, every view the same (issue 30): a planted bench's page, leaderboard.md, leaderboard.csv,
comparisons.csv, the page's summary.csv and the results table agree cell by cell, and runs that blow up to
huge but finite values are `diverged` in every one of them. Through the CLI, as a user's bench."""

from __future__ import annotations

import html
import math
import re

import pandas as pd
import pytest
from support import invoke

from optbench.registry import OPTIMIZERS
from optbench.results.outcomes import BLOWN_UP, shown

PLANTED = '''
import torch

import optbench


@optbench.register_optimizer("blowup-sgdm-30", elementwise=True)
class BlowUp(torch.optim.SGD):
    """SGD-momentum that, at its 5th step, multiplies each parameter's last element by 1e6 where that
    element's gradient is positive (on some seeds and settings, not others), then stops: huge, but finite."""

    def __init__(self, params, lr=0.01, momentum=0.9):
        super().__init__(params, lr=lr, momentum=momentum)
        self.steps = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.steps += 1
        if self.steps == 5:
            for group in self.param_groups:
                for p in group["params"]:
                    p[..., -1:].mul_(torch.where(p.grad[..., -1:] > 0, 1e6, 1.0))
        return None if self.steps >= 5 else super().step(closure)


@optbench.register_optimizer("sgdm-twin-30", elementwise=True)
class Copy(torch.optim.SGD):
    """torch-sgd-momentum under another name."""

    def __init__(self, params, lr=0.01, momentum=0.9):
        super().__init__(params, lr=lr, momentum=momentum)
'''

SUITE = """
description = "planted: one verdict in every output"
tune_seeds = "0-1"
eval_seeds = "10-17"
trials = 4
max_trials = 8
studies = 2

[[problems]]
problem = "quadratic"
epochs = 40
options = { dim = 10, condition = 100.0 }
"""
CANDIDATES = ["blowup-sgdm-30", "sgdm-twin-30", "torch-adam"]
BASELINE = "torch-sgd-momentum"


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-verdict")
    (folder / "planted.py").write_text(PLANTED)
    (folder / "suite.toml").write_text(SUITE)
    with OPTIMIZERS.snapshot():
        made = invoke(
            *("bench", "--plugin", folder / "planted.py", "--optimizer", ",".join(CANDIDATES)),
            *("--baselines", BASELINE, "--suite", folder / "suite.toml", "--out", folder / "b", "--no-progress"),
        )
    assert made.exit_code == 0, made.output
    return folder / "b"


def _interval(row):
    return "{} [{}, {}]".format(
        *(shown(row[k], row["resolution"]) for k in ("final_median", "final_low", "final_high"))
    )


def test_blown_up_runs_are_diverged_in_the_table_itself(bench_out):
    runs = pd.read_parquet(bench_out / "results.parquet")
    evaluated = runs[(runs["phase"] == "eval") & (runs["optimizer"] == "blowup-sgdm-30")]
    status = evaluated.groupby("run_key")["status"].first()
    blown = evaluated[evaluated["run_key"].isin(status[status == "diverged"].index)]
    assert 0 < status.eq("diverged").sum() < len(status)  # on some seeds, not all
    first = blown.groupby("run_key")["loss"].first()
    peak = blown.groupby("run_key")["loss"].max()
    assert peak.map(math.isfinite).all() and (peak > BLOWN_UP * first).all()  # finite, past the multiple
    board = pd.read_csv(bench_out / "leaderboard.csv").set_index("optimizer")
    assert board.loc["blowup-sgdm-30", "diverged"] == status.eq("diverged").sum()


def test_every_output_says_the_same(bench_out):
    board = pd.read_csv(bench_out / "leaderboard.csv").set_index("optimizer")
    table = pd.read_csv(bench_out / "comparisons.csv").set_index("candidate")
    summary = pd.read_csv(bench_out / "report" / "summary.csv").set_index("optimizer")
    markdown = (bench_out / "leaderboard.md").read_text()
    page = html.unescape((bench_out / "report" / "index.html").read_text())
    numbers = ["final_median", "final_low", "final_high", "reached", "diverged", "seeds"]
    pd.testing.assert_frame_equal(summary[numbers], board[numbers])  # the page's CSV: the leaderboard's numbers
    heat = dict(
        re.findall(r'<th class="text pair">([^<]+)<br><small>vs [^<]+</small></th><td class="verdict (\w+)"', page)
    )
    for candidate in CANDIDATES:
        word = table.loc[candidate, "verdict"]
        assert heat[candidate] == word  # the page's first screen
        assert board.loc[candidate, f"vs {BASELINE}"] == word  # leaderboard.csv
        row = next(line for line in markdown.splitlines() if line.startswith(f"| **{candidate}** |"))
        assert row.split(" | ")[-1].startswith(word)  # leaderboard.md's verdict cell
    for optimizer, row in board.iterrows():
        final = _interval(row)
        diverged = int(row["diverged"])
        said = f" ({diverged}/{int(row['seeds'])} diverged)" if diverged else ""
        line = next(
            line for line in markdown.splitlines() if re.match(rf"\| (\*\*)?{re.escape(optimizer)}(\*\*)? \|", line)
        )
        assert f"{final}{said}" in line  # leaderboard.md: median [interval] (k/n diverged)
        card = re.search(rf"</span>{re.escape(optimizer)}</td>.*?</tr>", page).group(0)
        median, low, high = (shown(row[k], row["resolution"]) for k in ("final_median", "final_low", "final_high"))
        assert f"<td>{median}{said}</td><td>{low} &ndash; {high}</td>" in card.replace("\u2013", "&ndash;")
        assert f"<td>{int(row['reached'])} of {int(row['seeds'])}</td>" in card
    assert board.loc["blowup-sgdm-30", "diverged"] > 0


def test_no_copy_is_called_better_or_worse_and_the_blow_up_loses(bench_out):
    table = pd.read_csv(bench_out / "comparisons.csv").set_index("candidate")
    assert table.loc["sgdm-twin-30", "verdict"] not in ("better", "worse")
    assert table.loc["blowup-sgdm-30", "verdict"] in ("worse", "inconclusive")
    assert table.loc["blowup-sgdm-30", "diverged"] > 0


def test_seconds_come_with_their_spread_and_a_difference_inside_it_says_so(bench_out):
    board = pd.read_csv(bench_out / "leaderboard.csv").set_index("optimizer")
    table = pd.read_csv(bench_out / "comparisons.csv").set_index("candidate")
    assert (board["step_ms_low"] <= board["step_ms"]).all() and (board["step_ms"] <= board["step_ms_high"]).all()
    base = board.loc[BASELINE]
    for candidate in CANDIDATES:
        mine, row = board.loc[candidate], table.loc[candidate]
        assert row["step_time_ratio"] == pytest.approx(mine["step_ms"] / base["step_ms"])
        apart = mine["step_ms_low"] > base["step_ms_high"] or base["step_ms_low"] > mine["step_ms_high"]
        assert bool(row["step_time_differs"]) == apart
        markdown = (bench_out / "leaderboard.md").read_text()
        line = next(line for line in markdown.splitlines() if line.startswith(f"| **{candidate}** |"))
        assert ("within the timing rounds' spread: no difference" in line) == (not apart)
        assert f"(step {mine['step_ms']:.3g} ms, {mine['step_ms_low']:.3g}-{mine['step_ms_high']:.3g})" in line


def test_the_first_screen_answers_and_nothing_is_wider_than_the_window(bench_out):
    """At 1,280 x 800 in headless Chromium: the title names the candidates and the suite, the heat map and a
    sentence per candidate are on the first screen, and no element of the page is wider than the window."""
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("OPTBENCH_REQUIRE_TOOLS") == "1":
            pytest.fail("OPTBENCH_REQUIRE_TOOLS=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.goto((bench_out / "report" / "index.html").as_uri(), wait_until="load")
        title = tab.inner_text("h1")
        heat = tab.evaluate(
            "(() => { const r = document.querySelector('table.heat').getBoundingClientRect(); "
            "return [r.bottom, r.right]; })()"
        )
        answers = tab.evaluate(
            "[...document.querySelectorAll('ul.answer li')].map(e => e.getBoundingClientRect().bottom)"
        )
        wide = tab.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().width > 1280)"
            ".map(e => e.tagName + '.' + e.className)"
        )
        scroll = tab.evaluate("document.documentElement.scrollWidth")
        browser.close()
    assert all(name in title for name in CANDIDATES) and "suite suite" in title and BASELINE in title
    assert heat[0] <= 800 and heat[1] <= 1280  # the heat map, whole, above the fold
    assert len(answers) == len(CANDIDATES) and max(answers) <= 800  # a sentence per candidate, above the fold
    assert wide == [] and scroll <= 1280
