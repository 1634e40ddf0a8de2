"""The GitHub workflow (.github/workflows/ci.yml): valid against GitHub's own workflow schema (the copy that
check-jsonschema ships, so no network), and it runs `.ci/run`, the README's test command, as CI does here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "ci.yml"
CHECK = Path(sys.executable).with_name("check-jsonschema")  # beside this environment's python


def check(path: Path) -> subprocess.CompletedProcess:
    if not CHECK.is_file():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    command = [CHECK, "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_workflow_is_valid_and_a_broken_one_is_not(tmp_path):
    assert check(WORKFLOW).returncode == 0, check(WORKFLOW).stdout
    broken = yaml.safe_load(WORKFLOW.read_text())
    del broken["jobs"]["test"]["runs-on"]  # a job without a machine: GitHub refuses it
    (tmp_path / "ci.yml").write_text(yaml.safe_dump(broken))
    result = check(tmp_path / "ci.yml")
    assert result.returncode != 0 and "runs-on" in result.stdout + result.stderr, result.stdout


def test_the_workflow_runs_the_readme_test_command():
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["test"]["steps"]
    assert [step.get("run") for step in steps if step.get("run") == ".ci/run"] == [".ci/run"]
    ci_run = (WORKFLOW.parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci_run
