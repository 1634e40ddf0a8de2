"""The instructor's side: ``python -m tlcourse grade release|collect|autograde|feedback|export``.

A thin layer over nbgrader's own API and gradebook, with what real classes need on top:
- each submission's kernel runs in a sandbox (`tlcourse.classroom.sandbox`: bubblewrap, no network, no course
  files) under a memory cap that counts all its memory (``--memory-mib``), a time limit per cell
  (``--cell-timeout``) and one per submission (``--submission-timeout``);
- hidden tests are judged here, in the grader, on what the sandbox hands back (`tlcourse.classroom.judging`);
- ``--jobs N`` grades N submissions at once, each in a process of its own;
- a cell that kills its kernel, or loops without answering an interrupt, costs that cell: the kernel is
  restarted, the cells before it are run again, and grading goes on (`ResilientExecute`);
- one broken submission never stops the others; the run ends with a summary table.

The course root is the repository (``nbgrader_config.py``); chapters are the folders of ``notebooks/``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Integer, Unicode

from tlcourse.classroom import judging, sandbox
from tlcourse.classroom.edition import build_student_edition
from tlcourse.classroom.errors import GradingError
from tlcourse.library.data.store.download import terminate_cleanly
from tlcourse.library.data.store.writable import check_writable_folder

REPO_CONFIG = Path(__file__).resolve().parents[2] / "nbgrader_config.py"
DEFAULT_CELL_TIMEOUT = 600
DEFAULT_MEMORY_MIB = 4096
DEFAULT_SUBMISSION_TIMEOUT = 1800
KILLED_MESSAGE = (
    "The kernel died while this cell ran (the code exited Python, crashed it, or used more memory than "
    "the grading limit). The grader restarted the kernel, ran the cells above again, and went on."
)
OUT_OF_TIME_MESSAGE = (
    "The submission used up its time limit before this cell: the cell was not run. Cells that loop or "
    "wait cost their own time limit each; make every cell finish well within it."
)
HUNG_MESSAGE = (
    "This cell ran past the time limit and did not stop when interrupted. The grader restarted the "
    "kernel, ran the cells above again, and went on."
)


class ResilientExecute(Execute):
    """nbgrader's Execute preprocessor, made to survive cells that kill or hang their kernel, in a sandbox.

    When a cell kills the kernel (or times out and ignores the interrupt), that cell gets an error
    output that says so, a fresh kernel replays the code cells above it (outputs untouched), and
    execution goes on with the next cell. So the culprit loses its own points, later cells run in the
    state they expect, and a dead kernel never lets a later test pass by default.

    The kernel is a `sandbox.SandboxedKernelManager`'s. A graded cell whose hidden tests are in probe/judge
    form (`judging`) passes only if, besides running without error, the judge of its hidden region (read
    from the gradebook, run in this process) accepts what the probe handed back; else the cell gets an
    error output with the judge's message. A submission has ``submission_timeout`` seconds in all: each cell
    gets at most what is left, and cells after that are not run (an error output says why).
    """

    responsive_seconds = 10
    memory_mib = Integer(DEFAULT_MEMORY_MIB, help="memory cap of each kernel, in MiB").tag(config=True)
    submission_timeout = Integer(DEFAULT_SUBMISSION_TIMEOUT, help="seconds for a whole submission").tag(config=True)
    course_root = Unicode("", help="the course folder (its student edition is the sandbox's tlcourse)").tag(config=True)
    trusted_model_cache = Unicode(
        "", help="a model cache the kernels share (SandboxSettings.trusted_model_cache): trusted submissions only"
    ).tag(config=True)

    def create_kernel_manager(self):
        self.km = sandbox.SandboxedKernelManager(kernel_name=self.kernel_name or "python3", config=self.config)
        root = Path(self.course_root) if self.course_root else REPO_CONFIG.parent
        self.km.settings = sandbox.SandboxSettings(
            course_root=root,
            memory_mib=self.memory_mib,
            trusted_model_cache=Path(self.trusted_model_cache) if self.trusted_model_cache else None,
        )
        self._managers = [*getattr(self, "_managers", []), self.km]
        return self.km

    def preprocess(self, nb: NotebookNode, resources: dict, km=None):
        self._deadline = time.monotonic() + self.submission_timeout
        self._cell_timeout = self.timeout
        self._trusted = self._trusted_regions(resources)
        self._culprits = set()
        self._managers = []
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            self.timeout = self._cell_timeout
            for manager in self._managers:  # their kernels have ended: their cgroups and folders go too
                manager.dispose()

    @staticmethod
    def _trusted_regions(resources: dict) -> dict[str, str]:
        """grade id -> hidden region in probe/judge form, from the gradebook (the instructor's source cells)."""
        ids = resources.get("nbgrader", {})
        if not {"db_url", "notebook", "assignment"} <= set(ids):
            return {}
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(ids["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(ids["notebook"], ids["assignment"])
            except MissingEntry:
                return {}
            regions = {cell.name: "\n".join(hidden_regions(cell.source)[1]) for cell in notebook.source_cells}
        return {name: region for name, region in regions.items() if judging.judges(region)}

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        self._culprits = getattr(self, "_culprits", set())
        if cell.cell_type != "code":
            return super().preprocess_cell(cell, resources, index)
        left = getattr(self, "_deadline", float("inf")) - time.monotonic()
        if left <= 1:
            self._record_error(cell, "SubmissionTimeLimit", OUT_OF_TIME_MESSAGE)
            return cell, resources
        cell_timeout = getattr(self, "_cell_timeout", self.timeout)
        self.timeout = int(min(cell_timeout or left, left))
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        judged = self._judged(cell)
        if judged:
            # What an earlier cell (or the previous run) left under this name is not this cell's probe.
            (self.km.probe_dir / f"{grade_id}.npz").unlink(missing_ok=True)
        # The kernel gets the probe, not the judge: how the grader judges stays with the grader.
        source, cell.source = cell.source, self._for_kernel(cell)
        try:
            cell, resources = self._execute(cell, resources, index)
        finally:
            cell.source = source
        if nbgrader_utils.is_grade(cell):
            self._no_partial_credit(cell)
        if judged and not any(o.get("output_type") == "error" for o in cell.outputs):
            self._judge(cell, grade_id)
        return cell, resources

    def _judged(self, cell: NotebookNode) -> bool:
        """Whether ``cell`` is a test cell whose hidden region the grader judges (probe/judge form)."""
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        return nbgrader_utils.is_grade(cell) and grade_id in getattr(self, "_trusted", {})

    def _for_kernel(self, cell: NotebookNode) -> str:
        """The source the kernel runs: a judged cell's without its judge (`probe_only`), any other as it is."""
        return probe_only(cell.source) if self._judged(cell) else cell.source

    @staticmethod
    def _no_partial_credit(cell: NotebookNode) -> None:
        """nbgrader takes a number shown as a graded cell's result for its score, even when an error comes
        after it; student code can show one (``get_ipython().displayhook(3)``). The course's test cells show
        no result: whatever result a graded cell shows becomes a plain display, worth nothing."""
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["output_type"] = "display_data"
                output.pop("execution_count", None)

    def _judge(self, cell: NotebookNode, grade_id: str) -> None:
        try:
            got = judging.read_probe(self.km.probe_dir, grade_id)
        except AssertionError as error:
            verdict = f"AssertionError: {error}"
        else:
            verdict = judging.judge_outputs(self._trusted[grade_id], got)
        if verdict:
            name, _, message = verdict.partition(": ")
            cell.outputs.append(
                NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])
            )

    def _execute(self, cell: NotebookNode, resources: dict, index: int):
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
        # nbclient's wait_for_reply takes its time limit from self.timeout (it had been given a `timeout`
        # argument it does not take, so that every interrupted kernel was taken for a stuck one).
        saved, self.timeout = self.timeout, self.responsive_seconds
        try:
            return self.wait_for_reply(self.kc.kernel_info()) is not None
        except Exception:  # any failure to answer means unresponsive
            return False
        finally:
            self.timeout = saved

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
            replay.source = self._for_kernel(earlier)
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

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        # A cell whose grade_id the chapter does not know (pasted from another chapter's notebook, say):
        # nbgrader deletes only its grade_id and keeps its solution / grade flags, which failed the whole
        # submission later (KeyError: 'grade_id'). It is an ordinary cell of the student's: grade nothing in it.
        cell, resources = super().preprocess_cell(cell, resources, index)
        if "nbgrader" in cell.metadata and "grade_id" not in cell.metadata["nbgrader"]:
            self.log.warning("A cell with nbgrader metadata of no cell of this chapter was graded as plain code")
            del cell.metadata["nbgrader"]
        return cell, resources

    def add_missing_grade_cells(self, nb: NotebookNode, resources: dict):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}

        def present() -> dict[str, int]:
            return {
                c["metadata"]["nbgrader"]["grade_id"]: i
                for i, c in enumerate(nb.cells)
                if (nbgrader_utils.is_grade(c) or nbgrader_utils.is_solution(c))
                and "grade_id" in c["metadata"]["nbgrader"]
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


# nbgrader's own rule (ClearHiddenTests): a line that contains these words opens or closes a hidden region.
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HIDDEN_NOTE = "# (hidden tests ran here; their code is not shown)"
HIDDEN_TEXT = "[hidden test code]"


def hidden_regions(source: str) -> tuple[str, list[str]]:
    """``source`` with each hidden region replaced by a note, and the lines that were in the regions."""
    shown, hidden, inside = [], [], False
    for line in source.splitlines():
        if HIDDEN_BEGIN in line:
            inside = True
            shown.append(line[: len(line) - len(line.lstrip())] + HIDDEN_NOTE)
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            shown.append(line)
    return "\n".join(shown), hidden


def probe_only(source: str) -> str:
    """A graded cell's ``source`` as its kernel gets it: each hidden region without its judge
    (`judging.without_judge`)."""
    lines, out, region = source.splitlines(), [], None
    for line in lines:
        if region is not None and HIDDEN_END in line:
            out += judging.without_judge(region)
            region = None
        if region is not None:
            region.append(line)
            continue
        out.append(line)
        if HIDDEN_BEGIN in line:
            region = []
    return "\n".join(out + (region or []))


def without_hidden_tests(source: str) -> str:
    """``source`` with each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region replaced by a note."""
    return hidden_regions(source)[0]


class HideHiddenTests(NbGraderPreprocessor):  # nbgrader's base: enabled by default, as nbconvert's is not
    """For feedback: the visible tests as they are, and of the hidden tests only whether they passed.

    A test cell's hidden region is replaced by a note, and its error output loses the traceback (whose
    frames quote the hidden code): what is left is the exception's name and message, e.g. "AssertionError:
    mmd2_unbiased returned 0.31, expected 0.12". Student code can print the hidden code too (IPython keeps
    every cell's source in ``In``), so every line of it is also cut out of every output of every cell
    (printed text, displays, results, error messages). Applied to a copy: the graded notebook is not changed.
    A submission that encodes what it reads (base64, say) still gets it out: that needs the sandbox of the
    grading-integrity issue, where hidden tests do not run in the student's process at all.
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        self._hidden = sorted(
            {
                line.strip()
                for cell in nb.cells
                if cell.cell_type == "code"
                for line in hidden_regions(cell.source)[1]
                if len(line.strip()) > 3
            },
            key=len,
            reverse=True,  # longest first, so that a line is never half replaced by a shorter one
        )
        return super().preprocess(nb, resources)

    def _scrub(self, text: str) -> str:
        for line in self._hidden:
            text = text.replace(line, HIDDEN_TEXT)
        for marker in (HIDDEN_BEGIN, HIDDEN_END):
            text = text.replace(marker, HIDDEN_TEXT)
        return text

    def _scrub_value(self, value):
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, list):
            return [self._scrub_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self._scrub_value(v) for k, v in value.items()}
        return value

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.cell_type != "code":
            return cell, resources
        tested = HIDDEN_BEGIN in cell.source
        if tested:
            cell.source = without_hidden_tests(cell.source)
        for output in cell.get("outputs", []):
            if tested and output.get("output_type") == "error":
                message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".rstrip(": ")
                output["traceback"] = [f"A test of this cell failed. {message}"]
            for key in ("text", "data", "evalue", "traceback"):
                if key in output:
                    output[key] = self._scrub_value(output[key])
        return cell, resources


def check_course_root(root: Path | None) -> Path:
    """The course folder (default: the repository); a one-line error when it has no ``notebooks/`` of chapters."""
    folder = Path(root) if root is not None else REPO_CONFIG.parent
    if not (folder / "notebooks").is_dir():
        raise FileNotFoundError(
            f"No course at {folder}: it has no notebooks/ folder of chapters; "
            "give --root the course folder (the one that holds notebooks/)."
        )
    return folder


def nbgrader_api(
    root: Path | None = None,
    *,
    cell_timeout: int | None = None,
    memory_mib: int | None = None,
    submission_timeout: int | None = None,
    exchange_root: Path | None = None,
):
    """nbgrader's API with the repository's configuration, for a course at ``root`` (default: the repository),
    with nbgrader's exchange at ``exchange_root`` (default: the course's ``exchange/``; a hub's is its own)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    check_course_root(root)
    config = PyFileConfigLoader(REPO_CONFIG.name, path=str(REPO_CONFIG.parent)).load_config()
    if root is not None:
        config.CourseDirectory.root = str(Path(root).resolve())
        config.Exchange.root = str(Path(root).resolve() / "exchange")
    if exchange_root is not None:
        config.Exchange.root = str(exchange_root)
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    if memory_mib is not None:
        config.ResilientExecute.memory_mib = memory_mib
    if submission_timeout is not None:
        config.ResilientExecute.submission_timeout = submission_timeout
    config.ResilientExecute.course_root = str(Path(root).resolve() if root is not None else REPO_CONFIG.parent)
    # nbgrader runs its `alembic` by name: make this environment's tools reachable.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return NbGraderAPI(config=config)


def chapters_of(api) -> list[str]:
    source = Path(api.coursedir.root) / api.coursedir.source_directory
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def check_chapters(api, chapters: list[str] | None) -> list[str]:
    known = chapters_of(api)
    chapters = chapters or known
    unknown = sorted(set(chapters) - set(known))
    if unknown:
        raise ValueError(f"Unknown chapters {unknown}; the course has {known}.")
    return chapters


def failure_message(what: str, result: dict) -> str:
    lines = (result.get("log", "") + result.get("error", "")).strip().splitlines()
    return f"{what}: " + (" | ".join(lines[-3:]) if lines else "failed")


def release(api, chapters: list[str] | None = None) -> list[Path]:
    """Write the student version of each chapter into ``release/<chapter>/``, then the student edition.

    nbgrader deletes the old release before it writes the new one: if it fails, the old one is put back.
    The student edition, ``release/student-edition/`` (`tlcourse.classroom.edition`), holds every released
    chapter; it is written beside the old one and renamed into place, so a failure keeps the old one.
    """
    written = []
    for chapter in check_chapters(api, chapters):
        folder = Path(api.coursedir.root) / api.coursedir.release_directory / chapter
        backup = folder.with_name(f".{chapter}.before-release")
        shutil.rmtree(backup, ignore_errors=True)
        if folder.is_dir():
            shutil.copytree(folder, backup)
        try:
            result = api.generate_assignment(chapter, force=True)
            if not result["success"]:
                if backup.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
                    backup.replace(folder)
                raise GradingError(
                    failure_message(f"grade release {chapter}", result)
                    + " (the previous release is kept; a solution region without its END marker, or a graded "
                    "cell removed after students submitted, are common causes)"
                )
        finally:
            shutil.rmtree(backup, ignore_errors=True)
        written += sorted(folder.glob("*.ipynb"))
        print(f"released {chapter}: {', '.join(p.name for p in folder.glob('*.ipynb'))} -> {folder}")
    root = Path(api.coursedir.root)
    edition = build_student_edition(root, root / api.coursedir.release_directory)
    print(f"student edition (publish this folder as the students' repository) -> {edition}")
    return written


# Student ids become folder names and nbgrader reads them as glob patterns: `*` or `br[ack]et` would
# match other students. Letters and marks of any script, digits and . _ - @ + only, starting with a
# letter or digit (checked on the NFC form: macOS writes `josé` decomposed).
STUDENT_PUNCTUATION = frozenset("._@+-")
# Folders that archivers and tools add to an inbox: skipped with a note, never taken for students.
NOT_STUDENTS = ("__MACOSX", ".git", ".ipynb_checkpoints", ".DS_Store")


def check_student_id(name: str, where: str) -> str | None:
    """None when ``name`` is a usable student id; else a one-line problem that says what to do."""
    nfc = unicodedata.normalize("NFC", name)
    first_ok = bool(nfc) and unicodedata.category(nfc[0])[0] in "LN"
    if first_ok and all(unicodedata.category(c)[0] in "LMN" or c in STUDENT_PUNCTUATION for c in nfc):
        return None
    return (
        f"{where}: the student name {name!r} has characters nbgrader would read as a pattern or a path "
        "(use letters, digits and . _ - @ + only, starting with a letter or digit): rename the folder, "
        "then collect again"
    )


MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024  # the course's notebooks are a few MB with outputs


def notebook_problem(path: Path) -> str | None:
    """None when ``path`` reads as a notebook; else what is wrong with it (empty, not JSON, not a notebook)."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return f"is {size / 2**20:.0f} MiB, too large for a notebook (at most {MAX_NOTEBOOK_BYTES // 2**20} MiB)"
        data = path.read_bytes()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not data.strip():
        return "is empty"
    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        return "is not text (not a notebook)"
    except Exception as error:  # nbformat raises JSON, validation and version errors
        return f"is not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
    return None


@dataclass
class CollectPlan:
    """What `collect` will do: ``copies`` (inbox file -> submitted file), ``notes`` printed as they are,
    and ``problems`` that stop it before anything is copied."""

    copies: dict[Path, Path]
    owners: dict[Path, str]
    notes: list[str]
    problems: list[str]


def _inbox_notebooks(student_dir: Path, plan: CollectPlan) -> list[Path]:
    """Every ``*.ipynb`` under ``student_dir`` (checkpoints skipped); symbolic links are problems, never followed."""
    found = []
    for current, subdirs, files in os.walk(student_dir):
        here = Path(current)
        for name in sorted(subdirs):
            if (here / name).is_symlink():
                plan.problems.append(
                    f"{here / name} is a symbolic link: collect never follows links; put the files themselves there"
                )
        subdirs[:] = sorted(d for d in subdirs if d != ".ipynb_checkpoints" and not (here / d).is_symlink())
        for name in sorted(files):
            path = here / name
            if not name.endswith(".ipynb"):
                continue
            if path.is_symlink() or not path.is_file():
                plan.problems.append(
                    f"{path} is a symbolic link or not a regular file: collect copies only notebooks themselves; "
                    "replace it with the notebook"
                )
                continue
            found.append(path)
    return found


def plan_collect(api, folder: Path, *, force: bool = False) -> CollectPlan:
    """Work out `collect`'s copies and check them all, writing nothing.

    Problems (each stops the whole collect): a student name nbgrader would read as a pattern, a symbolic
    link, two different copies of one notebook from one student (both inbox layouts, say), and a
    different submission already in ``submitted/`` unless ``force``. Notes: a notebook named after no
    chapter (skipped), one filed under another chapter's folder (collected under its own chapter), one
    that is not a readable notebook (collected; autograde reports it), and identical copies collected once.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No submissions folder at {folder}: give the folder that holds one folder per student."
        )
    root = Path(api.coursedir.root)
    inbox, course = folder.resolve(), root.resolve()
    managed = [course / d for d in course_folders(api)]
    if course.is_relative_to(inbox) or any(inbox.is_relative_to(m) for m in managed):
        raise ValueError(
            f"grade collect {folder}: that folder holds the course itself (or is one of its own folders); "
            "give the inbox: a folder outside the course with one folder per student."
        )
    by_name = {
        p.name: p.parent.name
        for ch in chapters_of(api)
        for p in (root / api.coursedir.source_directory / ch).glob("*.ipynb")
    }
    plan = CollectPlan({}, {}, [], [])
    sources: dict[Path, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            plan.problems.append(
                f"{entry} is a symbolic link: collect never follows links; put the files themselves there"
            )
            continue
        if not entry.is_dir():
            plan.notes.append(f"ignored {entry}: not a student's folder")
            continue
        if entry.name in NOT_STUDENTS:
            plan.notes.append(f"ignored {entry}: a folder that tools add ({entry.name}), not a student's")
            continue
        student = entry.name
        if problem := check_student_id(student, str(entry)):
            plan.problems.append(problem)
            continue
        for nb in _inbox_notebooks(entry, plan):
            chapter = by_name.get(nb.name)
            if chapter is None:
                plan.notes.append(
                    f"skipped {nb}: no chapter has a notebook named {nb.name!r} (renamed? the chapters' notebooks "
                    f"are {', '.join(sorted(by_name))})"
                )
                continue
            if nb.parent != entry and nb.parent.name in by_name.values() and nb.parent.name != chapter:
                plan.notes.append(
                    f"{nb}: {nb.name} is chapter {chapter}'s notebook, filed under {nb.parent.name}; "
                    f"collected as {chapter}"
                )
            target = root / api.coursedir.submitted_directory / student / chapter / nb.name
            sources.setdefault(target, []).append(nb)
            plan.owners[target] = student
    submitted = root / api.coursedir.submitted_directory
    for target, found in sources.items():
        contents = {file_digest(p) for p in found}
        if len(contents) > 1:
            plan.problems.append(
                f"{plan.owners[target]} handed in {len(found)} different copies of {target.name} "
                f"({', '.join(str(p) for p in found)}): keep the one to grade, then collect again"
            )
            continue
        if len(found) > 1:
            plan.notes.append(f"{', '.join(str(p) for p in found)} are the same notebook: collected once")
        source = found[0]
        if problem := notebook_problem(source):
            plan.notes.append(f"{source} {problem}: collected; autograde will report it and grade nothing")
        blocker = next((p for p in (target, *target.parents) if p.is_relative_to(submitted) and p.exists()), None)
        if blocker is not None and blocker != target and not blocker.is_dir():
            plan.problems.append(f"{blocker} is a file where collect needs a folder: move it away, then collect again")
            continue
        if target.exists() and (target.is_symlink() or not target.is_file()):
            plan.problems.append(f"{target} is not a regular file: move it away, then collect again")
            continue
        if target.exists() and file_digest(target) != contents.pop() and not force:
            plan.problems.append(
                f"{target} already holds a different submission than {source}: "
                "`grade collect --force` replaces it (its old grade goes at the next autograde)"
            )
            continue
        plan.copies[source] = target
    if plan.copies:
        try:
            check_writable_folder(submitted, "grade collect")
        except ValueError as error:
            plan.problems.append(str(error))
    return plan


def course_folders(api) -> list[str]:
    """The course's own folders (and gradebook): never an inbox, never an export's target."""
    d = api.coursedir
    folders = [d.source_directory, d.release_directory, d.submitted_directory, d.autograded_directory]
    return [*folders, d.feedback_directory, "gradebook.db"]


def collect(api, folder: Path, *, force: bool = False) -> dict[str, list[str]]:
    """Copy submissions into nbgrader's ``submitted/`` folder, all or nothing.

    Accepts ``FOLDER/<student>/<chapter>/<notebook>.ipynb`` (nbgrader's layout) and
    ``FOLDER/<student>/<notebook>.ipynb`` (the chapter is found from the notebook's name). Everything is
    checked first (`plan_collect`): any problem raises a ValueError listing them all, and nothing is
    copied. Each notebook is copied whole or not at all; a collect cut short (SIGTERM, Ctrl-C) is finished
    by running it again (what was copied counts as unchanged). Returns ``{student: [chapter, ...]}``.
    """
    plan = plan_collect(api, folder, force=force)
    for note in plan.notes:
        print(note)
    if plan.problems:
        raise ValueError(
            f"grade collect: nothing was collected; fix these {len(plan.problems)} problem(s) first:\n  "
            + "\n  ".join(plan.problems)
        )
    collected: dict[str, list[str]] = {}
    unchanged = 0
    with terminate_cleanly():  # SIGTERM or Ctrl-C: the notebook being copied is not left half-written
        for source, target in plan.copies.items():
            if target.exists() and file_digest(target) == file_digest(source):
                unchanged += 1
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tlcourse-collect-", suffix=".part")
                os.close(handle)
                try:
                    shutil.copyfile(source, tmp)
                    os.replace(tmp, target)
                finally:
                    Path(tmp).unlink(missing_ok=True)
            collected.setdefault(plan.owners[target], []).append(target.parent.name)
    notebooks = sum(map(len, collected.values()))
    print(
        f"collected {notebooks} notebooks from {len(collected)} students"
        + (f" ({unchanged} unchanged since the last collect)" if unchanged else "")
    )
    return collected


@dataclass
class GradeRow:
    student: str
    chapter: str
    score: float
    max_score: float
    failed_cells: list[str]
    error: str = ""  # the grading itself failed (nbgrader): the command exits non-zero
    note: str = ""  # the submission was not graded, by design: ungradable, or unchanged since its grade


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


GRADED_STAMP = ".tlcourse-graded.sha256"  # in autograded/<student>/<chapter>/: the submission it graded


def submission_digest(folder: Path) -> str:
    """SHA-256 over a submission folder's notebooks (names and bytes): what a grade was given for."""
    digest = hashlib.sha256()
    for nb in sorted(folder.glob("*.ipynb")):
        digest.update(nb.name.encode() + b"\0" + file_digest(nb).encode() + b"\0")
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks (a huge file never sits in memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _submission_problems(api, chapter: str, student: str) -> list[str]:
    folder = Path(api.coursedir.root) / api.coursedir.submitted_directory / student / chapter
    return [f"{nb.name} {problem}" for nb in sorted(folder.glob("*.ipynb")) if (problem := notebook_problem(nb))]


def _api_settings(api) -> dict:
    """What a worker process needs to build the same nbgrader API (`nbgrader_api`) as ``api``."""
    config = api.config
    return {
        "root": str(api.coursedir.root),
        "cell_timeout": config.Execute.get("timeout", DEFAULT_CELL_TIMEOUT),
        "memory_mib": config.ResilientExecute.get("memory_mib", DEFAULT_MEMORY_MIB),
        "submission_timeout": config.ResilientExecute.get("submission_timeout", DEFAULT_SUBMISSION_TIMEOUT),
    }


def _autograde_in_worker(settings: dict, chapter: str, student: str) -> tuple[dict, float]:
    """One submission graded in a process of its own (``--jobs``): nbgrader's result and the seconds it took."""
    api = nbgrader_api(Path(settings.pop("root")), **settings)
    started = time.perf_counter()
    result = api.autograde(chapter, student, force=True, create=True)
    return {k: result.get(k) for k in ("success", "log", "error")}, time.perf_counter() - started


def autograde(
    api,
    chapters: list[str] | None = None,
    students: list[str] | None = None,
    *,
    regrade: bool = False,
    jobs: int = 1,
) -> list[GradeRow]:
    """Autograde every submission of each chapter; one failure never stops the others.

    ``students`` (default: all who submitted) must each have submitted at least one of the chapters
    (`check_students`): nothing is graded otherwise. A submission already graded, unchanged since, keeps
    its grade (nbgrader would overwrite it, manual marks included) unless ``regrade``. A notebook that is
    empty or not a notebook is not handed to nbgrader: its row says what is wrong with it. ``jobs`` > 1
    grades that many submissions at once, each in a process of its own (they share the gradebook).
    """
    rows = []
    chapters = check_chapters(api, chapters)
    check_students(api, chapters, students)
    root = Path(api.coursedir.root)
    bad_names = [
        problem
        for chapter in chapters
        for student in submitted_students(api, chapter)
        if (problem := check_student_id(student, str(root / api.coursedir.submitted_directory / student)))
    ]
    if bad_names:
        raise ValueError("grade autograde: nothing was graded; " + "; ".join(sorted(set(bad_names))))
    print(sandbox.describe(), flush=True)
    if leftovers := sandbox.sweep_leftovers():
        print(f"removed {len(leftovers)} sandbox folders and cgroups left by a grader that was stopped", flush=True)
    todo: list[tuple[str, str, str, str, Path]] = []  # chapter, student, progress label, digest, stamp
    for chapter in chapters:
        names = [s for s in submitted_students(api, chapter) if not students or s in students]
        for i, student in enumerate(names, 1):
            label = f"[{chapter} {i}/{len(names)}]"
            submitted = root / api.coursedir.submitted_directory / student / chapter
            stamp = root / api.coursedir.autograded_directory / student / chapter / GRADED_STAMP
            digest = submission_digest(submitted)
            if problems := _submission_problems(api, chapter, student):
                print(f"{label} {student}: not graded: {'; '.join(problems)}", flush=True)
                rows.append(GradeRow(student, chapter, 0.0, 0.0, [], note="ungradable: " + "; ".join(problems)))
                continue
            if not regrade and stamp.is_file() and stamp.read_text().strip() == digest:
                print(f"{label} {student}: graded before, unchanged (--regrade grades it again)")
                row = _scores(api, chapter, student)
                row.note = "unchanged since graded"
                rows.append(row)
                continue
            todo.append((chapter, student, label, digest, stamp))

    def finish(chapter: str, student: str, digest: str, stamp: Path, result: dict, seconds: float) -> None:
        if "KeyboardInterrupt" in (result.get("log") or "") + (result.get("error") or ""):
            # nbgrader catches Ctrl-C inside a submission and goes on with the next: stop here instead.
            raise KeyboardInterrupt
        for line in (result.get("log") or "").splitlines():
            # What happened to the student's code (timeouts, dead kernels), for the instructor's log.
            if any(word in line for word in ("KernelDied", "KernelUnresponsive", "Timeout", "TimeLimit", "ERROR")):
                print(f"    {student}: {line.strip()}")
        row = _scores(api, chapter, student)
        if result["success"]:
            stamp.write_text(digest + "\n")
        else:
            row.error = failure_message("autograde", result)
        print(f"    {student}: {row.score:g}/{row.max_score:g} in {seconds:.1f} s", flush=True)
        rows.append(row)

    for _, _, _, _, stamp in todo:
        stamp.unlink(missing_ok=True)  # from here until the new stamp, this grade is not to be trusted
    if jobs <= 1 or len(todo) <= 1:
        for chapter, student, label, digest, stamp in todo:
            print(f"{label} autograding {student} ...", flush=True)
            started = time.perf_counter()
            result = api.autograde(chapter, student, force=True, create=True)
            finish(chapter, student, digest, stamp, result, time.perf_counter() - started)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        settings = _api_settings(api)
        context = multiprocessing.get_context("spawn")  # a clean interpreter each: no state shared with this one
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {}
            for chapter, student, label, digest, stamp in todo:
                print(f"{label} autograding {student} ...", flush=True)
                future = pool.submit(_autograde_in_worker, dict(settings), chapter, student)
                futures[future] = (chapter, student, digest, stamp)
            for future in as_completed(futures):
                chapter, student, digest, stamp = futures[future]
                try:
                    result, seconds = future.result()
                except Exception as error:  # the worker itself died: that submission's grading failed
                    result, seconds = {"success": False, "log": "", "error": f"{type(error).__name__}: {error}"}, 0.0
                finish(chapter, student, digest, stamp, result, seconds)
    print(summary_table(rows))
    return rows


def summary_table(rows: list[GradeRow]) -> str:
    lines = [f"{'student':<20} {'chapter':<22} {'score':>11}  failed cells / errors", "-" * 80]
    for r in rows:
        problems = ", ".join(r.failed_cells) + "".join(f" [{text}]" for text in (r.error, r.note) if text)
        lines.append(f"{r.student:<20} {r.chapter:<22} {r.score:5.1f}/{r.max_score:<5.1f}  {problems or '-'}")
    failures = sum(bool(r.error) for r in rows)
    ungradable = sum(r.note.startswith("ungradable") for r in rows)
    lines.append(
        f"{len({r.student for r in rows})} students, {len(rows) - ungradable} submissions graded, "
        + (f"{ungradable} not notebooks (not graded), " if ungradable else "")
        + f"{failures} with grading errors"
    )
    return "\n".join(lines)


def feedback(api, chapters: list[str] | None = None) -> list[Path]:
    """HTML feedback for every autograded submission, in ``feedback/<student>/<chapter>/``."""
    written = []
    for chapter in check_chapters(api, chapters):
        if not any((Path(api.coursedir.root) / api.coursedir.autograded_directory).glob(f"*/{chapter}")):
            print(f"no feedback for {chapter}: nothing of it is autograded yet (run grade autograde first)")
            continue
        result = api.generate_feedback(chapter, force=True)
        if not result["success"]:
            raise GradingError(failure_message(f"grade feedback {chapter}", result))
        written += sorted((Path(api.coursedir.root) / api.coursedir.feedback_directory).glob(f"*/{chapter}/*.html"))
    print(f"wrote {len(written)} feedback files")
    return written


def grade_status(api, chapter: str, student: str, in_gradebook: bool) -> str:
    """What a gradebook row is worth: ``graded`` only when the grade was given to the submission there now.

    Otherwise: ``not submitted``; ``ungradable: ...`` (not a readable notebook); ``not graded yet``;
    ``grading failed or was interrupted`` (a gradebook entry, no record that its grading finished); or
    ``stale: resubmitted since graded``.
    """
    root = Path(api.coursedir.root)
    submitted = root / api.coursedir.submitted_directory / student / chapter
    if not submitted.is_dir():
        return "not submitted"
    if problems := _submission_problems(api, chapter, student):
        return "ungradable: " + "; ".join(problems)
    if not in_gradebook:
        return "not graded yet"
    stamp = root / api.coursedir.autograded_directory / student / chapter / GRADED_STAMP
    if not stamp.is_file():
        return "grading failed or was interrupted: run grade autograde"
    if stamp.read_text().strip() != submission_digest(submitted):
        return "stale: resubmitted since graded; run grade autograde"
    return "graded"


def check_export_path(api, path: Path, force: bool) -> None:
    """Refuse, even with ``force``, to write the export over the course's own files or a non-regular file."""
    target = Path(path).resolve()
    course = Path(api.coursedir.root).resolve()
    if any(target == course / d or target.is_relative_to(course / d) for d in course_folders(api)):
        raise ValueError(
            f"grade export {path}: that is the course's own file or folder ({', '.join(course_folders(api))}); "
            "give a path outside them, e.g. grades.csv"
        )
    if Path(path).exists() and not Path(path).is_file():
        raise ValueError(f"grade export {path}: it exists and is not a regular file; give another path")
    if Path(path).exists() and not force:
        raise ValueError(f"grade export: {path} exists; give another path, or --force to replace it.")


def export(api, path: Path, *, force: bool = False) -> Path:
    """Grades to CSV: one row per student and chapter, from nbgrader's gradebook.

    Columns ``student, chapter, score, max_score, status``. ``status`` is ``graded`` (the score is the
    grade of the submission there now) or says why there is no grade (`grade_status`): then the score is
    empty, so that it never passes for a real zero, but for ``not submitted`` (0). An existing file is
    replaced only with ``force``; the course's own files never (`check_export_path`).
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SQLAlchemyError

    path = Path(path)
    check_export_path(api, path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tlcourse-export-", suffix=".csv.part")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        with Gradebook(api.coursedir.db_url) as gb, tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "chapter", "score", "max_score", "status"])
            assignments = {a.name: a.max_score for a in gb.assignments}
            for chapter in chapters_of(api):
                assignments.setdefault(chapter, 0.0)
            students = {s.id for s in gb.students}
            students |= {s for chapter in assignments for s in submitted_students(api, chapter)}
            for chapter, max_score in assignments.items():
                for student in sorted(students):
                    try:
                        sub = gb.find_submission(chapter, student)
                    except MissingEntry:
                        sub = None
                    status = grade_status(api, chapter, student, sub is not None)
                    if status == "graded":
                        writer.writerow([student, chapter, sub.score, sub.max_score, status])
                    else:
                        score = 0.0 if status == "not submitted" else ""
                        writer.writerow([student, chapter, score, max_score, status])
        tmp.replace(path)
    except SQLAlchemyError as error:
        raise ValueError(
            f"grade export: the gradebook {api.coursedir.db_url} cannot be read ({type(error).__name__}); "
            "restore it from a backup, or grade again with grade autograde --regrade"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)  # a failed export leaves no half-written file
    print(f"wrote {path}")
    return path
