"""Every sub-command of ``python -m tlcourse`` given bad arguments, in a table: a non-zero exit, one clear
``error:`` line that names the problem (and the option), no traceback, and no new file in the working folder.

The commands run in-process (`tlcourse.__main__.main`) in an empty temporary folder. The work behind each
command (an experiment, the course, nbgrader) is replaced by a stub that fails the test, so a check that
comes too late shows up as "the work started", never as an hour of training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tlcourse.__main__ import main


def _work_started(*args, **kwargs):
    raise AssertionError("the work started before the arguments were checked")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder with: a file, a folder, a read-only folder (READONLY), broken run files."""
    from tlcourse import experiments
    from tlcourse.classroom import course, instructor
    from tlcourse.experiments import registry

    experiments.experiment_names()  # fill the registry, then make every experiment fail if it runs
    for name in list(registry.EXPERIMENTS):
        monkeypatch.setitem(registry.EXPERIMENTS, name, _work_started)
    monkeypatch.setattr(course, "run_course", _work_started)
    monkeypatch.setattr(instructor, "nbgrader_api", _work_started)

    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("not a folder")
    (work / "adir").mkdir()
    (work / "notebooks" / "01-x").mkdir(parents=True)
    (work / "notebooks" / "01-x" / "x.ipynb").write_text("{}")
    (work / "notjson.json").write_text("{oops")
    (work / "other.json").write_text(json.dumps({"name": "not a run"}))
    run = {"experiment": "dann", "seed": 0, "results": {"dann": 0.5}, "seconds": 1.0}
    (work / "dann-0.json").write_text(json.dumps(run))
    (work / "tta-1.json").write_text(json.dumps({**run, "experiment": "test-time", "seed": 1}))
    (work / "corrupt.toml").write_text('[dann]\ncommand = "x\n')
    (work / "empty.toml").write_text("")
    (work / "grades.csv").write_text("student,chapter,score\nalice,01,6\n")
    read_only = work / "readonly"
    read_only.mkdir()
    read_only.chmod(0o555)
    monkeypatch.chdir(work)
    yield work
    read_only.chmod(0o755)


def _read_only_path(workdir: Path) -> str:
    """A folder this user cannot write to: ./readonly, or /sys where permissions do not bind (root)."""
    if os.geteuid() != 0:
        return "readonly"
    if not os.path.isdir("/sys") or _writable("/sys"):
        pytest.skip("running as root with no read-only folder to test against")
    return "/sys"


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".tlcourse-probe").touch()
    except OSError:
        return False
    Path(folder, ".tlcourse-probe").unlink()
    return True


