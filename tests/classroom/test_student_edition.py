"""The student edition that ``grade release`` writes (`tlcourse.classroom.edition`).

What it must be: every graded exercise has an entry in the table of stubs; nothing in the edition holds a
reference answer or a hidden test; it installs in a fresh virtual environment; with the stubs, chapter 1's
cells that need no exercise run and the ones that do fail; with the solutions then filled in, every cell that
needs them runs, and the library then uses the learner's functions (one kernel for both, as a learner works).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest

from tlcourse.classroom import edition as edition_module
from tlcourse.classroom import instructor
from tlcourse.classroom.edition import (
    EXERCISES,
    INSTRUCTOR_ONLY,
    check_exercise_table,
    find_definition,
    solution_cells,
    solution_regions,
    stub_source,
)

REPO = Path(__file__).resolve().parents[2]
CHAPTER_1 = "01-domain-shift"
CODE_STUB = "raise NotImplementedError()"  # nbgrader_config.py's ClearSolutions.code_stub ends with it

# Lines of a solution that any training loop or argument check has too: they give no answer away.
BOILERPLATE = {
    "raise ValueError(",
    "optimizer.zero_grad()",
    "optimizer.step()",
    "rng = np.random.default_rng(seed)",
    "p.requires_grad_(False)",
    "p.requires_grad_(True)",
    "k = probs.shape[1]",
}


def normalised(line: str) -> str:
    return " ".join(line.split())


def distinctive(line: str) -> bool:
    """A line that can give an answer away: not blank, short (``return x``), a comment or an import."""
    text = normalised(line)
    return len(text) >= 16 and not text.startswith(("#", "import ", "from ", '"""')) and text not in BOILERPLATE


def answer_lines() -> dict[str, str]:
    """``{normalised line: where it comes from}`` of the notebooks' solution regions and of the library's
    reference bodies (the full course's) of every definition the edition stubs."""
    answers = {}
    for notebook in sorted((REPO / "notebooks").glob("*/*.ipynb")):
        for grade_id, source in solution_cells(notebook):
            for region in solution_regions(source):
                for line in filter(distinctive, region.splitlines()):
                    answers.setdefault(normalised(line), f"the solution of {grade_id}")
    for exercise in EXERCISES.values():
        for target in (*exercise.references, *exercise.withheld):
            path, qualname = target.split(":")
            source = (REPO / path).read_text()
            node = find_definition(ast.parse(source), qualname)
            body = source.splitlines()[edition_module._body_start(node) - 1 : node.end_lineno]
            for line in filter(distinctive, body):
                answers.setdefault(normalised(line), f"the reference {target}")
    return answers


def text_lines(path: Path) -> list[str]:
    """The lines of a file of the edition as a reader sees them (a notebook's cells and outputs)."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [
            line
            for cell in nb.cells
            for line in (cell.source + "\n" + json.dumps(cell.get("outputs", []))).splitlines()
        ]
    try:
        return path.read_text().splitlines()
    except UnicodeDecodeError:
        return path.read_bytes().decode("latin-1").splitlines()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A course in a temporary folder, released with ``grade release``: its root (the edition is in release/)."""
    root = tmp_path_factory.mktemp("course")
    import shutil

    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    instructor.release(instructor.nbgrader_api(root))
    return root


@pytest.fixture(scope="module")
def edition(released):
    return released / "release" / "student-edition"


# ------------------------------------------------------------------------------------ the table
def test_every_graded_exercise_has_an_entry_and_every_entry_exists():
    assert check_exercise_table(REPO) == []


def test_the_table_check_finds_a_missing_entry_and_a_wrong_one(monkeypatch):
    table = dict(EXERCISES)
    del table["h_score"]
    table["no_such_exercise"] = table["mmd2_unbiased"]
    table["em_update"] = edition_module.Exercise(
        "notebooks/04-label-shift/label_shift.ipynb", ("tlcourse/library/metrics.py:no_such_function",)
    )
    monkeypatch.setattr(edition_module, "EXERCISES", table)
    problems = "\n".join(check_exercise_table(REPO))
    assert "h_score (notebooks/04-label-shift/label_shift.ipynb) is graded but has no entry" in problems
    assert "no_such_exercise" in problems
    assert "defines no function no_such_function" in problems


