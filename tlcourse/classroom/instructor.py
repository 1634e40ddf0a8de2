"""The instructor's side: ``python -m tlcourse grade release|collect|autograde|feedback|export``.

A thin layer over nbgrader's own API and gradebook, with what real classes need on top:
- student code runs with a time limit per cell (``--cell-timeout``) and a memory limit per kernel
  (``--memory-mib``, enforced with ``RLIMIT_DATA``, which every kernel inherits);
- a cell that kills its kernel, or loops without answering an interrupt, costs that cell: the kernel is
  restarted, the cells before it are run again, and grading goes on (`ResilientExecute`);
- one broken submission never stops the others; the run ends with a summary table.

The course root is the repository (``nbgrader_config.py``); chapters are the folders of ``notebooks/``.
"""

from __future__ import annotations

import copy
import csv
import os
import resource
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import Execute, OverwriteCells

REPO_CONFIG = Path(__file__).resolve().parents[2] / "nbgrader_config.py"
DEFAULT_CELL_TIMEOUT = 600
DEFAULT_MEMORY_MIB = 4096
KILLED_MESSAGE = (
    "The kernel died while this cell ran (the code exited Python, crashed it, or used more memory than "
    "the grading limit). The grader restarted the kernel, ran the cells above again, and went on."
)
HUNG_MESSAGE = (
    "This cell ran past the time limit and did not stop when interrupted. The grader restarted the "
    "kernel, ran the cells above again, and went on."
)


class ResilientExecute(Execute):
    """nbgrader's Execute preprocessor, made to survive cells that kill or hang their kernel.

    When a cell kills the kernel (or times out and ignores the interrupt), that cell gets an error
    output that says so, a fresh kernel replays the code cells above it (outputs untouched), and
    execution goes on with the next cell. So the culprit loses its own points, later cells run in the
    state they expect, and a dead kernel never lets a later test pass by default.
    """

    responsive_seconds = 10

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        self._culprits = getattr(self, "_culprits", set())
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._record_error(cell, "KernelDied", KILLED_MESSAGE)
            self._restart_and_replay(index)
            return cell, resources
        except CellTimeoutError:
            # Raised when the interrupted kernel never went idle: it is stuck.
            self._record_error(cell, "KernelUnresponsive", HUNG_MESSAGE)
            self._restart_and_replay(index)
            return cell, resources
        if cell.cell_type == "code" and self._timed_out(cell) and not self._responsive():
            self._record_error(cell, "KernelUnresponsive", HUNG_MESSAGE)
            self._restart_and_replay(index)
        return cell, resources

    @staticmethod
    def _timed_out(cell: NotebookNode) -> bool:
        return any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs)

    def _responsive(self) -> bool:
        try:
            self.wait_for_reply(self.kc.kernel_info(), timeout=self.responsive_seconds)
            return True
        except Exception:  # any failure to answer means unresponsive
            return False

    def _record_error(self, cell: NotebookNode, name: str, message: str) -> None:
        self.log.warning("%s in cell %s: %s", name, cell.metadata.get("nbgrader", {}).get("grade_id", "?"), message)
        cell.outputs.append(
            NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])
        )

    def _restart_and_replay(self, index: int) -> None:
        self._culprits.add(index)
        self._cleanup_kernel()
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        for i, earlier in enumerate(self.nb.cells[:index]):
            if earlier.cell_type != "code" or i in self._culprits:
                continue
            replay = copy.deepcopy(earlier)
            try:
                super().preprocess_cell(replay, self.resources, i)
            except DeadKernelError:
                # The replay itself died: the state cannot be rebuilt; later cells fail on their own.
                self._culprits.add(i)
                self._cleanup_kernel()
                self.km = self.create_kernel_manager()
                self.start_new_kernel()
                self.start_new_kernel_client()
                return


class RobustOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, hardened against deleted and duplicated cells.

    nbgrader 0.9 re-inserts a deleted test cell after the cell that preceded it in the source notebook,
    and fails the whole submission when that cell was deleted as well (say, a student deleted an
    exercise's solution cell and its test cell). Here each missing test cell goes after the nearest
    earlier source cell that is still there. A deleted solution cell is not restored: its test fails.
    A duplicated graded cell is graded once (nbgrader un-marks the copies; this class copes with that).
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        # nbgrader's DeduplicateIds empties the metadata of a duplicated cell, which the code below it
        # does not expect (a KeyError failed the whole submission): drop such empty metadata first.
        for cell in nb.cells:
            if cell.metadata.get("nbgrader") == {}:
                del cell.metadata["nbgrader"]
        return super().preprocess(nb, resources)

    def add_missing_grade_cells(self, nb: NotebookNode, resources: dict):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}

        def present() -> dict[str, int]:
            return {
                c["metadata"]["nbgrader"]["grade_id"]: i
                for i, c in enumerate(nb.cells)
                if nbgrader_utils.is_grade(c) or nbgrader_utils.is_solution(c)
            }

        insert_after = -1  # before the first cell
        for source_cell in source_nb.source_cells:
            where = present()
            if source_cell.name in where:
                insert_after = where[source_cell.name]
            elif source_cell.name in grade_cells:
                self.log.warning(f"Missing grade cell {source_cell.name} encountered, adding to notebook")
                cell = self.missing_cell_transform(
                    source_cell, grade_cells[source_cell.name].max_score, is_solution=source_cell.name in solution_ids
                )
                nb.cells.insert(insert_after + 1, cell)
                insert_after += 1
        return nb, resources


