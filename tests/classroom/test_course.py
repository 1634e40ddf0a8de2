"""The course runner (tlcourse.classroom.course), on the tiny two-cell notebook of conftest.py."""

import os

import nbformat
import pytest

from tlcourse.classroom.course import chapter_notebooks, longest_first, results_text, run_course


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


def test_two_notebooks_run_side_by_side_each_with_its_share_of_the_threads(tiny_course, capsys):
    """Two at a time, each kernel with half the cores' threads; the tables still print in chapter order."""
    code = (
        "import os, time\nt0 = time.time()\ntime.sleep(2)\n"
        "x = f\"{NAME} {os.environ['OMP_NUM_THREADS']} {t0} {time.time()}\""
    )
    first = tiny_course / "notebooks" / "00-tiny" / "tiny.ipynb"
    nb = nbformat.read(first, as_version=4)
    nb.cells[0].source = code.replace("{NAME}", "first")
    nbformat.write(nb, first)
    (tiny_course / "notebooks" / "01-other").mkdir()
    nb.cells[0].source = code.replace("{NAME}", "second")
    nbformat.write(nb, tiny_course / "notebooks" / "01-other" / "other.ipynb")
    assert run_course(tiny_course / "notebooks", tiny_course / "executed", jobs=2) == 0
    out = capsys.readouterr().out
    tables = [line.split()[1:] for line in out.splitlines() if line.startswith("table: ")]
    assert [t[0] for t in tables] == ["first", "second"]  # chapter order, whichever finished first
    assert {t[1] for t in tables} == {str(max(1, (os.cpu_count() or 1) // 2))}
    (_, _, start_1, end_1), (_, _, start_2, end_2) = (
        [float(v) if i > 1 else v for i, v in enumerate(t)] for t in tables
    )
    assert start_1 < end_2 and start_2 < end_1, "the two notebooks ran one after the other"
    assert "2 at a time" in out and "2 notebook(s) ran, 0 failed" in out


def test_the_longest_notebook_starts_first_and_one_without_a_record_before_it(tmp_path):
    """The order comes from the latest benchmark run that measured each notebook; ties keep chapter order."""
    paths = [tmp_path / name / "n.ipynb" for name in ("01-a", "02-b", "03-c", "04-d", "05-new")]
    record = tmp_path / "benchmarks.toml"
    record.write_text(
        '[[run]]\n[run.seconds]\n"notebook 01-a" = 90.0\n"notebook 02-b" = 10.0\n"notebook 03-c" = 50.0\n'
        '"notebook 04-d" = 50.0\n"course" = 500.0\n'
        '[[run]]\n[run.seconds]\n"notebook 01-a" = 20.0\n'  # measured again later: 20 s now
    )
    assert [p.parent.name for p in longest_first(paths, record)] == ["05-new", "03-c", "04-d", "01-a", "02-b"]
    assert longest_first(paths, tmp_path / "none.toml") == paths  # no record: chapter order
