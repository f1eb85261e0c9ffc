"""The documentation site's home page in a real browser: Debian's headless chromium at 1,280 px, offline.

The site is built here with ``mkdocs build --strict`` (the ``docs`` extra, which ``.ci/run`` installs);
where chromium or mkdocs is missing this is skipped, unless OPTBENCH_REQUIRE_TOOLS=1 (``.ci/run``) makes
that a failure. The screenshot goes to ``results/docs-home.png`` when ``results/`` exists (CI keeps it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
from support import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MKDOCS = importlib.util.find_spec("mkdocs") is not None and importlib.util.find_spec("material") is not None
WIDTH, HEIGHT = 1280, 900

if (CHROMIUM is None or not MKDOCS) and os.environ.get("OPTBENCH_REQUIRE_TOOLS") == "1":
    pytest.fail("OPTBENCH_REQUIRE_TOOLS=1 but chromium or mkdocs (the docs extra) is missing", pytrace=False)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not MKDOCS, reason="needs chromium and the docs extra (pip install -e '.[docs]')"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    env = dict(
        os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(folder),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


def test_the_home_page_reads_at_1280_px_offline(site, tmp_path):
    from playwright.sync_api import sync_playwright

    index = site / "index.html"
    requests, problems = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.goto(index.as_uri(), wait_until="load")
        page = tab.evaluate(
            """() => {
            const title = document.querySelector("article h1");
            const picture = document.querySelector("article img");
            const tabs = Array.from(document.querySelectorAll(".md-nav--primary > .md-nav__list > .md-nav__item"));
            return {
                width: document.documentElement.scrollWidth,
                title: title.textContent.trim(),
                titleTop: title.getBoundingClientRect().top,
                picture: [picture.complete, picture.naturalWidth, picture.getBoundingClientRect().top],
                sections: tabs.map((t) => t.textContent.trim().split("\\n")[0].trim()),
            };
        }"""
        )
        shot = ROOT / "results" / "docs-home.png" if (ROOT / "results").is_dir() else tmp_path / "docs-home.png"
        tab.screenshot(path=str(shot))
        browser.close()

    assert [u for u in requests if not u.startswith(("file://", "data:", "blob:"))] == []  # nothing from the network
    assert problems == []
    assert page["width"] <= WIDTH  # no sideways scrolling
    assert page["title"].startswith("optbench") and page["titleTop"] < HEIGHT / 3
    complete, natural_width, top = page["picture"]
    assert complete and natural_width >= 1000 and top < HEIGHT  # the bench's first screen, on the first screen
    assert page["sections"] == ["Home", "Tutorials", "How-to guides", "Reference", "Explanation"]
    assert shot.stat().st_size > 30_000
