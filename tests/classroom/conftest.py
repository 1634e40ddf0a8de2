"""Fixtures of the classroom tests: a tiny course of one two-cell notebook."""

import nbformat
import pytest


@pytest.fixture
def tiny_course(tmp_path):
    """A folder with notebooks/00-tiny/tiny.ipynb: one cell computes 45, the `results` cell prints it."""
    folder = tmp_path / "notebooks" / "00-tiny"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = sum(range(10))"),
        nbformat.v4.new_code_cell("print('table:', x)", metadata={"tags": ["results"]}),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "tiny.ipynb")
    return tmp_path
