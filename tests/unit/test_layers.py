"""The layers of STYLE.md hold (pyproject's import-linter contracts, `lint-imports` in CI), and a shortcut
across them breaks the build: a view that trains or tests, a study that draws (issue 30)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import optbench

ROOT = Path(optbench.__file__).resolve().parent.parent
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def lint(where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(LINT, cwd=where, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers():
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "shortcut", "broken"),
    [
        ("reports/html.py", "import optbench.core.engine", "optbench.reports is not allowed to import optbench.core"),
        ("reports/verdict.py", "from optbench.results import stats", "not allowed to import optbench.results.stats"),
        (
            "studies/board.py",
            "import optbench.reports.html",
            "optbench.studies is not allowed to import optbench.reports",
        ),
        ("results/io.py", "import optbench.studies.board", "optbench.results"),  # upwards: the layers contract
    ],
)
def test_a_shortcut_across_the_layers_breaks_the_build(tmp_path, module, shortcut, broken):
    shutil.copytree(ROOT / "optbench", tmp_path / "optbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "optbench" / module).open("a") as file:
        file.write(f"\n{shortcut}  # noqa\n")
    done = lint(tmp_path)
    assert done.returncode != 0 and broken in done.stdout, done.stdout