# (argv, what the error line must contain). READONLY stands for a folder nothing can be written to.
CASES = [
    # 1. outputs checked before the work
    (["reproduce", "domain-shift", "--json", "READONLY/ds.json"], ["--json", "cannot write"]),
    (["reproduce", "domain-shift", "--json", "READONLY/new/ds.json"], ["--json", "cannot write"]),
    (["reproduce", "domain-shift", "--json", "afile/ds.json"], ["--json", "afile is a file, not a folder"]),
    (["reproduce", "domain-shift", "--json", "afile/a/b/ds.json"], ["--json", "afile is a file, not a folder"]),
    (["reproduce", "domain-shift", "--json", "adir"], ["--json adir is a folder", "adir/domain-shift-0.json"]),
    (["course", "--output", "READONLY/executed"], ["--output", "cannot write"]),
    (["course", "--output", "afile"], ["--output afile is a file, not a folder"]),
    (["course", "--output", "afile/executed"], ["--output", "afile is a file, not a folder"]),
    (["benchmark", "--output", "afile/results"], ["--output", "afile is a file, not a folder"]),
    (["grade", "export", "READONLY/grades.csv"], ["grade export", "cannot write"]),
    (["grade", "export", "adir"], ["grade export adir is a folder", "adir/grades.csv"]),
    (["grade", "export", "afile/grades.csv"], ["grade export", "afile is a file, not a folder"]),
    # 2. negative seeds
    (["reproduce", "domain-shift", "--seed", "-1"], ["--seed", "negative"]),
    (["reproduce", "domain-shift", "--seed", "-7", "--json", "ds.json"], ["--seed", "negative"]),
    (["reproduce", "domain-shift", "--seed", "one"], ["--seed", "not an integer"]),
    # 3. expected.toml and --calibrate
    (["expected"], ["corrupt.toml", "not valid TOML", "line 2"]),
    (["expected", "--json"], ["corrupt.toml", "not valid TOML"]),
    (["expected", "--markdown"], ["empty.toml", "empty"]),
    (["expected", "--calibrate", "missing.json"], ["--calibrate", "no file missing.json"]),
    (["expected", "--calibrate", "notjson.json"], ["--calibrate", "notjson.json is not JSON"]),
    (["expected", "--calibrate", "other.json"], ["--calibrate", "other.json is not a `reproduce --json` output"]),
    (["expected", "--calibrate", "adir"], ["--calibrate", "adir is a folder"]),
    (["expected", "--calibrate", "dann-0.json", "tta-1.json"], ["one experiment", "'dann', 'test-time'"]),
    # 4. grading limits
    (["grade", "autograde", "--memory-mib", "-5"], ["--memory-mib", "not positive"]),
    (["grade", "autograde", "--memory-mib", "0"], ["--memory-mib", "not positive"]),
    (["grade", "autograde", "--cell-timeout", "0"], ["--cell-timeout", "not positive"]),
    (["grade", "autograde", "--cell-timeout", "-1"], ["--cell-timeout", "not positive"]),
    (["course", "--timeout", "0"], ["--timeout", "not positive"]),
    # 5. no result or grade overwritten without an explicit flag
    (["reproduce", "domain-shift", "--json", "dann-0.json"], ["--json dann-0.json exists", "--force"]),
    (["grade", "export", "grades.csv"], ["grades.csv exists", "--force"]),
    (["grade", "export"], ["grades.csv exists", "--force"]),
    (["grade", "release", "--force"], ["--force is for `grade collect` and `grade export`"]),
    (["grade", "feedback", "--regrade"], ["--regrade is for `grade autograde`"]),
    (["grade", "collect"], ["needs the folder of submissions"]),
    # found by a hostile probe
    (["grade", "autograde", "--students"], ["--students", "at least one name"]),
    (["grade", "feedback", "--students", "nobody"], ["--students is for `grade autograde`"]),
    (["grade", "feedback", "--cell-timeout", "5"], ["--memory-mib and --jobs are for `grade autograde`"]),
    (["grade", "export", ""], ["an empty path"]),
    (["grade", "release", "somewhere"], ["`grade release` takes no folder or file"]),
    (["grade", "export", "x" * 300 + ".csv"], ["grade export", "bytes long", "another path"]),
    (["reproduce", "domain-shift", "--json", "y" * 300 + ".json"], ["--json", "bytes long"]),
    # commands beyond the items above
    (["benchmark", "--chapters", "nope", "--no-experiments"], ["Unknown chapters ['nope']", "01-x"]),
    (["course", "--chapters", "nope"], ["Unknown chapters ['nope']", "01-x"]),
    (["grade", "feedback", "--root", "adir"], ["No course at adir", "--root"]),
    (["grade", "autograde", "--root", "missing"], ["No course at missing", "--root"]),
    (["reproduce", "no-such-chapter"], ["no-such-chapter", "domain-shift"]),
    (["data", "check"], ["needs a dataset name", "data list"]),
    (["grade", "nonsense"], ["invalid choice", "autograde"]),
    (["grade", "release", "--chapters", "01-x", "--memory-mib", "x"], ["--memory-mib", "not an integer"]),
]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_relative_to(folder / "readonly")}


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_bad_arguments_give_one_clear_error_and_leave_nothing(workdir, monkeypatch, capsys, argv, expected):
    from tlcourse.experiments import expected as expected_module

    if argv[0] == "expected" and "--calibrate" not in argv:
        toml = "empty.toml" if "--markdown" in argv else "corrupt.toml"
        monkeypatch.setattr(expected_module, "EXPECTED_FILE", workdir / toml)
    if any("READONLY" in a for a in argv):
        read_only = _read_only_path(workdir)
        argv = [a.replace("READONLY", read_only) for a in argv]
    before = _files(workdir)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code not in (0, None), f"exit {code}"
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, err
    for fragment in expected:
        assert fragment in error_lines[0], f"{fragment!r} not in {error_lines[0]!r}"
    assert _files(workdir) == before, "files were left behind"
    assert not list(workdir.rglob("*.tmp"))


def test_ctrl_c_is_one_line_and_exit_130(workdir, monkeypatch, capsys):
    from tlcourse.experiments import registry

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(registry.EXPERIMENTS, "domain-shift", interrupted)
    assert main(["reproduce", "domain-shift"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1 and "interrupted" in err