def test_a_stub_keeps_the_signature_and_docstring_and_names_the_exercise():
    source = textwrap.dedent(
        '''
        import math


        def answer(x: float, scale: float = 2.0) -> float:
            """The answer, times scale."""
            # a comment that explains the answer
            return math.sqrt(x) * scale


        def helper(x):
            return x + 1


        class Layer:
            @staticmethod
            def forward(ctx, x):
                return -x
        '''
    )
    stubbed = stub_source(
        source,
        {
            "answer": ("reference", "answer", "exercise 1 of notebooks/x/x.ipynb"),
            "Layer.forward": ("withheld", "Layer.forward", "exercise 2 of notebooks/x/x.ipynb"),
        },
    )
    assert "sqrt" not in stubbed and "explains the answer" not in stubbed and "return -x" not in stubbed
    assert "return x + 1" in stubbed  # what is not in the table is left as it was
    namespace: dict = {}
    exec(compile(stubbed, "stubbed.py", "exec", dont_inherit=True), namespace)
    answer = namespace["answer"]
    assert answer.__doc__ == "The answer, times scale."
    assert str(inspect.signature(answer)) == "(x: float, scale: float = 2.0) -> float"
    with pytest.raises(NotImplementedError, match=r"answer is exercise 1 of notebooks/x/x\.ipynb: solve it there"):
        answer(4.0)
    with pytest.raises(NotImplementedError, match=r"Layer\.forward holds the answer to exercise 2"):
        namespace["Layer"].forward(None, 1.0)


def test_a_reference_stub_calls_the_learners_function_of_that_name(monkeypatch, tmp_path):
    import __main__

    monkeypatch.chdir(tmp_path)  # no saved notebook of the exercise's chapter around
    from tlcourse.library.exercises import learner_solution

    def answer(x, scale):  # the learner's, as a notebook defines it
        return x * scale

    answer.__module__ = "__main__"
    monkeypatch.setattr(__main__, "answer", answer, raising=False)
    # An option of the reference that the learner's does not take: left out at its default, else refused.
    assert learner_solution("answer", "exercise 1", {"x": 3.0, "scale": 2.0, "soft": False}, {"soft": False}) == 6.0
    with pytest.raises(NotImplementedError, match=r"sets soft=True, an option .* your answer \(exercise 1\)"):
        learner_solution("answer", "exercise 1", {"x": 3.0, "scale": 2.0, "soft": True}, {"soft": False})

    def renamed(a, b):
        return a - b

    renamed.__module__ = "__main__"
    monkeypatch.setattr(__main__, "answer", renamed)
    assert learner_solution("answer", "exercise 1", {"x": 3.0, "scale": 2.0}) == 1.0
    # The library's own function under that name (imported into the notebook) is not the learner's.
    from tlcourse.library.metrics import h_score

    monkeypatch.setattr(__main__, "h_score", h_score, raising=False)
    with pytest.raises(NotImplementedError, match="h_score is exercise 3"):
        learner_solution("h_score", "exercise 3 of notebooks/04-label-shift/label_shift.ipynb", {})


def test_a_learners_function_that_calls_the_librarys_is_told_at_once(monkeypatch, tmp_path):
    """The learner's answer calls the library's reference, which in the edition calls the learner's again:
    one clear error instead of a RecursionError a thousand calls deep (which IPython takes seconds to show)."""
    import __main__

    monkeypatch.chdir(tmp_path)
    from tlcourse.library.exercises import learner_solution

    def answer(x):  # what the edition's stub of the library's `answer` does
        return learner_solution("answer", "exercise 1", {"x": x})

    answer.__module__ = "__main__"
    monkeypatch.setattr(__main__, "answer", answer, raising=False)
    with pytest.raises(NotImplementedError, match=r"your answer \(exercise 1\) calls the library's answer") as error:
        answer(2.0)
    assert len(error.traceback) < 10, "the error came from deep in a recursion"

    def square(x):  # the learner's own, which for large x calls the library's (refused, each time)
        return x * x if x < 10 else learner_solution("square", "exercise 2", {"x": x / 10})

    square.__module__ = "__main__"
    monkeypatch.setattr(__main__, "square", square, raising=False)
    assert learner_solution("square", "exercise 2", {"x": 3.0}) == 9.0
    assert learner_solution("square", "exercise 2", {"x": 4.0}) == 16.0  # the first call left nothing behind
    with pytest.raises(NotImplementedError, match="calls the library's square"):
        learner_solution("square", "exercise 2", {"x": 30.0})
    assert learner_solution("square", "exercise 2", {"x": 5.0}) == 25.0  # nor did the refused one


