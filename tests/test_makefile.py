"""The Makefile's cleaning targets: `make clean` keeps the grading state, `make clean-grades` removes it only
when asked (a terminal's yes, or FORCE=1) and says what it removes. Run on a copy of the Makefile in an
empty folder (neither target installs anything)."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"
GRADING_STATE = ["release", "submitted", "autograded", "feedback", "gradebook.db"]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def course(tmp_path):
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    for name in ["executed", "release", "submitted/alice/01-shift", "autograded", "feedback"]:
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "gradebook.db").write_text("grades")
    return tmp_path


def make(folder, *args, stdin=subprocess.DEVNULL):
    return subprocess.run(["make", "-s", *args], cwd=folder, stdin=stdin, capture_output=True, text=True, timeout=60)


def test_clean_keeps_the_grading_state(course):
    result = make(course, "clean")
    assert result.returncode == 0, result.stderr
    assert not (course / "executed").exists()
    assert all((course / name).exists() for name in GRADING_STATE), "make clean deleted grading state"
    assert "clean-grades" in result.stdout


def test_clean_grades_without_a_terminal_or_force_removes_nothing(course):
    result = make(course, "clean-grades")
    assert result.returncode != 0
    assert "FORCE=1" in result.stdout and "gradebook.db" in result.stdout
    assert all((course / name).exists() for name in GRADING_STATE)


def test_clean_grades_with_force_removes_and_names_the_grading_state(course):
    result = make(course, "clean-grades", "FORCE=1")
    assert result.returncode == 0, result.stderr
    assert not any((course / name).exists() for name in GRADING_STATE)
    assert all(name in result.stdout for name in GRADING_STATE)


@pytest.mark.parametrize(("answer", "removed"), [("n", False), ("y", True)])
def test_clean_grades_asks_on_a_terminal(course, answer, removed):
    main, secondary = pty.openpty()
    try:
        os.write(main, f"{answer}\n".encode())
        result = make(course, "clean-grades", stdin=secondary)
    finally:
        os.close(main)
        os.close(secondary)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (course / "gradebook.db").exists() is not removed


def test_make_hub_runs_the_tested_command(course):
    """`make hub` runs ``python -m tlcourse hub`` with the roster and port it is given: the command that
    tests/classroom/test_hub.py starts and stops with SIGTERM (a dry run: nothing is installed or started)."""
    (course / "pyproject.toml").write_text("")
    result = make(course, "-n", "--always-make", "hub", "PORT=8123", "ROSTER=class.txt")
    assert result.returncode == 0, result.stderr
    assert ".venv/bin/python -m tlcourse hub --roster class.txt --port 8123" in result.stdout.splitlines()
