"""The student edition: the repository students get, with no exercise's reference answer in it.

``python -m tlcourse grade release`` writes it to ``release/student-edition/`` (`build_student_edition`):
the released notebooks (nbgrader's student versions) arranged like ``notebooks/``, a copy of ``tlcourse``
without the instructor's tools, in which every graded exercise's reference is a stub, and a README,
``pyproject.toml`` and ``environment.yml`` to install it with.

`EXERCISES` is the one table of what to stub: for each graded exercise (an nbgrader solution cell of a
source notebook, by its ``grade_id``), the library definitions that hold its answer. Two kinds of stub:

* ``references``: the definition the exercise asks the learner to write, under the same name. Its body
  becomes a call to the learner's own function of that name (`tlcourse.library.exercises.learner_solution`),
  so the library code built on it (a chapter's experiment, a method class) runs the learner's solution
  once its cell has run, and raises a `NotImplementedError` that names the exercise and its notebook before.
* ``withheld``: other definitions that hold (part of) the same answer, such as a helper the reference
  calls. There is no learner function to call in their place: they raise, naming the exercise. The cells
  that need them run with the full course only.

Why each entry is what it is: `docs/student-edition.md`. Bodies are replaced with `ast` (the docstring and
the signature stay, the rest of the file is untouched); `check_exercise_table` proves every graded exercise
has an entry and every entry names a definition that exists.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

EDITION_FOLDER = "student-edition"
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
REPOSITORY = Path(__file__).resolve().parents[2]  # holds tlcourse/, pyproject.toml and docs/
# The instructor's parts of the package: they never go to students.
INSTRUCTOR_ONLY = (
    "classroom/instructor.py",
    "classroom/benchmark.py",
    "classroom/notebook_hygiene.py",
    "classroom/edition.py",
)


@dataclass(frozen=True)
class Exercise:
    """A graded exercise's answer in the library: ``"path/of/module.py:qualified.name"`` entries."""

    notebook: str  # the source notebook, relative to the course root
    references: tuple[str, ...]  # the learner writes these, by the same name: the stub calls the learner's
    withheld: tuple[str, ...] = ()  # these hold the same answer, with no learner function to stand in: they raise


METRICS, FINE_TUNING = "tlcourse/library/metrics.py", "tlcourse/library/methods/fine_tuning.py"
CH1, CH2 = "notebooks/01-domain-shift/domain_shift.ipynb", "notebooks/02-fine-tuning/fine_tuning.ipynb"
CH3, CH4 = "notebooks/03-dann/dann.ipynb", "notebooks/04-label-shift/label_shift.ipynb"
CH5 = "notebooks/05-domain-generalization/domain_generalization.ipynb"
CH6 = "notebooks/06-text-transfer/text_transfer.ipynb"
LABEL_SHIFT = "tlcourse/library/methods/label_shift.py"

EXERCISES: dict[str, Exercise] = {
    # Chapter 1: the kernel is half of the MMD's answer.
    "mmd2_unbiased": Exercise(CH1, (f"{METRICS}:mmd2_unbiased",), (f"{METRICS}:gaussian_kernel",)),
    "proxy_a_distance": Exercise(CH1, (f"{METRICS}:proxy_a_distance",)),
    # Chapter 2.
    "freeze_blocks": Exercise(CH2, (f"{FINE_TUNING}:freeze_blocks",)),
    "l2_sp_penalty": Exercise(CH2, (f"{FINE_TUNING}:l2_sp_penalty",)),
    "distillation_loss": Exercise(CH2, (f"{FINE_TUNING}:distillation_loss",)),
    # The experiment's `transferability_scores` calls it, so `reproduce` and section 8 run the learner's.
    "transferability_h_score": Exercise(CH2, (f"{METRICS}:transferability_h_score",)),
    # Chapter 3: the reversal's answer is its Function's two methods; `gradient_reversal` and the
    # `GradientReversal` module only call it. DANN's own `adversarial_losses` calls `dann_losses`, so the
    # library's DANN and the methods built on it (entropy minimisation, VADA, FixMatch) run the learner's.
    "gradient_reversal": Exercise(
        CH3,
        (
            "tlcourse/library/modules/reversal.py:GradientReversalFunction.forward",
            "tlcourse/library/modules/reversal.py:GradientReversalFunction.backward",
        ),
    ),
    "dann_losses": Exercise(CH3, ("tlcourse/library/methods/adversarial.py:dann_losses",)),
    "entropy_loss": Exercise(
        CH3,
        ("tlcourse/library/modules/entropies.py:entropy_loss",),
        ("tlcourse/library/modules/entropies.py:entropy",),
    ),
    # MCD's steps B and C call `classifier_discrepancy`, so the library's MCD runs the learner's.
    "classifier_discrepancy": Exercise(CH3, ("tlcourse/library/modules/discrepancy.py:classifier_discrepancy",)),
    # Chapter 4.
    # BBSE's confusion matrix is half its answer (the hidden tests switch both off).
    "estimate_label_shift_bbse": Exercise(
        CH4, (f"{LABEL_SHIFT}:estimate_label_shift_bbse",), (f"{LABEL_SHIFT}:confusion_matrix",)
    ),
    "em_update": Exercise(CH4, (f"{LABEL_SHIFT}:em_update",)),
    "h_score": Exercise(CH4, (f"{METRICS}:h_score",)),
    # TTT's rotation targets. `rotate_batch` stays: TTT's joint training turns each image by its own
    # random count with it, and its int case is one call of torch.rot90, which the exercise names.
    "all_rotations": Exercise(CH4, ("tlcourse/library/methods/tta.py:all_rotations",)),
    # Chapter 5.
    "coral_loss": Exercise(CH5, ("tlcourse/library/modules/penalties.py:coral_loss",)),
    "leave_one_domain_out": Exercise(CH5, ("tlcourse/library/train.py:leave_one_domain_out",)),
    "random_colour_domain": Exercise(CH5, ("tlcourse/library/modules/colour.py:random_colour_domain",)),
    # Chapter 6: the library's `embed` and fine-tuning call these two, so they run the learner's.
    "mean_pool": Exercise(CH6, ("tlcourse/library/methods/text.py:mean_pool",)),
    "unfreeze_top_layers": Exercise(CH6, ("tlcourse/library/methods/text.py:unfreeze_top_layers",)),
}


