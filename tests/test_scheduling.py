"""The scheduling table of conftest.py names groups and tests that exist: a stale name would silently count as
short, and its group would start last."""

import ast
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_name_in_expected_seconds_exists():
    table = load(REPO / "conftest.py", "root_conftest").EXPECTED_SECONDS
    pipeline = load(REPO / "tests" / "classroom" / "test_grading_pipeline.py", "pipeline_for_scheduling")
    stems = {path.stem for path in pipeline.graded_notebooks()}
    stale = []
    for key in table:
        path, _, rest = key.partition("::")
        if not (REPO / path).is_file():
            stale.append(key)
        elif rest.startswith("graded="):
            if rest.removeprefix("graded=") not in stems:
                stale.append(key)
        elif rest:
            tree = ast.parse((REPO / path).read_text())
            if rest not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
                stale.append(key)
    assert not stale, f"conftest.py's EXPECTED_SECONDS names what no longer exists: {stale}"
    assert list(table.values()) == sorted(table.values(), reverse=True), "keep the table longest first"
