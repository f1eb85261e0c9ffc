"""The HTML report in a real browser: Debian's headless chromium driven by Playwright.

.ci/run installs chromium; elsewhere this test is skipped when no chromium is found, unless
OPTBENCH_REQUIRE_TOOLS=1 makes that a failure (.ci/run sets it).
"""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import optbench
from optbench.reports import animate, report, save

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parent.parent

if CHROMIUM is None and os.environ.get("OPTBENCH_REQUIRE_TOOLS") == "1":
    pytest.fail("OPTBENCH_REQUIRE_TOOLS=1 but no chromium on PATH", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


def test_report_page_loads_every_image_offline(tmp_path):
    from playwright.sync_api import sync_playwright

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

    requests, problems = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
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
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(index.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        rows = page.evaluate("document.querySelectorAll('table')[0].rows.length")
        shot = ROOT / "results" / "report-screenshot.png" if (ROOT / "results").is_dir() else tmp_path / "shot.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    assert len(images) == 8  # 7 figures and the animation
    assert all(complete and width > 0 for _, complete, width in images), images
    assert problems == []
    assert [u for u in requests if not (u.startswith("data:") or u == index.as_uri())] == []  # no network
    assert rows == 1 + 2 * 2 * 2  # header + problems x optimizers x lrs
    assert shot.stat().st_size > 50_000
