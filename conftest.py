"""What the package's own doctests share (``python -m pytest`` runs them: pyproject's testpaths).

Each example runs in a fresh empty folder, as a reader would paste it, so the files it writes
(``sweep.parquet``, ``report/``, ``fit.gif``) never land in the checkout.
"""

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctest_in_an_empty_folder(request: pytest.FixtureRequest) -> None:
    if isinstance(request.node, DoctestItem):
        request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