def test_a_stub_in_another_chapter_runs_the_learners_saved_solution(tmp_path, monkeypatch):
    """Chapter 4 (TENT) needs chapter 3's entropy_loss: the learner's, from their saved chapter-3 notebook."""
    from tlcourse.library.exercises import learner_solution

    exercise = "exercise 3 of notebooks/03-dann/dann.ipynb"
    saved = tmp_path / "notebooks" / "03-dann" / "dann.ipynb"
    saved.parent.mkdir(parents=True)
    (tmp_path / "notebooks" / "04-label-shift").mkdir()

    def save(solution: str) -> None:
        cells = [
            nbformat.v4.new_code_cell("%matplotlib inline\nimport math\nSECRET = 1"),
            nbformat.v4.new_code_cell("def entropy_loss(logits):\n" + solution),
            nbformat.v4.new_code_cell("raise RuntimeError('later cells never run')"),
        ]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), saved)

    save("    return math.fsum(logits) + 0.5\n")
    monkeypatch.chdir(tmp_path / "notebooks" / "04-label-shift")
    assert learner_solution("entropy_loss", exercise, {"logits": [1.0, 2.0]}) == 3.5  # its imports ran, SECRET not
    save("    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    with pytest.raises(NotImplementedError, match="your saved notebook still has its stub"):
        learner_solution("entropy_loss", exercise, {"logits": [1.0]})
    # In the exercise's own notebook, only what has run counts: the saved copy is not used.
    save("    return 0.0\n")
    monkeypatch.chdir(saved.parent)
    with pytest.raises(NotImplementedError, match=r"entropy_loss is exercise 3 of notebooks/03-dann/dann\.ipynb"):
        learner_solution("entropy_loss", exercise, {"logits": [1.0]})


# ------------------------------------------------------------------------------------ the edition
def test_the_edition_holds_the_released_notebooks_the_package_and_how_to_install(edition, released):
    for chapter in sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir()):
        for notebook in (released / "release" / chapter).glob("*.ipynb"):
            assert (edition / "notebooks" / chapter / notebook.name).read_bytes() == notebook.read_bytes()
    for part in INSTRUCTOR_ONLY:
        assert not (edition / "tlcourse" / part).exists(), f"{part} is the instructor's"
    for absent in ("nbgrader_config.py", "tests", "Makefile", "benchmarks", "data_scripts", "conftest.py"):
        assert not (edition / absent).exists()
    readme = (edition / "README.md").read_text()
    assert "pip install -e ." in readme and "jupyter lab" in readme and "environment.yml" in readme
    assert (edition / "pyproject.toml").is_file() and (edition / "environment.yml").is_file()
    assert (edition / "tlcourse" / "experiments" / "expected.toml").is_file()


def test_nothing_in_the_edition_holds_a_reference_answer_or_a_hidden_test(edition):
    answers = answer_lines()
    assert len(answers) > 100, "the check found too few answer lines to mean anything"
    leaks = []
    for path in sorted(p for p in edition.rglob("*") if p.is_file()):
        for number, line in enumerate(text_lines(path), 1):
            for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"):
                if marker in line:
                    leaks.append(f"{path.relative_to(edition)}:{number}: {marker}")
            if normalised(line) in answers:
                leaks.append(f"{path.relative_to(edition)}:{number}: {answers[normalised(line)]}: {line.strip()}")
    assert not leaks, "the student edition gives answers away:\n" + "\n".join(leaks)