def limit_memory(mib: int) -> None:
    """Cap this process's data segment (heap and private mappings) at ``mib`` MiB; kernels inherit it."""
    limit = mib * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def nbgrader_api(root: Path | None = None, *, cell_timeout: int | None = None):
    """nbgrader's API with the repository's configuration, for a course at ``root`` (default: the repository)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(REPO_CONFIG.name, path=str(REPO_CONFIG.parent)).load_config()
    if root is not None:
        config.CourseDirectory.root = str(Path(root).resolve())
        config.Exchange.root = str(Path(root).resolve() / "exchange")
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    # nbgrader runs its `alembic` by name: make this environment's tools reachable.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return NbGraderAPI(config=config)


def chapters_of(api) -> list[str]:
    source = Path(api.coursedir.root) / api.coursedir.source_directory
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def _check_chapters(api, chapters: list[str] | None) -> list[str]:
    known = chapters_of(api)
    chapters = chapters or known
    unknown = sorted(set(chapters) - set(known))
    if unknown:
        raise ValueError(f"Unknown chapters {unknown}; the course has {known}.")
    return chapters


def _fail(what: str, result: dict) -> str:
    lines = (result.get("log", "") + result.get("error", "")).strip().splitlines()
    return f"{what}: " + (" | ".join(lines[-3:]) if lines else "failed")


def release(api, chapters: list[str] | None = None) -> list[Path]:
    """Write the student version of each chapter into ``release/<chapter>/``."""
    written = []
    for chapter in _check_chapters(api, chapters):
        result = api.generate_assignment(chapter, force=True)
        if not result["success"]:
            raise RuntimeError(_fail(f"generate_assignment {chapter}", result))
        folder = Path(api.coursedir.root) / api.coursedir.release_directory / chapter
        written += sorted(folder.glob("*.ipynb"))
        print(f"released {chapter}: {', '.join(p.name for p in folder.glob('*.ipynb'))} -> {folder}")
    return written


def collect(api, folder: Path) -> dict[str, list[str]]:
    """Copy submissions into nbgrader's ``submitted/`` folder.

    Accepts ``FOLDER/<student>/<chapter>/<notebook>.ipynb`` (nbgrader's layout) and
    ``FOLDER/<student>/<notebook>.ipynb`` (the chapter is found from the notebook's name). Files that
    match no chapter notebook are reported and left out. Returns ``{student: [chapter, ...]}``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No submissions folder at {folder}.")
    root = Path(api.coursedir.root)
    by_name = {
        p.name: p.parent.name
        for ch in chapters_of(api)
        for p in (root / api.coursedir.source_directory / ch).glob("*.ipynb")
    }
    collected: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        student = student_dir.name
        for nb in sorted(student_dir.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in nb.parts:
                continue
            chapter = (
                nb.parent.name
                if nb.parent != student_dir and nb.parent.name in by_name.values()
                else by_name.get(nb.name)
            )
            if chapter is None or by_name.get(nb.name) != chapter:
                print(f"skipped {nb}: no chapter has a notebook named {nb.name!r} (renamed?)")
                continue
            target = root / api.coursedir.submitted_directory / student / chapter / nb.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb, target)
            collected.setdefault(student, []).append(chapter)
    print(f"collected {sum(map(len, collected.values()))} notebooks from {len(collected)} students")
    return collected


@dataclass
class GradeRow:
    student: str
    chapter: str
    score: float
    max_score: float
    failed_cells: list[str]
    error: str = ""


def _scores(api, chapter: str, student: str) -> GradeRow:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(api.coursedir.db_url) as gb:
        try:
            sub = gb.find_submission(chapter, student)
        except MissingEntry:
            return GradeRow(student, chapter, 0.0, 0.0, [], "not graded")
        failed = [g.name for nb in sub.notebooks for g in nb.grades if g.max_score and (g.score or 0) < g.max_score]
        return GradeRow(student, chapter, sub.score, sub.max_score, failed)


def submitted_students(api, chapter: str) -> list[str]:
    folder = Path(api.coursedir.root) / api.coursedir.submitted_directory
    return sorted(p.parent.name for p in folder.glob(f"*/{chapter}") if p.is_dir()) if folder.exists() else []


def check_students(api, chapters: list[str], students: list[str] | None) -> None:
    """Raise a ValueError naming the unknown students and the known ones, when ``students`` names a student
    with no submission in any of ``chapters`` (a typo would otherwise grade nobody and succeed)."""
    if not students:
        return
    known = sorted({s for chapter in chapters for s in submitted_students(api, chapter)})
    unknown = sorted(set(students) - set(known))
    if unknown:
        raise ValueError(
            f"--students: no submission from {unknown} in {chapters}; the students who submitted are {known} "
            "(check the names, or run `grade collect` first)."
        )


def autograde(api, chapters: list[str] | None = None, students: list[str] | None = None) -> list[GradeRow]:
    """Autograde every submission of each chapter; one failure never stops the others.

    ``students`` (default: all who submitted) must each have submitted at least one of the chapters
    (`check_students`): nothing is graded otherwise.
    """
    rows = []
    chapters = _check_chapters(api, chapters)
    check_students(api, chapters, students)
    for chapter in chapters:
        todo = [s for s in submitted_students(api, chapter) if not students or s in students]
        for i, student in enumerate(todo, 1):
            print(f"[{chapter} {i}/{len(todo)}] autograding {student} ...", flush=True)
            result = api.autograde(chapter, student, force=True, create=True)
            for line in result.get("log", "").splitlines():
                # What happened to the student's code (timeouts, dead kernels), for the instructor's log.
                if any(word in line for word in ("KernelDied", "KernelUnresponsive", "Timeout", "ERROR")):
                    print(f"    {line.strip()}")
            row = _scores(api, chapter, student)
            if not result["success"]:
                row.error = _fail("autograde", result)
            rows.append(row)
    print(summary_table(rows))
    return rows


def summary_table(rows: list[GradeRow]) -> str:
    lines = [f"{'student':<20} {'chapter':<22} {'score':>11}  failed cells / errors", "-" * 80]
    for r in rows:
        problems = ", ".join(r.failed_cells) + (f" [{r.error}]" if r.error else "")
        lines.append(f"{r.student:<20} {r.chapter:<22} {r.score:5.1f}/{r.max_score:<5.1f}  {problems or '-'}")
    failures = sum(bool(r.error) for r in rows)
    lines.append(
        f"{len({r.student for r in rows})} students, {len(rows)} submissions graded, {failures} with grading errors"
    )
    return "\n".join(lines)


def feedback(api, chapters: list[str] | None = None) -> list[Path]:
    """HTML feedback for every autograded submission, in ``feedback/<student>/<chapter>/``."""
    written = []
    for chapter in _check_chapters(api, chapters):
        result = api.generate_feedback(chapter, force=True)
        if not result["success"]:
            raise RuntimeError(_fail(f"generate_feedback {chapter}", result))
        written += sorted((Path(api.coursedir.root) / api.coursedir.feedback_directory).glob(f"*/{chapter}/*.html"))
    print(f"wrote {len(written)} feedback files")
    return written


def export(api, path: Path) -> Path:
    """Grades to CSV: one row per student and chapter, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with Gradebook(api.coursedir.db_url) as gb, tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "chapter", "score", "max_score"])
            for assignment in gb.assignments:
                for student in gb.students:
                    try:
                        sub = gb.find_submission(assignment.name, student.id)
                        writer.writerow([student.id, assignment.name, sub.score, sub.max_score])
                    except MissingEntry:
                        writer.writerow([student.id, assignment.name, 0.0, assignment.max_score])
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed export leaves no half-written file
    print(f"wrote {path}")
    return path
