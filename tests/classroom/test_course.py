"""The course runner (tlcourse.classroom.course), on the tiny two-cell notebook of conftest.py."""

import nbformat
import pytest

from tlcourse.classroom.course import chapter_notebooks, results_text, run_course


def test_course_runs_and_prints_the_results_cell(tiny_course, capsys):
    assert run_course(tiny_course / "notebooks", tiny_course / "executed") == 0
    out = capsys.readouterr().out
    assert "table: 45" in out and "1 notebook(s) ran, 0 failed" in out
    executed = nbformat.read(tiny_course / "executed" / "00-tiny" / "tiny.ipynb", as_version=4)
    assert results_text(executed) == "table: 45"


def test_a_failing_notebook_fails_the_course_and_keeps_the_executed_copy(tiny_course, capsys):
    path = tiny_course / "notebooks" / "00-tiny" / "tiny.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "raise ValueError('student bug')"
    nbformat.write(nb, path)
    assert run_course(tiny_course / "notebooks", tiny_course / "executed") == 1
    assert "FAILED" in capsys.readouterr().err
    assert (tiny_course / "executed" / "00-tiny" / "tiny.ipynb").exists()


def test_unknown_chapter_is_a_clear_error(tiny_course):
    with pytest.raises(ValueError, match="00-tiny"):
        chapter_notebooks(tiny_course / "notebooks", ["99-nope"])