def test_no_notebook_points_at_a_references_source():
    stubbed = {
        target.split(":")[1].split(".")[-1] for e in EXERCISES.values() for target in (*e.references, *e.withheld)
    }
    stubbed |= {target.split(":")[1].split(".")[0] for e in EXERCISES.values() for target in e.withheld}
    for notebook in sorted((REPO / "notebooks").glob("*/*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            for part in cell.source.split("getsource(")[1:]:
                name = part.split(")")[0].split(".")[-1]
                assert name not in stubbed, f"{notebook.name} shows the source of {name}, an exercise's answer"


def test_a_failed_edition_keeps_the_previous_one(released, monkeypatch):
    release = released / "release"
    before = sorted(str(p.relative_to(release)) for p in (release / "student-edition").rglob("*"))

    def broken(course, release_dir, folder, *args, **kwargs):
        folder.mkdir(parents=True)
        (folder / "README.md").write_text("half written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(edition_module, "write_edition", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        edition_module.build_student_edition(released, release)
    after = sorted(str(p.relative_to(release)) for p in (release / "student-edition").rglob("*"))
    assert after == before
    assert "half written" not in (release / "student-edition" / "README.md").read_text()
    assert not [p.name for p in release.iterdir() if p.name.startswith(".")], "a temporary folder was left behind"


# ------------------------------------------------------------------------------------ installed and run
@pytest.fixture(scope="module")
def edition_python(edition, tmp_path_factory):
    """A fresh virtual environment with the edition installed (not editable), offline: the course's own
    packages (torch, ...) are reached through a path file, so nothing is downloaded."""
    venv = tmp_path_factory.mktemp("edition-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A plain path, not the course's site-packages as a site dir: its .pth files (the course's own editable
    # tlcourse) are not read, so the only tlcourse is the edition's.
    Path(site, "course-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", str(edition)],
        capture_output=True,
        text=True,
        cwd=venv.parent,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def env() -> dict[str, str]:
    """This environment without PYTHONPATH, which would put the full course's tlcourse before the edition's."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1"}


def run_in(python: Path, code: str, cwd: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, cwd=cwd, env=env(), timeout=timeout, check=False
    )


@pytest.mark.slow
def test_the_edition_installs_in_a_fresh_environment_and_imports(edition_python, tmp_path):
    code = textwrap.dedent(
        """
        import torch, tlcourse, tlcourse.library.methods, tlcourse.experiments
        from tlcourse.classroom.grading import assert_close
        from tlcourse.library import metrics
        print(tlcourse.__file__)
        try:
            metrics.mmd2_unbiased(torch.zeros(3, 2), torch.ones(3, 2), 1.0)
        except NotImplementedError as error:
            print("STUB:", error)
        """
    )
    result = run_in(edition_python, code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(REPO) not in result.stdout and "site-packages" in result.stdout.splitlines()[0]
    assert "STUB: mmd2_unbiased is exercise 1 of notebooks/01-domain-shift/domain_shift.ipynb: solve it there" in (
        result.stdout
    )
    cli = subprocess.run(
        [edition_python, "-m", "tlcourse", "grade", "release"], capture_output=True, text=True, cwd=tmp_path, env=env()
    )
    assert cli.returncode == 2 and "for instructors, and this is the student edition" in cli.stderr
    for learners in (["expected"], ["data", "list"]):
        ok = subprocess.run(
            [edition_python, "-m", "tlcourse", *learners], capture_output=True, text=True, cwd=tmp_path, env=env()
        )
        assert ok.returncode == 0 and ok.stdout, ok.stderr


RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])  # executed, for a look when a check fails
print(json.dumps([
    {
        "errors": [o["ename"] + ": " + o.get("evalue", "") for o in c.get("outputs", []) if o.output_type == "error"],
        "printed": "".join(o.get("text", "") for o in c.get("outputs", []) if o.output_type == "stream"),
    }
    for c in nb.cells
]))
"""


def execute(python: Path, notebook: nbformat.NotebookNode, folder: Path) -> tuple[list[list[str]], list[str]]:
    """Run ``notebook`` in a kernel of the edition's environment: each cell's errors (``name: message``),
    and what each cell printed."""
    path = folder / "run.ipynb"
    nbformat.write(notebook, path)
    result = subprocess.run(
        [python, "-c", RUN_NOTEBOOK, str(path), str(folder)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cells = json.loads(result.stdout.strip().splitlines()[-1])
    return [c["errors"] for c in cells], [c["printed"] for c in cells]


def dependent_cells(nb: nbformat.NotebookNode, exercises: set[str]) -> tuple[set[int], set[int]]:
    """The code cells that use an exercise's function directly, and those that use it at all (through
    names that such cells define), read statically."""
    tainted, direct, anywhere = set(exercises), set(), set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if loaded & exercises:
            direct.add(i)
        if loaded & tainted:
            anywhere.add(i)
            tainted |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return direct, anywhere


LIBRARY_CHECK = """
from tlcourse.library import metrics as _library
_x, _y = torch.randn(6, 3), torch.randn(7, 3) + 0.5
try:
    _value = float(_library.mmd2_unbiased(_x, _y, 1.0))
    print("LIBRARY:", _value == float(mmd2_unbiased(_x, _y, 1.0)))
except NotImplementedError as _error:
    print("LIBRARY:", _error)
"""


STUB_CHECK = """
from tlcourse.library import metrics as _library

for _case in ("WITH THE LEARNER'S STUB", "WITHOUT"):
    try:
        _library.mmd2_unbiased(torch.randn(4, 2), torch.randn(5, 2), 1.0)
    except NotImplementedError as _error:
        print(f"LIBRARY {_case}: {_error}")
    globals().pop("mmd2_unbiased", None)  # as in a notebook whose exercise cell has not run
"""


def chapter_1(edition: Path) -> nbformat.NotebookNode:
    return nbformat.read(edition / "notebooks" / CHAPTER_1 / "domain_shift.ipynb", as_version=4)


def with_solutions(released_nb: nbformat.NotebookNode, source: Path) -> nbformat.NotebookNode:
    """The released notebook with each solution cell's stub replaced by the source notebook's solution region."""
    regions = {grade_id: solution_regions(text) for grade_id, text in solution_cells(source)}
    nb = nbformat.from_dict(released_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        lines = cell.source.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip() == CODE_STUB)
        start = at - 1 if lines[at - 1].strip() == "# YOUR CODE HERE" else at
        lines[start : at + 1] = regions[grade_id][0].splitlines()
        cell.source = "\n".join(lines)
    return nb


@pytest.fixture(scope="module")
def chapter_1_run(edition, edition_python, tmp_path_factory):
    """Chapter 1 of the edition run once, as a learner works through it: top to bottom with the stubs (then
    `STUB_CHECK`); then each exercise solved (the source notebook's solution) and every cell that needs an
    exercise run again, in order (then `LIBRARY_CHECK`). The cells that need no exercise (the training) run
    once, as in the learner's kernel."""
    nb = chapter_1(edition)
    exercises = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}
    direct, anywhere = dependent_cells(nb, exercises)
    solved = with_solutions(nb, REPO / "notebooks" / CHAPTER_1 / "domain_shift.ipynb")
    independent = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in anywhere]
    nb.cells.append(nbformat.v4.new_code_cell(STUB_CHECK))
    stub_check = len(nb.cells) - 1
    again = [i for i, c in enumerate(solved.cells) if c.metadata.get("nbgrader", {}).get("solution") or i in anywhere]
    nb.cells += [nbformat.v4.new_code_cell(solved.cells[i].source) for i in again]  # copies, with ids of their own
    nb.cells.append(nbformat.v4.new_code_cell(LIBRARY_CHECK))
    errors, printed = execute(edition_python, nb, tmp_path_factory.mktemp("chapter-1"))
    return {
        "exercises": exercises,
        "independent": independent,
        "direct": direct,
        "stub_check": stub_check,
        "again": range(stub_check + 1, len(nb.cells)),
        "errors": errors,
        "printed": printed,
    }


@pytest.mark.slow
def test_with_the_stubs_chapter_1_runs_but_what_needs_an_exercise(chapter_1_run):
    run = chapter_1_run
    assert run["exercises"] == {"mmd2_unbiased", "proxy_a_distance"}
    errors = run["errors"]
    assert {i: errors[i] for i in run["independent"] if errors[i]} == {}, "cells that need no exercise failed"
    for i in run["direct"]:
        assert errors[i] and errors[i][0].startswith("NotImplementedError"), (i, errors[i])
    assert len(run["direct"]) >= 3
    # The library's reference calls the learner's mmd2_unbiased (nbgrader's stub until it is solved); with
    # none defined, it says where the exercise is.
    printed = run["printed"][run["stub_check"]]
    assert printed.splitlines() == [
        "LIBRARY WITH THE LEARNER'S STUB: ",
        "LIBRARY WITHOUT: mmd2_unbiased is exercise 1 of notebooks/01-domain-shift/domain_shift.ipynb: solve it "
        "there. The student edition of tlcourse has no reference answer; once your mmd2_unbiased is defined in the "
        "notebook that runs (or saved in that notebook, for another chapter's), the library uses yours.",
    ], printed


@pytest.mark.slow
def test_with_the_solutions_chapter_1_runs_to_the_end_and_the_library_uses_them(chapter_1_run):
    """Solved, every cell that needs an exercise runs (after the stubs' run, in the same kernel, as a learner
    goes back), and the library's mmd2_unbiased is then the learner's."""
    run = chapter_1_run
    assert len(run["again"]) > len(run["direct"])  # the solutions, the cells that use them and the check
    errors = {i: run["errors"][i] for i in run["again"] if run["errors"][i]}
    assert errors == {}, errors
    printed = run["printed"][-1]
    assert printed.strip() == "LIBRARY: True", printed  # the library's mmd2_unbiased ran the learner's