# ----------------------------------------------------------------------------- reading the notebooks
def solution_cells(notebook: Path) -> list[tuple[str, str]]:
    """``(grade_id, source)`` of each nbgrader solution code cell of ``notebook``, in order."""
    nb = nbformat.read(notebook, as_version=4)
    return [
        (cell.metadata["nbgrader"]["grade_id"], cell.source)
        for cell in nb.cells
        if cell.cell_type == "code"
        and cell.metadata.get("nbgrader", {}).get("solution")
        and cell.metadata["nbgrader"].get("grade_id")
    ]


def solution_regions(source: str) -> list[str]:
    """The text between each ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of a cell's source."""
    regions, current = [], None
    for line in source.splitlines():
        if SOLUTION_BEGIN in line:
            current = []
        elif SOLUTION_END in line and current is not None:
            regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return regions


def graded_exercises(root: Path) -> dict[str, tuple[str, int]]:
    """``{grade_id: (notebook relative to root, its number in that notebook)}`` of every solution cell."""
    found = {}
    for notebook in sorted((root / "notebooks").glob("*/*.ipynb")):
        for number, (grade_id, _) in enumerate(solution_cells(notebook), 1):
            found[grade_id] = (notebook.relative_to(root).as_posix(), number)
    return found


def exercise_label(root: Path, grade_id: str) -> str:
    """The exercise's name for messages ("exercise N of notebooks/...ipynb"), as the course at ``root`` numbers it."""
    if grade_id not in (graded := graded_exercises(root)):  # a course without this exercise's chapter
        return f"the exercise {grade_id} of {EXERCISES[grade_id].notebook}"
    notebook, number = graded[grade_id]
    return f"exercise {number} of {notebook}"


# ----------------------------------------------------------------------------- stubbing with ast
def split_target(target: str) -> tuple[str, str]:
    path, _, qualname = target.partition(":")
    return path, qualname


def find_definition(tree: ast.Module, qualname: str) -> ast.FunctionDef | None:
    """The function (or method, ``Class.method``) named ``qualname`` at the top of ``tree``."""
    scope: list[ast.stmt] = tree.body
    node = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in scope
                if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) and n.name == part
            ),
            None,
        )
        if node is None:
            return None
        scope = node.body
    return node if isinstance(node, ast.FunctionDef) else None


def check_exercise_table(course: Path, repository: Path = REPOSITORY) -> list[str]:
    """Every problem with `EXERCISES` against the notebooks of ``course`` and the package in ``repository``;
    empty when each graded exercise has an entry in its own notebook, each entry is a graded exercise,
    and each named definition exists."""
    problems = []
    graded = graded_exercises(course)
    for grade_id in sorted(set(graded) - set(EXERCISES)):
        problems.append(f"{grade_id} ({graded[grade_id][0]}) is graded but has no entry in EXERCISES")
    for grade_id, exercise in EXERCISES.items():
        if grade_id not in graded:
            problems.append(f"EXERCISES[{grade_id!r}]: no solution cell of the notebooks has this grade_id")
            continue
        if graded[grade_id][0] != exercise.notebook:
            problems.append(
                f"EXERCISES[{grade_id!r}] says {exercise.notebook}, the exercise is in {graded[grade_id][0]}"
            )
        if not exercise.references and not exercise.withheld:
            problems.append(f"EXERCISES[{grade_id!r}] names no definition")
        for target in (*exercise.references, *exercise.withheld):
            path, qualname = split_target(target)
            if not (repository / path).is_file():
                problems.append(f"EXERCISES[{grade_id!r}]: {path} does not exist")
            elif find_definition(ast.parse((repository / path).read_text()), qualname) is None:
                problems.append(f"EXERCISES[{grade_id!r}]: {path} defines no function {qualname}")
    return problems


