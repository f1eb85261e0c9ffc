"""The README and the documentation run verbatim: every ```bash and ```python block, in order, in a copy
of the repository: README.md first, then the pages of docs/ in the order of mkdocs.yml's nav.

What a newcomer reads is what runs here; the blocks' text is never edited. Sizes shrink from
outside only, through the environment variable the README documents: ``OPTBENCH_EPOCHS_SCALE``
(every run trains that share of its epochs, :func:`optbench.settings.options.scaled_epochs`). The rules,
each visible in the pages themselves:

- a ```bash block runs with ``bash -euo pipefail``: every command in it must succeed;
- a ```python block runs with ``python``, or with ``python -m pytest`` when it defines ``test_*``
  functions (it is a test to paste into a suite, so it runs as one);
- the blocks run in the order they appear, in one copy of the repository's files, so a block sees
  what the blocks above it wrote (``sweep.parquet``, ``bench/``, ``race.gif``), as a reader's shell does;
- a block whose text is that of a block already run (the README's bench, shown again in the docs)
  runs once: its second run would redo the same minutes and write the same files;
- a block right after ``<!-- not run: REASON -->`` is skipped (installing, the whole test suite,
  code that belongs in another repository), and the reason is printed;
- a block right after ``<!-- the file PATH -->`` must be that file of the repository, verbatim;
- other blocks (toml, yaml, the layout) are data: nothing runs them.

Running them takes minutes (each command imports torch; ``report`` and ``bench`` draw figures), so
the plain ``python -m pytest`` leaves this test out: ``python -m pytest -m readme`` runs it, as
``.ci/run`` does. The page a block comes from is named in every message (``docs/how-to/many-seeds.md:12``).
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


def pages() -> list[str]:
    """README.md, then every page of mkdocs.yml's nav in its order (paths relative to the repository)."""
    import yaml

    def walk(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for value in node.values() for p in walk(value)]
        return [p for item in node for p in walk(item)] if isinstance(node, list) else []

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    return ["README.md", *(f"docs/{page}" for page in walk(nav))]


def blocks(page: str | None = None) -> list[dict[str, str | int]]:
    """Every fenced block of ``page`` (default: of every page, in order): its page, language, code,
    line number and the rule before it, if any."""
    found = []
    for name in [page] if page else pages():
        text = (ROOT / name).read_text()
        for match in FENCE.finditer(text):
            found.append({**match.groupdict(), "page": name, "line": text.count("\n", 0, match.start("code"))})
    return found


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
    assert marked, "the docs show examples/sweep.toml"
    for block in marked:
        assert (ROOT / str(block["argument"])).read_text() == block["code"], block["argument"]


@pytest.mark.readme
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_every_block_of_the_readme_and_the_docs_runs_in_order(tmp_path):
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
    ran, skipped, report, done_before = 0, [], [], {}
    for block in blocks():
        where = f"{block['page']}:{block['line']}"
        if block["language"] not in ("bash", "python"):
            continue
        if block["rule"] == "not run":
            skipped.append(f"{where}: {block['argument']}")
            continue
        code = str(block["code"])
        if code in done_before:
            report.append(f"   ran  {where} (the same block as {done_before[code]})")
            continue
        done_before[code] = where
        if block["language"] == "bash":
            command = ["bash", "-euo", "pipefail", "-c", code]
        else:
            script = scripts / f"{Path(str(block['page'])).stem}_line_{block['line']}.py"
            script.write_text(code)
            if re.search(r"^def test_\w+\(", code, re.MULTILINE):
                command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(scripts)]
                command.append(str(script))
            else:
                command = [sys.executable, str(script)]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        report.append(f"{time.perf_counter() - start:6.1f} s  {where}")
        assert done.returncode == 0, (
            f"{where} ({block['language']}) failed with exit code {done.returncode}:\n"
            f"{code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        ran += 1
    print("\n" + "\n".join(report) + "\nnot run:\n  " + "\n  ".join(skipped))
    assert ran >= 12 and all(reason.strip() for reason in skipped), (ran, skipped)
