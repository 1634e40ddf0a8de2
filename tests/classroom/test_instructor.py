"""`tlcourse.classroom.instructor` without running nbgrader: the checks made before any grading."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from tlcourse.classroom import instructor


class FakeApi:
    """Just enough of nbgrader's API for the checks: a course root with source/ and submitted/ folders."""

    def __init__(self, root):
        self.coursedir = SimpleNamespace(
            root=str(root),
            source_directory="source",
            submitted_directory="submitted",
            autograded_directory="autograded",
            release_directory="release",
            feedback_directory="feedback",
        )

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


# ------------------------------------------------------------------------------------------------ collect
def _notebook(text: str = "") -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(text)]
    return nbformat.writes(nb)


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _put(inbox: Path, relative: str, text: str) -> Path:
    path = inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _submitted(root: Path) -> list[str]:
    folder = root / "submitted"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.ipynb")) if folder.exists() else []


def test_both_layouts_with_different_copies_stop_the_collect(course_root, inbox, capsys):
    _put(inbox, "alice/01-shift.ipynb", _notebook("good = 1"))
    _put(inbox, "alice/01-shift/01-shift.ipynb", _notebook("other = 2"))
    _put(inbox, "bob/01-shift.ipynb", _notebook("bob = 1"))
    with pytest.raises(ValueError) as error:
        instructor.collect(FakeApi(course_root), inbox)
    message = str(error.value)
    assert "nothing was collected" in message and "alice handed in 2 different copies of 01-shift.ipynb" in message
    assert "keep the one to grade" in message
    assert _submitted(course_root) == []  # bob's good notebook waits too: all or nothing


def test_identical_copies_are_collected_once_and_counted_right(course_root, inbox, capsys):
    same = _notebook("same = 1")
    for layout in ("alice/01-shift.ipynb", "alice/01-shift/01-shift.ipynb", "bob/02-tune/02-tune.ipynb"):
        _put(inbox, layout, same)
    collected = instructor.collect(FakeApi(course_root), inbox)
    assert collected == {"alice": ["01-shift"], "bob": ["02-tune"]}
    out = capsys.readouterr().out
    assert "collected once" in out and "collected 2 notebooks from 2 students" in out
    assert _submitted(course_root) == ["alice/01-shift/01-shift.ipynb", "bob/02-tune/02-tune.ipynb"]


def test_ordinary_names_in_any_script_are_student_ids():
    for name in ("alice", "s1234567", "jean-luc.picard", "josé", "李雷", "a_b@uni.edu"):
        assert instructor.check_student_id(name, "inbox") is None, name


@pytest.mark.parametrize("name", ["*", "br[ack]et", "a?b", ".hidden", "-rf", "_x", "a b", "a\\b", "{a,b}"])
def test_student_names_that_nbgrader_reads_as_patterns_are_refused(course_root, inbox, name):
    _put(inbox, f"{name}/01-shift.ipynb", _notebook())
    _put(inbox, "alice/01-shift.ipynb", _notebook())
    with pytest.raises(ValueError, match=r"has characters nbgrader would read as a pattern.*rename the folder"):
        instructor.collect(FakeApi(course_root), inbox)
    assert _submitted(course_root) == []


def test_symbolic_links_are_never_followed(course_root, inbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor's key")
    (inbox / "mallory").mkdir()
    (inbox / "mallory" / "01-shift.ipynb").symlink_to(secret)
    (inbox / "eve").mkdir()
    (inbox / "eve" / "02-tune").symlink_to(tmp_path, target_is_directory=True)
    (inbox / "trudy").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ValueError) as error:
        instructor.collect(FakeApi(course_root), inbox)
    message = str(error.value)
    for who in ("mallory/01-shift.ipynb", "eve/02-tune", "inbox/trudy"):
        assert f"{who} is a symbolic link" in message
    assert not (course_root / "submitted" / "mallory").exists() and not (course_root / "submitted" / "eve").exists()


