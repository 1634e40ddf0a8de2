"""The conda environment and the package declare the same dependencies; CI calls the README's command, which
lints first; pre-commit runs the same linters."""

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


def make_target(name: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of a Makefile target."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return lines[start].split(":", 1)[1].split(), recipe


def test_the_test_command_lints_first():
    prerequisites, _ = make_target("test")
    assert prerequisites[0] == "lint", f"make test must run make lint first, its prerequisites are {prerequisites}"
    _, recipe = make_target("lint")
    for check in ("ruff check .", "ruff format --check .", "tlcourse.classroom.notebook_hygiene notebooks"):
        assert any(check in line for line in recipe), f"make lint does not run {check!r}"


def test_pre_commit_runs_ruff_and_nbstripout_with_the_same_ruff_as_make_lint():
    config = (REPO / ".pre-commit-config.yaml").read_text()
    for hook in ("id: ruff-check", "id: ruff-format", "id: nbstripout"):
        assert hook in config, f".pre-commit-config.yaml has no {hook}"
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    (pinned,) = [item.removeprefix("ruff==") for item in dev if item.startswith("ruff")]
    hook_rev = re.search(r"ruff-pre-commit\n\s+rev: v(\S+)", config).group(1)
    assert hook_rev == pinned, f"pre-commit runs ruff {hook_rev}, make lint ruff {pinned}: keep them the same"


def test_the_test_command_installs_chromium_and_the_hub_has_its_target():
    prerequisites, _ = make_target("test")
    assert "chromium" in prerequisites and "hub-proxy" in prerequisites, prerequisites
    _, recipe = make_target("chromium")
    assert any("apt-get install -y -q chromium" in line for line in recipe), "make chromium does not use apt"
    _, recipe = make_target("hub")
    assert any("-m tlcourse hub" in line for line in recipe), "make hub does not run python -m tlcourse hub"
