"""The documentation: its generated reference is what the code makes now, the README is a front door whose
links resolve, and the package points to its docs. None of this needs a network.

The site itself is built by ``mkdocs build --strict`` in ``.ci/run`` (a link to a missing page or anchor
fails it); every code block of README.md and docs/ runs in ``tests/readme/test_readme_blocks.py``.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest
from support import ROOT, invoke

import optbench


def generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_reference_page_is_what_the_code_makes_now():
    for name, text in generator().pages().items():
        committed = (ROOT / "docs" / "reference" / name).read_text()
        assert committed == text, f"docs/reference/{name} differs from the code's; run: python docs/generate.py"


def test_a_new_column_or_public_name_changes_the_generated_pages(monkeypatch):
    """What makes the test above fail when the code moves on: the pages follow the schema and the API."""
    from optbench.results import schema

    docs = generator()
    monkeypatch.setattr(schema, "CORE_MEASUREMENTS", (*schema.CORE_MEASUREMENTS, "lr_now"))
    monkeypatch.setitem(schema.MEANINGS, "lr_now", "the learning rate the schedule gave at that step")
    assert "| `lr_now` | measurement | the learning rate the schedule gave at that step |" in docs.columns_page()
    monkeypatch.setitem(optbench._EXPORTS, "bench2", "optbench.verdicts")
    assert "::: optbench.verdicts.bench2" in docs.api_page()


def test_every_column_the_core_writes_has_a_meaning():
    from optbench.results import schema
    from optbench.settings import declared

    helped = {s.name for s in declared.SETTINGS if s.help}
    columns = [*schema.IDENTITY_COLUMNS, *schema.CORE_SETTINGS, *schema.CORE_MEASUREMENTS, *schema.BUILT_IN_METRICS]
    assert [c for c in columns if c not in schema.MEANINGS and c not in helped] == []


def test_every_public_name_is_on_the_api_page():
    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    for name, module in optbench._EXPORTS.items():
        assert f"::: {module}.{name}\n" in page, name


def test_the_readme_fits_on_a_few_screens_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://|#|mailto:", link)]
    assert len(local) > 10  # the README is mostly links into docs/
    missing = [link for link in local if not (ROOT / link.split("#")[0]).exists()]
    assert missing == []


def test_the_readme_keeps_what_a_newcomer_comes_for():
    text = (ROOT / "README.md").read_text()
    for heading in ("## Quick start", "## The lesson in five lines", "## A verdict in one command"):
        assert heading in text
    assert "optbench bench --optimizer" in text and "docs/assets/bench-first-screen.png" in text


def test_help_metadata_and_site_name_the_same_documentation():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Documentation"] == optbench.DOCS_URL
    assert f"site_url: {optbench.DOCS_URL}\n" in (ROOT / "mkdocs.yml").read_text()
    shown = invoke("--help")
    assert shown.exit_code == 0 and f"Documentation: {optbench.DOCS_URL}" in shown.output


def test_one_version_source():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "optbench.__version__"}
    shown = invoke("--version")
    assert shown.output.strip() == f"optbench, version {optbench.__version__}"
    assert f"## [{optbench.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("extra", ["docs", "notebook"])
def test_each_extra_is_pinned(extra):
    """CI installs with -c constraints.txt: a docs or notebook tool left unpinned would drift."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pinned = {
        line.split("==")[0].strip().lower()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    named = [re.split(r"[<>=\[]", r)[0].strip().lower() for r in pyproject["project"]["optional-dependencies"][extra]]
    assert [n for n in named if n not in pinned and n not in ("matplotlib", "ipykernel")] == []


def test_bench_help_names_every_suite_and_every_file_it_writes():
    """The CLI reference is bench --help: it must not lag the suites or the outputs (it once lacked both)."""
    from optbench.studies.bench import OUTPUTS
    from optbench.studies.suite import SUITES

    shown = " ".join(invoke("bench", "--help").output.split())
    assert all(name in shown for name in SUITES)
    assert all(name in shown for name in OUTPUTS)