def test_a_notebook_under_another_chapters_folder_goes_to_its_own_chapter(course_root, inbox, capsys):
    _put(inbox, "alice/01-shift/02-tune.ipynb", _notebook())
    _put(inbox, "alice/01-shift/final-version.ipynb", _notebook())
    assert instructor.collect(FakeApi(course_root), inbox) == {"alice": ["02-tune"]}
    out = capsys.readouterr().out
    assert "02-tune.ipynb is chapter 02-tune's notebook, filed under 01-shift; collected as 02-tune" in out
    assert "skipped" in out and "final-version.ipynb" in out and "renamed?" in out


def test_a_different_earlier_submission_is_replaced_only_with_force(course_root, inbox, capsys):
    _put(inbox, "alice/01-shift.ipynb", _notebook("first = 1"))
    instructor.collect(FakeApi(course_root), inbox)
    kept = course_root / "submitted" / "alice" / "01-shift" / "01-shift.ipynb"
    instructor.collect(FakeApi(course_root), inbox)  # the same again: nothing to replace
    assert "1 unchanged" in capsys.readouterr().out
    _put(inbox, "alice/01-shift.ipynb", _notebook("second = 2"))
    with pytest.raises(ValueError, match=r"already holds a different submission.*--force"):
        instructor.collect(FakeApi(course_root), inbox)
    assert "first = 1" in kept.read_text()
    instructor.collect(FakeApi(course_root), inbox, force=True)
    assert "second = 2" in kept.read_text()


def test_an_empty_or_broken_notebook_is_collected_with_a_note(course_root, inbox, capsys):
    _put(inbox, "alice/01-shift.ipynb", "")
    _put(inbox, "bob/01-shift.ipynb", "{not json")
    instructor.collect(FakeApi(course_root), inbox)
    out = capsys.readouterr().out
    assert "alice/01-shift.ipynb is empty: collected; autograde will report it" in out
    assert "bob/01-shift.ipynb is not a valid notebook" in out
    assert _submitted(course_root) == ["alice/01-shift/01-shift.ipynb", "bob/01-shift/01-shift.ipynb"]


def test_autograde_hands_an_unreadable_notebook_to_nobody(course_root, capsys):
    """FakeApi.autograde fails the test if called: the empty notebook is reported, not graded."""
    folder = course_root / "submitted" / "alice" / "01-shift"
    (folder / "01-shift.ipynb").write_text("")
    rows = instructor.autograde(FakeApi(course_root), ["01-shift"], ["alice"])
    assert rows[0].note == "ungradable: 01-shift.ipynb is empty" and not rows[0].error
    assert "1 not notebooks (not graded)" in capsys.readouterr().out


def test_autograde_refuses_a_pattern_name_found_in_submitted(course_root):
    (course_root / "submitted" / "*" / "01-shift").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"nothing was graded.*'\*' has characters nbgrader would read"):
        instructor.autograde(FakeApi(course_root), ["01-shift"])


# ------------------------------------------------------------------- what a hostile probe found (round 2)
def test_an_inbox_that_holds_the_course_or_is_one_of_its_folders_is_refused(course_root):
    for inbox in (course_root, course_root / "submitted", course_root / "source"):
        inbox.mkdir(exist_ok=True)
        with pytest.raises(ValueError, match="holds the course itself"):
            instructor.collect(FakeApi(course_root), inbox)


def test_tool_folders_are_skipped_and_decomposed_names_are_letters(course_root, inbox, capsys):
    import unicodedata

    for tool in ("__MACOSX", ".git"):
        _put(inbox, f"{tool}/01-shift.ipynb", _notebook())
    decomposed = unicodedata.normalize("NFD", "josé")
    _put(inbox, f"{decomposed}/01-shift.ipynb", _notebook())
    _put(inbox, "नमस्ते/01-shift.ipynb", _notebook())
    assert sorted(instructor.collect(FakeApi(course_root), inbox)) == sorted([decomposed, "नमस्ते"])
    assert "a folder that tools add (__MACOSX)" in capsys.readouterr().out


