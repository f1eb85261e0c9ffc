"""The HTML report and the animation player in a real browser: Debian's headless chromium driven by Playwright.

.ci/run installs chromium; elsewhere these tests are skipped when no chromium is found, unless
OPTBENCH_REQUIRE_TOOLS=1 makes that a failure (.ci/run sets it).
"""

import os
import shutil

import pandas as pd
import pytest
from support import ROOT

import optbench
from optbench.reports import animate, report, save
from optbench.studies.replay import race

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 900  # a laptop's browser window

if CHROMIUM is None and os.environ.get("OPTBENCH_REQUIRE_TOOLS") == "1":
    pytest.fail("OPTBENCH_REQUIRE_TOOLS=1 but no chromium on PATH", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


def _open(browser, path):
    """A 1280 px page on ``path``, with every request and every console error it makes."""
    requests, problems = [], []
    tab = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    tab.on("request", lambda r: requests.append(r.url))
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.goto(path.as_uri(), wait_until="load")
    return tab, [u for u in requests if not (u.startswith("data:") or u == path.as_uri())], problems


def test_report_page_reads_top_down_offline_at_1280_px(browser, tmp_path):
    runs = [
        optbench.run(problem, optimizer, lr=lr, epochs=10, seed=seed)
        for problem in ("linreg", "classification")
        for optimizer in ("gd", "torch-adam")
        for lr in (0.05, 0.5)
        for seed in (0, 1)
    ]
    optbench.save_results(pd.concat(runs, ignore_index=True), tmp_path / "r.parquet")
    gif = save(animate(race("linreg", "gd", epochs=10), max_frames=6), tmp_path / "fit.gif")
    index = report([tmp_path / "r.parquet"], tmp_path / "report", animations=[gif])

    tab, network, problems = _open(browser, index)
    images = tab.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    layout = tab.evaluate(
        """() => {
        const top = (e) => e.getBoundingClientRect().top + window.scrollY;
        return {
            pageWidth: document.documentElement.scrollWidth,
            best: top(document.getElementById("best")),
            bestBottom: document.getElementById("best").getBoundingClientRect().bottom + window.scrollY,
            firstFigure: top(document.querySelector("figure")),
            firstFigureId: document.querySelector("figure").id,
            summary: top(document.getElementById("summary")),
            lastFigure: top(Array.from(document.querySelectorAll("figure")).pop()),
            boxes: Array.from(document.querySelectorAll(".wide")).map(
                (b) => [b.getBoundingClientRect().right, b.scrollWidth > b.clientWidth]),
            summaryRows: document.querySelector("table.summary").rows.length,
        };
    }"""
    )
    shot = ROOT / "results" / "report-screenshot.png" if (ROOT / "results").is_dir() else tmp_path / "shot.png"
    tab.screenshot(path=str(shot))  # what a reader sees first, at 1280 px
    tab.close()

    assert len(images) == 7  # 6 figures (no performance profile over 2 problems) and the animation
    assert all(complete and width > 0 for _, complete, width in images), images
    assert problems == [] and network == []  # no console error, no request beyond the file itself
    assert layout["pageWidth"] <= WIDTH  # the page never scrolls sideways ...
    assert all(right <= WIDTH for right, _ in layout["boxes"])  # ... nor does a table's box
    assert not any(scrolls for _, scrolls in layout["boxes"])  # the summary's 14 columns wrap within it (issue 30)
    assert layout["best"] < HEIGHT / 3 and layout["bestBottom"] < layout["firstFigure"] < HEIGHT  # first screen
    assert layout["firstFigureId"] == "loss_vs_step"
    assert layout["lastFigure"] < layout["summary"]  # the long tables come last
    assert layout["summaryRows"] == 1 + 2 * 2 * 2  # header + problems x optimizers x lrs
    assert shot.stat().st_size > 50_000


def test_the_animation_player_plays_offline(browser, tmp_path):
    path = save(animate(race("linreg", "gd", epochs=10)), tmp_path / "fit.html")
    tab, network, problems = _open(browser, path)
    frame = tab.locator(".optbench-player img")
    count = tab.locator(".optbench-player output")
    tab.get_by_role("button", name="first").click()  # stops the autoplay
    assert count.text_content() == "1 / 11"
    first = frame.get_attribute("src")
    tab.get_by_role("button", name="next").click()
    assert count.text_content() == "2 / 11" and frame.get_attribute("src") != first
    tab.get_by_role("button", name="last").click()
    assert count.text_content() == "11 / 11"
    assert tab.evaluate("document.querySelector('.optbench-player img').naturalWidth") == 576
    tab.close()
    assert problems == [] and network == []


SUITE = """
description = "two problems, planted optimizers, enough seeds for a verdict; spaces make long settings"
lr = "0.01,0.04,0.1"
tune_seeds = "0"
eval_seeds = "10-17"
search = "halton"
trials = 4

[[problems]]
problem = "linreg"
epochs = 10
target = 0.5

[[problems]]
problem = "quadratic"
epochs = 10
target = 0.5
"""

CLIPPED = """() => Array.from(document.querySelectorAll(".card .wide, #verdict .wide")).map((b) => ({
    where: (b.closest(".card")?.querySelector("h3") || b.closest("section")).textContent.slice(0, 40),
    hidden: b.scrollWidth - b.clientWidth,
    right: b.getBoundingClientRect().right,
}))"""


def _swatches(tab):
    """Per card, the optimizer names and their swatch colours."""
    return tab.evaluate(
        """() => Array.from(document.querySelectorAll(".card")).map((card) =>
            Array.from(card.querySelectorAll("tr")).slice(1).map((tr) =>
                [tr.cells[0].textContent, tr.querySelector(".swatch").style.background]))"""
    )


def test_no_column_of_a_bench_page_is_cut_off_at_1280_px(browser, tmp_path):
    """The cards and the verdict's tables fit: every column is on screen, none behind a scroll bar."""
    from support import PLANTED, invoke

    (tmp_path / "planted.py").write_text(PLANTED)
    (tmp_path / "suite.toml").write_text(SUITE)
    result = invoke(
        *("bench", "--plugin", tmp_path / "planted.py", "--optimizer", "boosted-gd,flaky-gd,gd-twin"),
        *(
            "--baselines",
            "gd,torch-adamw",
            "--suite",
            tmp_path / "suite.toml",
            "--out",
            tmp_path / "b",
            "--no-progress",
        ),
    )
    assert result.exit_code == 0, result.output
    tab, network, problems = _open(browser, tmp_path / "b" / "report" / "index.html")
    boxes, page_width, cards = (
        tab.evaluate(CLIPPED),
        tab.evaluate("document.documentElement.scrollWidth"),
        _swatches(tab),
    )
    tab.close()
    assert len(boxes) == 3 + 2 and problems == [] and network == []  # the verdict's three tables, two cards
    assert all(box["hidden"] <= 1 and box["right"] <= WIDTH for box in boxes), boxes
    assert page_width <= WIDTH
    for card in cards:  # five optimizers, five colours: gd-twin and flaky-gd hash near the others
        assert len(card) == 5 and len({colour for _, colour in card}) == 5, card


def test_no_column_of_a_sweep_page_is_cut_off_and_edges_are_marked(browser, tmp_path):
    sweep = invoke_ok(
        "sweep",
        "--problem",
        "linreg,quadratic",
        "--optimizer",
        "gd,torch-adam,torch-sgd",
        "--lr",
        "0.01:1:3",
        "--seeds",
        "0-3",
        "--epochs",
        "10",
        "--out",
        tmp_path / "s.parquet",
    )
    assert "72 runs" in sweep
    invoke_ok("report", tmp_path / "s.parquet", "--out", tmp_path / "r")
    tab, _, problems = _open(browser, tmp_path / "r" / "index.html")
    boxes = tab.evaluate(CLIPPED)
    bold = tab.evaluate("Array.from(document.querySelectorAll('#best tr.winner')).length")
    notes = tab.evaluate("Array.from(document.querySelectorAll('#best .note')).map((n) => n.textContent)")
    edges = tab.evaluate("Array.from(document.querySelectorAll('#best .edge')).map((e) => e.textContent)")
    tab.close()
    assert len(boxes) == 2 and all(box["hidden"] <= 1 and box["right"] <= WIDTH for box in boxes), boxes
    assert problems == [] and bold == 0  # 4 seeds over 2 problems: no test can find a winner
    assert any("winner's curse" in n for n in notes) and any("grid edge" in n for n in notes)
    assert edges and all(e == "(lr: grid edge)" for e in edges)  # gd's and torch-sgd's best lr of 0.01, 0.1, 1 is 1


def invoke_ok(*args):
    from support import invoke

    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_cards_with_long_settings_wrap_instead_of_hiding_columns(browser, tmp_path):
    """A space search's settings (three values and an edge mark) and spreads at the float floor made a
    quick-suite card 1,484 px wide behind a scroll bar; their cells wrap now."""
    from optbench.reports.html import render

    rows = [
        {
            "problem": "logreg val_fraction=0.2",
            "optimizer": name,
            "winner": False,
            "edge": "lr",
            "configs": 8,
            "setting": "lr=0.0316228, betas.0=0.873146, weight_decay=0.000123457",
            "target": "objective <= 0.03",
            "resolution": 1e-6,
            "has_optimum": True,
            "seeds": 10,
            "final": 1e-6,
            "low": 1e-6,
            "high": 1e-6,
            "reached": 10,
            "diverged": 0,
        }
        for name in ("torch-nadam", "torch-radam", "torch-sgd-momentum", "torch-adam", "torch-adamw")
    ]
    page = tmp_path / "index.html"
    page.write_text(render([], pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), [], ["r"], "t"))
    tab, _, problems = _open(browser, page)
    boxes = tab.evaluate(CLIPPED)
    tab.close()
    assert problems == [] and len(boxes) == 1
    assert boxes[0]["hidden"] <= 1 and boxes[0]["right"] <= WIDTH, boxes