def _body_start(node: ast.FunctionDef) -> int:
    """The first line (1-based) after the docstring, or of the body when there is none."""
    first = node.body[0]
    is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    if is_docstring and isinstance(first.value.value, str):
        return first.end_lineno + 1
    return first.lineno


def _parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _defaults(node: ast.FunctionDef) -> dict[str, ast.expr]:
    """The parameters with a default, and the default's expression."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    found = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults) :]], args.defaults))
    found.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    return found


def stub_source(source: str, stubs: dict[str, tuple[str, str, str]]) -> str:
    """``source`` with the body of each function of ``stubs`` replaced: ``{qualname: (kind, name, exercise)}``.

    ``kind`` ``"reference"``: the body calls the learner's function ``name``; ``"withheld"``: it raises.
    The docstring and the signature stay; every other line of the file is left as it was.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = []
    for qualname, (kind, name, exercise) in stubs.items():
        node = find_definition(tree, qualname)
        if node is None:
            raise ValueError(f"no function {qualname} to stub")
        start, end = _body_start(node), node.end_lineno
        indent = " " * node.body[-1].col_offset
        if kind == "reference":
            arguments = ", ".join(f"{p!r}: {p}" for p in _parameters(node))
            defaults = ", ".join(f"{p!r}: {ast.unparse(d)}" for p, d in _defaults(node).items())
            body = [
                "from tlcourse.library.exercises import learner_solution\n",
                "\n",
                f"return learner_solution({name!r}, {exercise!r}, {{{arguments}}}, {{{defaults}}})\n",
            ]
        else:
            body = [
                "from tlcourse.library.exercises import withheld\n",
                "\n",
                f"raise withheld({name!r}, {exercise!r})\n",
            ]
        spans.append((start, end, [indent + line if line.strip() else line for line in body]))
    for start, end, body in sorted(spans, reverse=True):  # from the bottom up, so line numbers hold
        lines[start - 1 : end] = body
    stubbed = "".join(lines)
    ast.parse(stubbed)  # a stub that breaks the module must fail the build, not the learner
    return stubbed


def stub_package(course: Path, package: Path) -> list[str]:
    """Stub every definition of `EXERCISES` in the copy of ``tlcourse`` at ``package``; returns what was stubbed.

    The stubs name each exercise's number and notebook as the notebooks of ``course`` have them.
    """
    by_file: dict[str, dict[str, tuple[str, str, str]]] = {}
    for grade_id, exercise in EXERCISES.items():
        label = exercise_label(course, grade_id)
        for kind, targets in (("reference", exercise.references), ("withheld", exercise.withheld)):
            for target in targets:
                path, qualname = split_target(target)
                by_file.setdefault(path, {})[qualname] = (kind, qualname, label)
    done = []
    for path, stubs in sorted(by_file.items()):
        file = package.parent / path
        file.write_text(stub_source(file.read_text(), stubs))
        done += [f"{path}:{q}" for q in stubs]
    return done


# ----------------------------------------------------------------------------- the edition's files
README = """# tlcourse: transfer learning, hands on (student edition)

A Jupyter course on transfer learning and domain adaptation: five chapter notebooks in `notebooks/` and
the PyTorch package `tlcourse/` they import. Every chapter runs on a laptop CPU in a few minutes, on data
that needs no internet.

This is the **student edition**. The graded exercises are yours to write: where the course's library had
the reference answer of an exercise, this edition has a stub. Once the cell with your solution has run,
the library code that needs that function uses yours; before that (or in another chapter's notebook)
calling it raises an error that names the exercise and the notebook where you write it.

## Install

With Python 3.11 or newer (Linux or macOS; no GPU needed), in this folder:

```bash
python3 -m venv .venv
.venv/bin/python -m pip install -e .
```

or with conda: `conda env create -f environment.yml && conda activate tlcourse`.

The data: Fashion-MNIST is read from `$TLCOURSE_DATA`, `~/.cache/tlcourse` or Debian's
`/usr/share/datasets/fashion-mnist`; `.venv/bin/python -m tlcourse data fetch fashion-mnist` downloads it
(with checksums), and `.venv/bin/python -m tlcourse data list` says what is ready.

## Start

```bash
.venv/bin/jupyter lab notebooks/
```

Work through the chapters in order: {chapters}.
Each notebook explains what to write in every exercise, and its visible tests say what is wrong with an
answer; hand in the notebook as your course says. The hidden tests that grade it are not part of this
edition.
"""


