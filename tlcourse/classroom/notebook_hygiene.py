"""Static checks on the chapter notebooks, before any of them runs (``make lint`` calls them).

Two rules, each a mistake that no test run would show:

- A notebook is committed **clean**: no outputs and no execution counts. Outputs hide learners' work
  behind the author's, bloat the diffs, and nbgrader's release would ship them. ``nbstripout`` (a
  pre-commit hook) strips them; this check fails the build when a notebook slipped past it.
- A **graded test cell ends in no shown value**. nbgrader reads a *number* shown as a test cell's result
  as partial credit: a cell whose last line is ``check_result(...)`` (which returns the accuracy it
  checked) scores 0.59 of its points for an accuracy of 59%, even when every assertion holds. So such a
  cell must not end in a bare expression, except a call to ``print`` or to an ``assert_*`` helper (they
  return None).

``python -m tlcourse.classroom.notebook_hygiene [NOTEBOOK_OR_FOLDER ...]`` (default: ``notebooks``)
prints one line per problem and exits with status 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat


def graded_test_cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(grade id, source) of every graded cell that is not a solution: the cells nbgrader scores."""
    return [
        (cell.metadata["nbgrader"].get("grade_id", "?"), cell.source)
        for cell in nb.cells
        if cell.cell_type == "code"
        and cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata["nbgrader"].get("solution")
    ]


def ends_in_a_shown_value(source: str) -> bool:
    """True when the cell's last statement is an expression whose value Jupyter would show."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    body = ast.parse(code).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    # print and the assert_* helpers of tlcourse.classroom.grading return None: nothing is shown.
    return not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and (value.func.id == "print" or value.func.id.startswith("assert"))
    )


def notebook_problems(path: Path) -> list[str]:
    """One line per problem of the notebook at ``path``; empty when it is clean."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path}: code cell {index} was committed with its outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"{path}: code cell {index} was committed with an execution count")
    problems += [
        f"{path}: graded test cell {grade_id!r} ends in an expression, which nbgrader would take as partial "
        "credit: assign it (checked = ...) or print it"
        for grade_id, source in graded_test_cells(nb)
        if ends_in_a_shown_value(source)
    ]
    return problems


def notebooks_under(paths: Sequence[Path]) -> list[Path]:
    """The notebooks named, and those in the folders named (recursively), checkpoints left out."""
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
        found += [p for p in candidates if ".ipynb_checkpoints" not in p.parts]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or ["notebooks"]
    missing = [arg for arg in args if not Path(arg).exists()]
    if missing:
        print(f"notebook hygiene: no such file or folder: {' '.join(missing)}", file=sys.stderr)
        return 1
    notebooks = notebooks_under([Path(arg) for arg in args])
    if not notebooks:
        print(f"notebook hygiene: no notebook found under {' '.join(args)}", file=sys.stderr)
        return 1
    problems = [problem for path in notebooks for problem in notebook_problems(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            f"notebook hygiene: {len(problems)} problem(s) in {len(notebooks)} notebooks. Strip outputs with "
            "`nbstripout NOTEBOOK` (or once: `pre-commit install`, which strips them at every commit).",
            file=sys.stderr,
        )
        return 1
    print(f"notebook hygiene: {len(notebooks)} notebooks clean (no outputs, no shown value in graded tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