def test_a_file_in_the_way_in_submitted_stops_the_collect_before_any_copy(course_root, inbox):
    _put(inbox, "alice/01-shift.ipynb", _notebook())
    _put(inbox, "zoe/01-shift.ipynb", _notebook())
    (course_root / "submitted" / "zoe").write_text("not a folder")
    with pytest.raises(ValueError, match=r"submitted/zoe is a file where collect needs a folder"):
        instructor.collect(FakeApi(course_root), inbox)
    assert _submitted(course_root) == []


def test_a_huge_file_is_not_read_as_a_notebook(tmp_path):
    huge = tmp_path / "huge.ipynb"
    with huge.open("wb") as f:
        f.truncate(instructor.MAX_NOTEBOOK_BYTES + 1)  # sparse: no disk used
    assert "too large for a notebook" in instructor.notebook_problem(huge)
    assert len(instructor.file_digest(huge)) == 64


def test_export_never_writes_over_the_course_even_with_force(course_root, tmp_path):
    api = FakeApi(course_root)
    (course_root / "gradebook.db").write_text("grades")
    for target in (course_root / "gradebook.db", course_root / "source" / "01-shift" / "01-shift.ipynb"):
        with pytest.raises(ValueError, match="the course's own file or folder"):
            instructor.check_export_path(api, target, force=True)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        instructor.check_export_path(api, tmp_path / "fifo", force=True)
    (tmp_path / "old.csv").write_text("x")
    with pytest.raises(ValueError, match="--force"):
        instructor.check_export_path(api, tmp_path / "old.csv", force=False)
    instructor.check_export_path(api, tmp_path / "old.csv", force=True)


def test_a_grade_counts_only_for_the_submission_it_was_given_to(course_root):
    """No stamp (grading failed or was cut short) or a stamp of another submission: no score exported."""
    api = FakeApi(course_root)
    folder = course_root / "submitted" / "alice" / "01-shift"
    (folder / "01-shift.ipynb").write_text(_notebook("first = 1"))
    assert instructor.grade_status(api, "01-shift", "alice", in_gradebook=False) == "not graded yet"
    assert instructor.grade_status(api, "01-shift", "alice", True).startswith("grading failed or was interrupted")
    stamp = course_root / "autograded" / "alice" / "01-shift" / instructor.GRADED_STAMP
    stamp.parent.mkdir(parents=True)
    stamp.write_text(instructor.submission_digest(folder))
    assert instructor.grade_status(api, "01-shift", "alice", True) == "graded"
    (folder / "01-shift.ipynb").write_text(_notebook("second = 2"))  # collected again with --force
    assert instructor.grade_status(api, "01-shift", "alice", True).startswith("stale: resubmitted")
    (folder / "01-shift.ipynb").write_text("")
    assert instructor.grade_status(api, "01-shift", "alice", True) == "ungradable: 01-shift.ipynb is empty"
    assert instructor.grade_status(api, "01-shift", "nobody", False) == "not submitted"


def test_feedback_cuts_hidden_code_out_of_every_output():
    """A student's cell can print the hidden tests (IPython keeps every cell's source in `In`); nbgrader's
    marker rule is any line that contains BEGIN / END HIDDEN TESTS."""
    hidden = "assert square(-4) == 16  # SECRET"
    nb = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell(
        f"assert square(3) == 9\n#### BEGIN HIDDEN TESTS (edge cases)\n{hidden}\n## END HIDDEN TESTS"
    )
    test.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="negative", traceback=[hidden])]
    leak = nbformat.v4.new_code_cell("print(In[-2])")
    leak.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"LEAK {hidden}\n"),
        nbformat.v4.new_output("display_data", data={"text/markdown": f"**{hidden}**", "text/plain": hidden}),
        nbformat.v4.new_output("error", ename="ValueError", evalue=f"{hidden}", traceback=[f"x {hidden}"]),
    ]
    nb.cells = [test, leak]
    scrubbed, _ = instructor.HideHiddenTests().preprocess(nb, {})
    text = nbformat.writes(scrubbed)
    assert "SECRET" not in text and "square(-4)" not in text and "HIDDEN TESTS (edge" not in text
    assert "A test of this cell failed. AssertionError: negative" in text and "LEAK [hidden test code]" in text
