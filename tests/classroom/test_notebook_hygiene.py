"""The static checks on the chapter notebooks (tlcourse.classroom.notebook_hygiene): on made-up notebooks,
then on the course's own, which must pass them."""

from pathlib import Path

import nbformat
import pytest

from tlcourse.classroom.notebook_hygiene import ends_in_a_shown_value, main, notebook_problems

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*/*.ipynb"))
TEST_CELL = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "test_it", "points": 1}}


def write(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    nbformat.write(nb, path)
    return path


def test_the_check_catches_a_trailing_value():
    assert ends_in_a_shown_value("x = 1\ncheck_result('a', 'b', x)")
    assert ends_in_a_shown_value("0.5")
    assert not ends_in_a_shown_value("checked = check_result('a', 'b', 0.5)\nprint(checked)")
    assert not ends_in_a_shown_value("assert True\n# a comment")
    assert not ends_in_a_shown_value("assert_close(1.0, 1.0, atol=0)")
    assert not ends_in_a_shown_value("%matplotlib inline\nx = 1")


def test_outputs_execution_counts_and_shown_values_are_problems(tmp_path):
    executed = nbformat.v4.new_code_cell("print(1)", execution_count=3)
    executed.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    path = write(
        tmp_path / "dirty.ipynb",
        nbformat.v4.new_markdown_cell("# A chapter"),
        executed,
        nbformat.v4.new_code_cell("check_result('a', 'b', 0.5)", metadata=TEST_CELL),
    )
    assert notebook_problems(path) == [
        f"{path}: code cell 1 was committed with its outputs",
        f"{path}: code cell 1 was committed with an execution count",
        f"{path}: graded test cell 'test_it' ends in an expression, which nbgrader would take as partial credit: "
        "assign it (checked = ...) or print it",
    ]


def test_the_command_fails_with_a_clear_message_and_passes_clean_notebooks(tmp_path, capsys):
    (tmp_path / "01-a").mkdir()
    write(tmp_path / "01-a" / "a.ipynb", nbformat.v4.new_code_cell("x = 1"))
    assert main([str(tmp_path)]) == 0
    assert "1 notebooks clean" in capsys.readouterr().out
    dirty = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    write(tmp_path / "01-a" / "b.ipynb", dirty)
    assert main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "b.ipynb: code cell 0 was committed with an execution count" in err and "nbstripout" in err
    assert main([str(tmp_path / "nothing-here")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    assert "no notebook found" in capsys.readouterr().err


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_the_chapter_notebooks_are_clean(path):
    assert notebook_problems(path) == []
