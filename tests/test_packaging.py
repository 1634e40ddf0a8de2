"""The conda environment and the package declare the same dependencies; CI calls the README's command."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def environment_pip_list() -> list[str]:
    lines = (REPO / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    items = []
    for line in lines[start + 1 :]:
        match = re.match(r"^\s+- (.+)$", line)
        if not match:
            break
        items.append(match.group(1).strip())
    return items


def test_environment_yml_pip_list_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    listed = [item for item in environment_pip_list() if item != "-e ."]
    assert sorted(listed) == sorted(declared), (
        f"environment.yml and pyproject.toml differ: only in environment.yml {sorted(set(listed) - set(declared))}, "
        f"only in pyproject.toml {sorted(set(declared) - set(listed))}"
    )
    assert "-e ." in environment_pip_list(), "environment.yml must install the tlcourse package itself"


def test_ci_runs_the_readme_test_command():
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not re.match(r"^(#|set |cd |export )", line.strip())
    ]
    assert commands == ["make test"], f".ci/run must call exactly the README's test command, found {commands}"
    assert "make test" in (REPO / "README.md").read_text()
