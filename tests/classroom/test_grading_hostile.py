"""The instructor commands on hostile and broken submissions, end to end, through the real CLI.

A toy chapter (two one-line exercises) keeps this fast; what is tested is the grading machinery:
cell time limit, memory limit, dead and unresponsive kernels, deleted, duplicated and renamed cells,
feedback for every student and the CSV export.
"""

from __future__ import annotations

import copy
import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

SECRET = "HIDDEN-TEST-CODE"  # in a hidden test: never in a student version or in feedback
SOLUTION = {"grade": False, "solution": True, "locked": False, "schema_version": 3, "task": False}
TEST = {"grade": True, "solution": False, "locked": True, "schema_version": 3, "task": False}


def toy_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell
    nb.cells = [
        cell(
            "import math", metadata={"nbgrader": {**SOLUTION, "solution": False, "locked": True, "grade_id": "setup"}}
        ),
        cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            metadata={"nbgrader": {**SOLUTION, "grade_id": "square"}},
        ),
        cell(
            "assert square(3) == 9\n### BEGIN HIDDEN TESTS\n"
            f"assert square(-4) == 16, 'square of a negative number'  # {SECRET}\n### END HIDDEN TESTS",
            metadata={"nbgrader": {**TEST, "grade_id": "test_square", "points": 2}},
        ),
        cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            metadata={"nbgrader": {**SOLUTION, "grade_id": "double"}},
        ),
        cell("assert double(4) == 8", metadata={"nbgrader": {**TEST, "grade_id": "test_double", "points": 2}}),
        cell(
            "assert math.sqrt(square(2)) == 2", metadata={"nbgrader": {**TEST, "grade_id": "test_state", "points": 1}}
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def with_cell(nb, index: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells[index].source = source
    return nb


def submissions(source: nbformat.NotebookNode) -> dict[str, tuple[nbformat.NotebookNode, float]]:
    """Student name -> (notebook, the score it must get out of 5)."""
    deleted = copy.deepcopy(source)
    deleted.cells = [c for c in deleted.cells if c.metadata["nbgrader"]["grade_id"] not in ("double", "test_double")]
    duplicated = copy.deepcopy(source)
    duplicated.cells.insert(3, copy.deepcopy(duplicated.cells[2]))
    foreign = copy.deepcopy(source)
    for cell in foreign.cells:
        cell.metadata["nbgrader"]["grade_id"] = "ch3-" + cell.metadata["nbgrader"]["grade_id"]
    return {
        "good": (source, 5),
        "raises": (with_cell(source, 1, "def square(x):\n    raise ValueError('oops')"), 2),
        "loops": (with_cell(source, 1, "def square(x):\n    while True:\n        pass"), 2),
        "ignores-interrupt": (
            with_cell(source, 3, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
            3,
        ),
        "kills-kernel": (with_cell(source, 3, "import os\nos._exit(1)"), 3),
        "memory-hog": (with_cell(source, 1, "hog = bytearray(3 * 1024**3)\ndef square(x):\n    return x * x"), 2),
        "deleted-cells": (deleted, 3),
        "duplicated-cell": (duplicated, 5),
        "renamed-function": (with_cell(source, 1, "def squared(x):\n    return x * x"), 2),
        "fails-hidden-test": (with_cell(source, 1, "def square(x):\n    return abs(x) * x"), 3),
        # Another chapter's cells pasted in: their nbgrader ids mean nothing here (it crashed the grading).
        # The chapter's own cells are put back, as released, ahead of the student's: their tests fail.
        "other-chapter": (foreign, 0),
    }


# Students whose "notebook" is not one: reported by collect and autograde, graded by nobody, and never a 0.0.
UNGRADABLE = {"empty": "", "not-json": "{this is not a notebook"}


def grade(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tlcourse", "grade", *args, "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycourse")
    source = toy_notebook()
    (root / "notebooks" / "00-toy").mkdir(parents=True)
    nbformat.write(source, root / "notebooks" / "00-toy" / "toy.ipynb")
    inbox = tmp_path_factory.mktemp("inbox")
    expected = {}
    for student, (nb, score) in submissions(source).items():
        (inbox / student).mkdir()
        nbformat.write(nb, inbox / student / "toy.ipynb")  # flat layout: the chapter is found by name
        expected[student] = score
    (inbox / "typo").mkdir()
    nbformat.write(source, inbox / "typo" / "toy-final.ipynb")  # a renamed notebook is reported, not graded
    for student, text in UNGRADABLE.items():
        (inbox / student).mkdir()
        (inbox / student / "toy.ipynb").write_text(text)
    steps = {
        "release": grade(root, "release"),
        "collect": grade(root, "collect", str(inbox)),
        "autograde": grade(root, "autograde", "--cell-timeout", "5", "--memory-mib", "1024"),
        "autograde-again": grade(root, "autograde", "--cell-timeout", "5"),
        "feedback": grade(root, "feedback"),
        "export": grade(root, "export", str(root / "grades.csv")),
    }
    return root, steps, expected


def test_every_step_succeeds(graded):
    _, steps, _ = graded
    for name, proc in steps.items():
        assert proc.returncode == 0, f"grade {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_release_and_collect(graded):
    root, steps, expected = graded
    released = (root / "release" / "00-toy" / "toy.ipynb").read_text()
    assert "BEGIN SOLUTION" not in released and "return x * x" not in released
    assert "skipped" in steps["collect"].stdout and "toy-final.ipynb" in steps["collect"].stdout
    assert "empty/toy.ipynb is empty: collected" in steps["collect"].stdout
    assert sorted(p.name for p in (root / "submitted").iterdir()) == sorted([*expected, *UNGRADABLE])


def test_each_hostile_submission_costs_only_its_own_points(graded):
    root, _, expected = graded
    with open(root / "grades.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    scores = {student: float(row["score"]) for student, row in rows.items() if row["status"] == "graded"}
    assert scores == {student: float(score) for student, score in expected.items()}
    for student in UNGRADABLE:  # no score that could pass for a real zero, and the reason
        assert rows[student]["score"] == "" and rows[student]["status"].startswith("ungradable: toy.ipynb is")


def test_the_log_says_what_happened(graded):
    _, steps, _ = graded
    out = steps["autograde"].stdout
    assert "KernelDied" in out and "KernelUnresponsive" in out
    assert "empty: not graded: toy.ipynb is empty" in out and "not-json: not graded: toy.ipynb is not a valid" in out
    assert "13 students, 11 submissions graded, 2 not notebooks (not graded), 0 with grading errors" in out
    assert "Please see the above traceback" not in out


def test_a_second_autograde_keeps_every_grade(graded):
    """Grades already given are not overwritten: an unchanged submission is not graded again."""
    _, steps, expected = graded
    out = steps["autograde-again"].stdout
    assert "autograding" not in out
    assert out.count("graded before, unchanged (--regrade grades it again)") == len(expected)


def test_feedback_for_every_student(graded):
    root, _, expected = graded
    for student in expected:
        html = root / "feedback" / student / "00-toy" / "toy.html"
        assert html.exists(), f"no feedback for {student}"


def test_hidden_tests_never_reach_a_student(graded):
    """Released notebooks and feedback hold no hidden test code; feedback says that one failed, and why."""
    root, _, expected = graded
    assert SECRET not in (root / "release" / "00-toy" / "toy.ipynb").read_text()
    for student in expected:
        html = (root / "feedback" / student / "00-toy" / "toy.html").read_text()
        assert SECRET not in html and "square(-4)" not in html, f"{student}'s feedback shows the hidden test"
        assert "hidden tests ran here" in html
    html = (root / "feedback" / "fails-hidden-test" / "00-toy" / "toy.html").read_text()
    assert "A test of this cell failed. AssertionError: square of a negative number" in html
    assert SECRET in (root / "autograded" / "fails-hidden-test" / "00-toy" / "toy.ipynb").read_text()
