"""`check_writable_file` and `check_writable_folder`: every bad output path is a one-line ValueError that
names the option, and a check leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlcourse.library.data.store.writable import check_writable_file, check_writable_folder


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nothing can be written to: a chmod 555 folder, or /sys where permissions do not bind (root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder if os.geteuid() != 0 else _unwritable_system_folder()
    folder.chmod(0o755)


def _unwritable_system_folder():
    for candidate in ("/sys", "/proc/sys"):
        try:
            (Path(candidate) / ".tlcourse-probe").touch()
        except OSError:
            return candidate
        (Path(candidate) / ".tlcourse-probe").unlink()
    pytest.skip("no folder here refuses writes to this user")


def test_a_writable_path_passes_and_nothing_is_created(tmp_path):
    assert check_writable_file(tmp_path / "a.json", "--json") == tmp_path / "a.json"
    assert check_writable_file(tmp_path / "new" / "deeper" / "a.json", "--json").name == "a.json"
    assert check_writable_folder(tmp_path / "out" / "executed", "--output").name == "executed"
    (tmp_path / "exists.json").write_text("{}")
    check_writable_file(tmp_path / "exists.json", "--json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.json"], "the check created something"


@pytest.mark.parametrize("below", ["", "missing"])
def test_a_read_only_folder_is_refused(read_only_dir, below):
    path = os.path.join(read_only_dir, below, "x.json")
    with pytest.raises(ValueError, match=r"^--json .*cannot write in .*give --json another path") as error:
        check_writable_file(path, "--json")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^--output .*cannot write in"):
        check_writable_folder(os.path.join(read_only_dir, below, "executed"), "--output")


def test_a_path_below_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ValueError, match=r"notes.txt is a file, not a folder; give --json another path"):
        check_writable_file(tmp_path / "notes.txt" / "sub" / "x.json", "--json")
    with pytest.raises(ValueError, match=r"^--output .*notes.txt is a file, not a folder"):
        check_writable_folder(tmp_path / "notes.txt", "--output")
    with pytest.raises(ValueError, match=r"notes.txt is a file, not a folder"):
        check_writable_folder(tmp_path / "notes.txt" / "executed", "--output")


def test_a_folder_given_as_a_file_is_refused_with_an_example(tmp_path):
    with pytest.raises(
        ValueError, match=r"is a folder, not a file; give a file path, e\.g\. grade export .*grades.csv"
    ):
        check_writable_file(tmp_path, "grade export", example="grades.csv")
