"""examples/lesson2-sgd.ipynb runs top to bottom and tells the lesson's numbers."""

import nbformat
from nbclient import NotebookClient
from support import ROOT

NOTEBOOK = ROOT / "examples" / "lesson2-sgd.ipynb"


def test_the_lesson_notebook_executes():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "step   0  loss 6.6374" in printed  # the lesson's loss at a = (-1, 1) on seed 0's data
    assert "final loss 0.0812" in printed  # ... and after 100 steps of lr 0.1
    html = [o for c in notebook.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert html and "<script" in html[-1]["data"]["text/html"]  # the animation, inline
