"""`tlcourse.classroom.instructor` without running nbgrader: the checks made before any grading."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tlcourse.classroom import instructor


class FakeApi:
    """Just enough of nbgrader's API for the checks: a course root with source/ and submitted/ folders."""

    def __init__(self, root):
        self.coursedir = SimpleNamespace(root=str(root), source_directory="source", submitted_directory="submitted")

    def autograde(self, *args, **kwargs):
        raise AssertionError("grading started despite a bad --students")


@pytest.fixture
def course_root(tmp_path):
    for chapter in ("01-shift", "02-tune"):
        (tmp_path / "source" / chapter).mkdir(parents=True)
        (tmp_path / "source" / chapter / f"{chapter}.ipynb").write_text("{}")
    for student, chapter in [("alice", "01-shift"), ("bob", "01-shift"), ("carol", "02-tune")]:
        (tmp_path / "submitted" / student / chapter).mkdir(parents=True)
    return tmp_path


def test_unknown_students_are_named_with_the_known_ones_before_any_grading(course_root):
    with pytest.raises(ValueError) as error:
        instructor.autograde(FakeApi(course_root), None, ["alice", "alcie", "dave"])
    message = str(error.value)
    assert "['alcie', 'dave']" in message and "['alice', 'bob', 'carol']" in message and "--students" in message


def test_a_student_counts_as_known_only_in_the_chapters_graded(course_root):
    api = FakeApi(course_root)
    instructor.check_students(api, ["01-shift", "02-tune"], ["carol"])  # no error
    instructor.check_students(api, ["01-shift"], None)  # default: everyone who submitted
    with pytest.raises(ValueError, match=r"\['carol'\] in \['01-shift'\]"):
        instructor.check_students(api, ["01-shift"], ["alice", "carol"])
