"""The verdict where users look: a bench with planted optimizers, read back from its page and leaderboard."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support import PLANTED, invoke

from optbench.results.stats import log_p_value, minimum_seeds, paired_p_value, paired_ratio, smallest_p
from optbench.studies.bench import Entry, Suite, comparisons, finals_per_seed, to_markdown
from optbench.studies.board import UNSETTLED, tuning_text

SUITE = """
description = "one problem, few epochs, enough seeds for a verdict"
search = "lr"  # the lr grid alone (the protocol before spaces and studies): what this test measures
schedule = "constant"
lr = "0.01,0.04"
extend_edges = 0  # the grid as given, so that boosted-gd's hidden 4x stays better (test_fair_protocol.py)
tune_seeds = "0"
eval_seeds = "10-17"

[[problems]]
problem = "linreg"
epochs = 10
target = 0.5
"""


def bench(tmp_path: Path, out: str, suite: str = SUITE) -> tuple[CliRunner, Path, object]:
    plugin, toml = tmp_path / "planted.py", tmp_path / "suite.toml"
    plugin.write_text(PLANTED)
    toml.write_text(suite)
    args = ["bench", "--plugin", str(plugin), "--optimizer", "boosted-gd,gd-twin,flaky-gd"]
    args += ["--baselines", "gd,gd-same", "--suite", str(toml), "--out", str(tmp_path / out), "--no-progress"]
    return invoke(*args), tmp_path / out


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags and images gone, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def verdict_section(page: str) -> str:
    start = page.index('<section id="verdict">')
    return page[start : page.index("</section>", start)]


def test_the_page_and_leaderboard_open_with_the_verdict_and_hide_no_divergence(tmp_path):
    result, out = bench(tmp_path, "bench")
    assert result.exit_code == 0, result.output
    page = (out / "report" / "index.html").read_text()
    # the verdict comes first: above the first figure and the best-settings cards
    assert page.index('<section id="verdict">') < page.index("<figure") < page.index("</body>")
    assert page.index('<section id="verdict">') < page.index('<section id="best">')
    verdict = text(verdict_section(page))
    assert "boosted-gd vs gd = gd-same: better on 1 of 1 problems" in verdict  # twins: one entry
    assert "vs gd-same:" not in verdict and "gd-same vs" not in verdict
    assert "gd-twin vs gd = gd-same (identical runs): equivalent on 1 of 1 problems" in verdict
    assert re.search(
        r"better \(better in 1 of 1 studies, beyond the margin, ratio 0\.\d+ \[0\.\d+, 0\.\d+\], better on 8/8 seeds, "
        r"p=0\.0078, margin x1\.1 \(0\.1 relative\), speedup [^,\]]+ \[[^\]]+\] in "
        r"gradient evaluations, step time x[\d.e+-]+(, within the timing rounds' spread: no difference)?, "
        r"rests on an lr at the edge of its search: boosted-gd, gd\)",
        verdict,
    )
    assert "flaky-gd vs gd = gd-same: worse" in verdict
    flaky = pd.read_csv(out / "comparisons.csv").query("candidate == 'flaky-gd'").iloc[0]
    k = int(flaky["diverged"])
    assert 0 < k < 8  # the planted divergence hits some seeds, not all
    diverged = f"{k}/8 diverged"
    assert f"flaky-gd {diverged}" in verdict
    assert "smallest attainable p is 0.0078" in verdict and "log final objectives" in verdict
    assert "cores:" in verdict and "torch:" in verdict and "python:" in verdict and "optbench:" in verdict
    assert "command: optbench bench --optimizer boosted-gd,gd-twin,flaky-gd" in verdict
    # the best-settings card of the divergent optimizer says so in its final cell
    best = page[page.index('<section id="best">') :]
    card_row = next(row for row in best.split("<tr") if "flaky-gd" in row)
    assert f"({diverged})" in text(card_row)
    # the leaderboard: the answer first, every cell of the divergent one says how many diverged
    md = (out / "leaderboard.md").read_text()
    assert md.index("boosted-gd vs gd = gd-same: better on 1 of 1 problems") < md.index("## linreg")
    assert "Wilcoxon signed-rank test on log final objectives" in md
    flaky_row = next(line for line in md.splitlines() if line.startswith("| **flaky-gd**"))
    cells = [c.strip() for c in flaky_row.strip("|").split("|")]
    assert f"({diverged})" in cells[2]  # final
    assert all(diverged in c for c in cells[7:])  # each comparison
    assert "| flaky-gd | gd = gd-same | 0 | 0 | 0 | 1 |" in md  # across the suite, twins counted once
    assert sum(line.startswith("| boosted-gd |") for line in md.splitlines()) == 1
    assert "| vs gd = gd-same |" in md and "| vs gd-same |" not in md  # one column for the twins
    # leaderboard.csv and comparisons.csv stay machine-readable; no negative suboptimality anywhere
    table = pd.read_csv(out / "comparisons.csv")
    assert {"candidate", "baseline", "problem", "verdict", "ratio", "ratio_low", "ratio_high", "p_value"} <= set(table)
    assert {"seeds", "better_seeds", "diverged"} <= set(table) and len(table) == 3 * 2
    boosted = table.query("candidate == 'boosted-gd' and baseline == 'gd'").iloc[0]
    assert boosted["verdict"] == "better" and boosted["better_seeds"] == boosted["seeds"] == 8
    assert boosted["ratio_low"] <= boosted["ratio"] <= boosted["ratio_high"] < 1
    twin = table.query("candidate == 'gd-twin'")
    assert set(twin["verdict"]) == {"equivalent"} and set(twin["ratio"]) == {1.0}
    board = pd.read_csv(out / "leaderboard.csv")
    assert (board[["final_median", "final_low"]] > 0).all().all()
    assert board.set_index("optimizer").loc["flaky-gd", "diverged"] == k
    assert not re.search(r"(?<![\w.])-\d", text(page).split("Every setting")[0])
    # the same bench again, elsewhere: the same verdict, word for word (where it ran aside)
    again, other = bench(tmp_path, "again")
    assert again.exit_code == 0, again.output
    second = verdict_section((other / "report" / "index.html").read_text())

    def without_provenance(section: str) -> str:  # where it ran, and the seconds it measured (they vary)
        section = re.sub(r'<p class="meta provenance">.*?</p>', "", section)
        return re.sub(r"step time x[\d.e+-]+(, within the timing rounds&#x27; spread: no difference)?, ", "", section)

    assert without_provenance(second) == without_provenance(verdict_section(page))


def test_a_suite_with_too_few_seeds_for_holm_is_refused_naming_the_minimum(tmp_path):
    two = SUITE.replace('eval_seeds = "10-17"', 'eval_seeds = "10-15"') + SUITE[SUITE.index("[[problems]]") :]
    result, _ = bench(tmp_path, "refused", two)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "6 evaluation seeds" in line and "at least 7 seeds" in line
    assert smallest_p(6, 2) == 0.0625 and minimum_seeds(2) == 7 and minimum_seeds(5) == 8


def fixed(finals: dict[str, list[float]]) -> tuple[pd.DataFrame, Suite]:
    rows = [
        {"problem": "linreg", "optimizer": o, "seed": s, "step": step, "loss": loss, "optimum": 0.0,
         "time_s": 0.01 * step, "status": "ok", "phase": "eval", "suite_problem": "linreg", "problem_dtype": "float64"}
        for o, values in finals.items()
        for s, final in enumerate(values)
        for step, loss in ((0, 1e6), (5, final))
    ]  # fmt: skip
    return pd.DataFrame(rows), Suite(
        "fixed", "", [0.1], [0], list(range(10)), [Entry("linreg", 5)], search="lr", studies=1
    )


def test_three_times_worse_on_nine_of_ten_seeds_is_worse():
    """Objectives spanning decades: on raw differences the one seed where the candidate wins by far
    outweighs nine 3x losses; on the ratio scale every seed counts alike."""
    baseline = [10.0**k for k in range(10)]
    candidate = [3 * b for b in baseline[:-1]] + [baseline[-1] / 3]
    assert paired_p_value(candidate, baseline) > 0.05  # what the raw scale said
    assert log_p_value(candidate, baseline) < 0.05
    results, suite = fixed({"slow": candidate, "base": baseline})
    table = comparisons({"linreg": finals_per_seed(results, suite.entries[0])}, suite, ["slow"], ["base"])
    row = table.iloc[0]
    assert row["verdict"] == "worse" and row["better_seeds"] == 1 and row["seeds"] == 10
    assert row["ratio"] == pytest.approx(3.0) and row["ratio_low"] <= 3.0 <= row["ratio_high"]
    effect = paired_ratio(candidate, baseline)
    assert (effect.ratio, effect.better_seeds) == (pytest.approx(3.0), 1)


@pytest.mark.parametrize("state", ["capped", "still improving"])
def test_a_loser_whose_search_stopped_at_the_cap_gets_no_verdict(state):
    """3x worse on every seed is "worse", unless the losing side's search ended at the trial cap before it
    converged, moving or not (a capped twin of SGD-momentum lost 20x to an exact copy on the standard suite):
    then inconclusive, naming the cap. The winner's cap changes nothing: more tuning could only widen its lead."""
    results, suite = fixed({"slow": [3.0 * 2**k for k in range(10)], "base": [2.0**k for k in range(10)]})
    per_seed = {"linreg": finals_per_seed(results, suite.entries[0])}
    assert comparisons(per_seed, suite, ["slow"], ["base"]).iloc[0]["verdict"] == "worse"
    picks = [{"study": 0, "state": state}]
    flagged = {("linreg", "slow"): [c["study"] for c in picks if c["state"] in UNSETTLED]}
    row = comparisons(per_seed, suite, ["slow"], ["base"], unsettled=flagged).iloc[0]
    assert row["verdict"] == "inconclusive" and "stopped at the trial cap before converging (study 0)" in row["reason"]
    assert tuning_text(picks, concern=True) == "stopped at the trial cap before converging (study 0)"
    winner = {("linreg", "base"): [0]}
    assert comparisons(per_seed, suite, ["slow"], ["base"], unsettled=winner).iloc[0]["verdict"] == "worse"
    assert tuning_text([{"study": 0, "state": "converged"}], concern=True) == ""


def test_a_board_read_back_still_has_the_answer_first():
    """A leaderboard without effect sizes (read back from its CSV) gives its headline from the verdicts."""
    board = pd.DataFrame(
        [
            {"problem": "p", "optimizer": "new", "role": "candidate", "lr": 0.1, "lr_on_edge": False,
             "metric": "loss", "target": "t", "final_median": 1.0, "final_low": 1.0, "final_high": 1.0,
             "resolution": 1e-9, "reached": 3, "test_accuracy": np.nan, "steps_to_target": 4.0,
             "seconds_to_target": 0.1, "seeds": 8, "diverged": 0, "vs old": "better", "p vs old": 0.01},
        ]
    )  # fmt: skip
    suite = Suite("s", "", [0.1], [0], list(range(8)), [Entry("p", 1)], search="lr", studies=1)
    md = to_markdown(board, suite, ["new"], ["old"])
    assert md.index("- new vs old: better on 1 of 1 problems") < md.index("## p")
    assert "| 4 (3/8 reached) |" in md  # "never" only where no seed reached the target
