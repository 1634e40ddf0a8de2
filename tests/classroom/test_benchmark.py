"""The benchmark (tlcourse.classroom.benchmark): the tiny notebook of conftest.py, the experiments (faked) and
the test command in a fresh clone of a one-commit repository."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tlcourse.classroom import benchmark
from tlcourse.classroom.benchmark import Measurement, run_benchmark
from tlcourse.experiments import experiment_names


def test_benchmark_measures_time_and_memory(tiny_course, capsys):
    output = tiny_course / "bench"
    assert run_benchmark(tiny_course / "notebooks", output, experiments=False) == 0
    report = json.loads((output / "benchmark.json").read_text())
    m, course, loaded = report["measurements"]
    assert m["kind"] == "notebook" and m["name"] == "00-tiny" and m["ok"]
    assert 0 < m["seconds"] < 120 and 10 < m["peak_mib"] < 4096
    assert report["course_seconds"] == pytest.approx(m["seconds"])
    # The whole course, as `python -m tlcourse course` runs it, then with a busy process beside it.
    assert (course["kind"], course["name"], course["ok"]) == ("course", "whole course", True)
    assert loaded["kind"] == "course-under-load" and "busy process" in loaded["name"] and loaded["ok"]
    assert (output / "course" / "00-tiny" / "tiny.ipynb").exists()
    assert "one after the other" in capsys.readouterr().out


def test_benchmark_runs_every_experiment_but_the_long_ones(tmp_path, monkeypatch, capsys):
    measured = []

    def fake(kind, target, output):
        measured.append(target)
        return Measurement(kind, target, 1.0, 100.0, True)

    monkeypatch.setattr(benchmark, "_measure_in_child", fake)
    assert run_benchmark(tmp_path, tmp_path / "bench", run_notebooks=False) == 0
    assert "dann" in measured and "dann-long" not in measured
    assert sorted(measured) == sorted(set(experiment_names()) - {"dann-long"})


def test_a_benchmark_run_prints_the_record_that_results_md_renders(tiny_course, tmp_path, capsys):
    output = tiny_course / "bench"
    assert run_benchmark(tiny_course / "notebooks", output, experiments=False, course=False) == 0
    printed = capsys.readouterr().out
    block = printed[printed.index("[[run]]") :]
    report = json.loads((output / "benchmark.json").read_text())
    record = tmp_path / "benchmarks.toml"
    record.write_text(block)
    run = tomllib.loads(block)["run"][0]
    assert run["date"] == report["date"] and run["conditions"] == "nothing else running"
    assert run["seconds"] == {"notebook 00-tiny": round(report["measurements"][0]["seconds"], 1)}
    page = benchmark.budgets_markdown(record)
    assert f"| notebook 00-tiny | {run['seconds']['notebook 00-tiny']:.1f} |" in page and "| 90 s |" in page
    assert "No benchmark run recorded" in benchmark.budgets_markdown(tmp_path / "none.toml")


def test_the_recorded_runs_are_on_the_results_page():
    shown = subprocess.run(
        [sys.executable, "-m", "tlcourse", "expected", "--markdown"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.endswith(benchmark.budgets_markdown() + "\n")
    assert (Path(__file__).resolve().parents[2] / "RESULTS.md").read_text() == shown, (
        "RESULTS.md is stale: python -m tlcourse expected --markdown > RESULTS.md"
    )


def test_budget_rules():
    assert Measurement("notebook", "a", 91, 100, True).over_budget() == ["91 s > 90 s"]
    assert Measurement("experiment", "b", 900, 5000, True).over_budget() == ["5000 MiB > 4096 MiB"]
    assert Measurement("notebook", "c", 60, 900, True).over_budget() == []
    assert Measurement("course", "w", 241, 900, True).over_budget() == ["241 s > 240 s"]
    assert Measurement("course-under-load", "w", 400, 900, True).over_budget() == []  # reported, no budget
    assert Measurement("test-command", "d", 721, 9000, True).over_budget() == ["721 s > 720 s"]
    assert Measurement("test-command", "e", 700, 9000, True).over_budget() == []


def repository_with_ci(path, script):
    """A one-commit git repository whose `.ci/run` is ``script``."""
    (path / ".ci").mkdir(parents=True)
    (path / ".ci" / "run").write_text(script)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "--quiet", str(path)], check=True)
    subprocess.run([*git, "-C", str(path), "add", "."], check=True)
    subprocess.run([*git, "-C", str(path), "commit", "--quiet", "-m", "ci"], check=True)
    return path


def test_test_command_runs_ci_in_a_fresh_clone_of_head(tmp_path, capsys):
    # The script proves it runs in a clone (not in the repository) and without the caller's virtual environment.
    repo = repository_with_ci(tmp_path / "repo", 'echo "pwd=$PWD"; ls; echo "venv=${VIRTUAL_ENV:-none}"\n')
    (repo / "uncommitted.txt").write_text("not in the clone")
    output = tmp_path / "bench"
    assert run_benchmark(tmp_path, output, experiments=False, run_notebooks=False, test_command=repo) == 0
    (m,) = json.loads((output / "benchmark.json").read_text())["measurements"]
    assert m["kind"] == "test-command" and m["ok"] and 0 < m["seconds"] < 60
    log = (output / "test-command.log").read_text()
    clone = Path(log.split("pwd=")[1].split()[0])
    assert clone != repo and "tlcourse-fresh-clone-" in str(clone) and not clone.exists()  # cleaned up
    assert "uncommitted.txt" not in log and "venv=none" in log
    assert "whole course" not in capsys.readouterr().out


def test_a_failing_test_command_fails_the_benchmark(tmp_path):
    repo = repository_with_ci(tmp_path / "repo", "echo broken; exit 3\n")
    output = tmp_path / "bench"
    assert run_benchmark(tmp_path, output, experiments=False, run_notebooks=False, test_command=repo) == 1
    (m,) = json.loads((output / "benchmark.json").read_text())["measurements"]
    assert not m["ok"] and "exited with 3" in m["error"]
    assert "broken" in (output / "test-command.log").read_text()


def test_test_command_needs_a_git_repository(tmp_path):
    with pytest.raises(ValueError, match="not a git repository"):
        run_benchmark(tmp_path, tmp_path / "bench", experiments=False, run_notebooks=False, test_command=tmp_path)
