"""Static checks on the chapter notebooks' graded cells, before any of them runs.

nbgrader reads a *number* shown as a test cell's result as partial credit: a test cell whose last line
is ``check_result(...)`` (which returns the accuracy it checked) scores 0.59 of its points for an
accuracy of 59%, even when every assertion holds. So a graded test cell must not end in a bare
expression, except a call to ``print`` or to an ``assert_*`` helper (they return None).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*/*.ipynb"))


def graded_test_cells(path: Path) -> list[tuple[str, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(c.metadata["nbgrader"].get("grade_id", "?"), c.source) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")]


def ends_in_a_shown_value(source: str) -> bool:
    """True when the cell's last statement is an expression whose value Jupyter would show."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    body = ast.parse(code).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    # print and the assert_* helpers of tlcourse.classroom.grading return None: nothing is shown.
    return not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and (value.func.id == "print" or value.func.id.startswith("assert")))


def test_the_check_catches_a_trailing_value():
    assert ends_in_a_shown_value("x = 1\ncheck_result('a', 'b', x)")
    assert ends_in_a_shown_value("0.5")
    assert not ends_in_a_shown_value("checked = check_result('a', 'b', 0.5)\nprint(checked)")
    assert not ends_in_a_shown_value("assert True\n# a comment")
    assert not ends_in_a_shown_value("assert_close(1.0, 1.0, atol=0)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_graded_test_cells_show_no_value_that_nbgrader_would_read_as_a_score(path):
    offenders = [grade_id for grade_id, source in graded_test_cells(path) if ends_in_a_shown_value(source)]
    assert not offenders, (f"{path.name}: the test cells {offenders} end in an expression; nbgrader would take "
                           "its value as partial credit. Assign it (checked = ...) or print it.")
