"""The nbgrader pipeline, end to end, on every chapter notebook with graded cells.

For each chapter: generate the student version from the source notebook, then autograde three
submissions with nbgrader's own API and gradebook:
- the source (solution) notebook earns full marks on every graded cell;
- the untouched student version earns zero on every graded cell;
- a submission whose solutions only call the `tlcourse` reference earns zero on those exercises.
The student version must contain no solution and no hidden test.

This uses the repository's own ``nbgrader_config.py``, with the course root moved to a temporary folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

pytestmark = pytest.mark.slow


def graded_notebooks() -> list[Path]:
    found = []
    for path in sorted(NOTEBOOKS.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
            found.append(path)
    return found


# Replacement bodies that call the reference implementation instead of computing anything.
CALLS_REFERENCE = {
    "mmd2_unbiased": "    from tlcourse.metrics import mmd2_unbiased as reference\n    return reference(x, y, bandwidth)\n",
    "proxy_a_distance": "    from tlcourse import metrics as reference\n    return reference.proxy_a_distance(source, target, seed)\n",
}


def nbgrader_api(root: Path):
    from nbgrader.apps import NbGraderAPI

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    config.CourseDirectory.root = str(root)
    config.Exchange.root = str(root / "exchange")
    return NbGraderAPI(config=config)


def replace_solution(source: str, body: str) -> str:
    """Swap the solution region of a cell for ``body``, keeping the function's signature."""
    pattern = re.compile(r"[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[^\n]*\n?", re.S)
    assert pattern.search(source), "solution cell without a solution region"
    return pattern.sub(body, source)


def scores(api, assignment: str, notebook: str, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url) as gb:
        sub = gb.find_submission_notebook(notebook, assignment, student)
        return {g.name: (g.score, g.max_score) for g in sub.grades if g.max_score > 0}


@pytest.fixture(scope="module", params=graded_notebooks(), ids=lambda p: p.parent.name)
def graded(request, tmp_path_factory):
    """A course in a temporary folder with the chapter released and three submissions autograded."""
    source_nb: Path = request.param
    assignment, notebook = source_nb.parent.name, source_nb.stem
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(source_nb.parent, root / "notebooks" / assignment)
    api = nbgrader_api(root)

    result = api.generate_assignment(assignment, force=True)
    assert result["success"], result["log"] + result.get("error", "")
    released = root / "release" / assignment / source_nb.name
    assert released.exists(), f"generate_assignment wrote no {released}"

    cheat = nbformat.read(source_nb, as_version=4)
    replaced = set()
    for cell in cheat.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in CALLS_REFERENCE:
            cell.source = replace_solution(cell.source, CALLS_REFERENCE[grade_id])
            replaced.add(grade_id)

    submissions = {"solution": nbformat.read(source_nb, as_version=4), "untouched": nbformat.read(released, as_version=4)}
    if replaced:
        submissions["calls-reference"] = cheat
    graded_scores = {}
    for student, nb in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / source_nb.name)
        result = api.autograde(assignment, student, force=True, create=True)
        assert result["success"], f"autograde of {student} failed:\n{result['log']}{result.get('error', '')}"
        graded_scores[student] = scores(api, assignment, notebook, student)
    return {"released": released, "scores": graded_scores, "replaced": replaced}


def test_student_version_has_no_solution_and_no_hidden_test(graded):
    text = graded["released"].read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "reference_blocked",
                   "assert_matches_reference(mmd2"):
        assert marker not in text, f"the student version still contains {marker!r}"
    assert "raise NotImplementedError()" in text


def test_solution_earns_full_marks(graded):
    solution = graded["scores"]["solution"]
    assert solution, "no graded cells were found in the gradebook"
    lost = {name: s for name, s in solution.items() if s[0] != s[1]}
    assert not lost, f"the source notebook lost points on {lost}"


def test_untouched_student_version_earns_zero(graded):
    earned = {name: s for name, s in graded["scores"]["untouched"].items() if s[0] != 0}
    assert not earned, f"the untouched student version earned points on {earned}"


def test_calling_the_reference_earns_nothing(graded):
    if not graded["replaced"]:
        pytest.skip("this chapter has no exercise with a reference-calling submission")
    scores_ = graded["scores"]["calls-reference"]
    for grade_id in graded["replaced"]:
        test_cell = f"test_{grade_id}"
        assert scores_[test_cell][0] == 0, f"calling the reference earned {scores_[test_cell]} on {test_cell}"