def edition_pyproject(root: Path) -> str:
    """The edition's ``pyproject.toml``: the package and its dependencies, as the course's own."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    dependencies = "".join(f'    "{d}",\n' for d in project["dependencies"])
    return (
        "[build-system]\n"
        'requires = ["setuptools>=69"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        "[project]\n"
        'name = "tlcourse"\n'
        f'version = "{project["version"]}"\n'
        'description = "A Jupyter course on transfer learning (student edition)"\n'
        'readme = "README.md"\n'
        f'requires-python = "{project["requires-python"]}"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        "[project.scripts]\n"
        'tlcourse = "tlcourse.__main__:main"\n\n'
        "[tool.setuptools.packages.find]\n"
        'include = ["tlcourse*"]\n\n'
        "[tool.setuptools.package-data]\n"
        '"tlcourse.experiments" = ["expected.toml"]\n'
    )


def edition_environment(root: Path) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = "".join(f"      - {d}\n" for d in project["dependencies"])
    python = project["requires-python"].removeprefix(">=")
    return (
        "# Conda environment for the student edition of tlcourse (the same packages as pyproject.toml).\n"
        "name: tlcourse\n"
        "channels:\n  - conda-forge\n"
        f"dependencies:\n  - python={python}\n  - pip\n  - pip:\n{pins}      - -e .\n"
    )


GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n/executed/\n/data/\n"


def write_edition(course: Path, release: Path, folder: Path, repository: Path = REPOSITORY) -> list[str]:
    """Write the student edition of the course at ``course`` into the new folder ``folder``.

    ``release`` holds nbgrader's student versions, ``release/<chapter>/<notebook>.ipynb``; every
    released chapter goes in. The package, its pyproject and docs come from ``repository``. Returns the
    stubbed definitions.
    """
    # Entries whose definition is gone would leave an answer in: stop. A course of other notebooks (--root)
    # may hold fewer of the table's exercises, or exercises of its own that the library has no answer to.
    problems = check_exercise_table(REPOSITORY, repository)
    if problems:
        raise ValueError("the student edition's table of exercises is out of date: " + "; ".join(problems))
    if unknown := sorted(set(graded_exercises(course)) - set(EXERCISES)):
        print(
            f"note: the exercises {unknown} have no entry in tlcourse/classroom/edition.py's EXERCISES: the student "
            "edition stubs nothing for them (add an entry if the library holds their answers)"
        )
    chapters = sorted(
        p.name for p in release.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb"))
    )
    if not chapters:
        raise ValueError(f"no released chapter in {release}: nothing to put in the student edition")
    folder.mkdir(parents=True)
    for chapter in chapters:
        (folder / "notebooks" / chapter).mkdir(parents=True)
        for notebook in sorted((release / chapter).glob("*.ipynb")):
            shutil.copyfile(notebook, folder / "notebooks" / chapter / notebook.name)
    shutil.copytree(
        repository / "tlcourse",
        folder / "tlcourse",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"),
    )
    for part in INSTRUCTOR_ONLY:
        (folder / "tlcourse" / part).unlink()
    stubbed = stub_package(course, folder / "tlcourse")
    if (repository / "docs" / "decisions").is_dir():  # the notebooks link to the chapters' decision pages
        shutil.copytree(repository / "docs" / "decisions", folder / "docs" / "decisions")
    links = ", ".join(f"[{c}](notebooks/{c})" for c in chapters)
    (folder / "README.md").write_text(README.replace("{chapters}", links))
    (folder / "pyproject.toml").write_text(edition_pyproject(repository))
    (folder / "environment.yml").write_text(edition_environment(repository))
    (folder / ".gitignore").write_text(GITIGNORE)
    return stubbed


def build_student_edition(course: Path, release: Path) -> Path:
    """Write ``release/student-edition/`` whole, or leave the previous one as it was.

    The edition is written to a temporary folder beside it and renamed into place; on any failure the
    temporary folder goes and the previous edition stays.
    """
    target = release / EDITION_FOLDER
    tmp = Path(tempfile.mkdtemp(dir=release, prefix=f".{EDITION_FOLDER}-"))
    old = release / f".{EDITION_FOLDER}.previous"
    try:
        write_edition(course, release, tmp / "edition")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp / "edition", target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target
