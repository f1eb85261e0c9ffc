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
    gif = save(animate("linreg", "gd", epochs=10, max_frames=6), tmp_path / "fit.gif")
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
    assert all(right <= WIDTH for right, _ in layout["boxes"])  # ... a wide table scrolls in its own box
    assert any(scrolls for _, scrolls in layout["boxes"])  # (the summary's 14 columns do)
    assert layout["best"] < HEIGHT / 3 and layout["bestBottom"] < layout["firstFigure"] < HEIGHT  # first screen
    assert layout["firstFigureId"] == "loss_vs_step"
    assert layout["lastFigure"] < layout["summary"]  # the long tables come last
    assert layout["summaryRows"] == 1 + 2 * 2 * 2  # header + problems x optimizers x lrs
    assert shot.stat().st_size > 50_000


def test_the_animation_player_plays_offline(browser, tmp_path):
    path = save(animate("linreg", "gd", epochs=10), tmp_path / "fit.html")
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
