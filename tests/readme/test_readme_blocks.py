"""The README runs verbatim: every ```bash and ```python block, in order, in a copy of the repository.

What a newcomer reads is what runs here; the blocks' text is never edited. Sizes shrink from
outside only, through the environment variable the README documents: ``OPTBENCH_EPOCHS_SCALE``
(every run trains that share of its epochs, :func:`optbench.settings.options.scaled_epochs`). The rules,
each visible in README.md itself:

- a ```bash block runs with ``bash -euo pipefail``: every command in it must succeed;
- a ```python block runs with ``python``, or with ``python -m pytest`` when it defines ``test_*``
  functions (it is a test to paste into a suite, so it runs as one);
- the blocks run in the order they appear, in one copy of the repository's files, so a block sees
  what the blocks above it wrote (``sweep.parquet``, ``bench/``, ``race.gif``), as a reader's shell does;
- a block right after ``<!-- not run: REASON -->`` is skipped (installing, the whole test suite,
  code that belongs in another repository), and the reason is printed;
- a block right after ``<!-- the file PATH -->`` must be that file of the repository, verbatim;
- other blocks (toml, yaml, the layout) are data: nothing runs them.

Running them takes minutes (each command imports torch; ``report`` and ``bench`` draw figures), so
the plain ``python -m pytest`` leaves this test out: ``python -m pytest -m readme`` runs it, as
``.ci/run`` does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT

SCALE = "0.05"  # OPTBENCH_EPOCHS_SCALE: 100 epochs become 5 (the quick suite's 300 become 15)
FENCE = re.compile(
    r"(?:<!-- (?P<rule>not run|the file):? (?P<argument>[^\n]+?) -->\n)?^```(?P<language>\w*)\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def blocks() -> list[dict[str, str | int]]:
    """Every fenced block of README.md: its language, code, line number and the rule before it, if any."""
    text = (ROOT / "README.md").read_text()
    return [{**match.groupdict(), "line": text.count("\n", 0, match.start("code"))} for match in FENCE.finditer(text)]


def copy_of_the_repository(target: Path) -> Path:
    """The files a fresh clone has (tracked, plus new files not ignored, while they await their commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_a_block_marked_as_a_file_is_that_file():
    marked = [b for b in blocks() if b["rule"] == "the file"]
    assert marked, "README.md shows examples/sweep.toml"
    for block in marked:
        assert (ROOT / str(block["argument"])).read_text() == block["code"], block["argument"]


@pytest.mark.readme
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_every_readme_block_runs_in_order(tmp_path):
    repo = copy_of_the_repository(tmp_path / "repo")
    scripts = tmp_path / "blocks"
    scripts.mkdir()
    bin_dir = str(Path(sys.executable).parent)  # python, optbench: this environment's
    env = dict(
        os.environ,
        OPTBENCH_EPOCHS_SCALE=SCALE,
        MPLBACKEND="Agg",
        PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    )
    where = subprocess.run(
        [sys.executable, "-c", "import optbench; print(optbench.__file__)"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(repo)), f"the copy's optbench must run, not {where.stdout}"
    ran, skipped, report = 0, [], []
    for block in blocks():
        if block["language"] not in ("bash", "python"):
            continue
        if block["rule"] == "not run":
            skipped.append(f"README.md:{block['line']}: {block['argument']}")
            continue
        code = str(block["code"])
        if block["language"] == "bash":
            command = ["bash", "-euo", "pipefail", "-c", code]
        else:
            script = scripts / f"readme_line_{block['line']}.py"
            script.write_text(code)
            if re.search(r"^def test_\w+\(", code, re.MULTILINE):
                command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(scripts)]
                command.append(str(script))
            else:
                command = [sys.executable, str(script)]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        report.append(f"{time.perf_counter() - start:6.1f} s  README.md:{block['line']}")
        assert done.returncode == 0, (
            f"README.md line {block['line']} ({block['language']}) failed with exit code {done.returncode}:\n"
            f"{code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        ran += 1
    print("\n" + "\n".join(report) + "\nnot run:\n  " + "\n  ".join(skipped))
    assert ran >= 10 and len(skipped) <= 3, (ran, skipped)
