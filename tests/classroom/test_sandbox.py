"""Hostile submissions against the sandboxed grader, through the real CLI, on chapter 1's graded cells.

The course here is chapter 1 made light: its imports cell and its graded cells (the two exercises, their
tests), so that a submission grades in seconds; the graded cells are the chapter's own. The student edition
that ``grade release`` writes (each exercise's reference a stub that calls the student's own function)
is in ``release/student-edition/tlcourse``, where the sandbox mounts it as the student's ``tlcourse``.

Every attack of the grading-integrity issue, with variants, must score no more than the same submission
without it: rebinding the grading helpers, replacing what the tests compare with, rebuilding the
reference from its code object or its file, reading the instructor's files, writing into the course or
the environment for the next student. Then: the memory cap, the per-submission time cap, and feedback
that never shows hidden code.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tlcourse.classroom import sandbox

pytestmark = pytest.mark.slow
# Without the sandbox, the writer below would write into this checkout and the virtual environment: every test
# that grades a hostile submission needs bubblewrap.
needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap (apt-get install bubblewrap)")

REPO = Path(__file__).resolve().parents[2]
CHAPTER, NOTEBOOK = "01-domain-shift", "domain_shift.ipynb"
SOURCE = REPO / "notebooks" / CHAPTER / NOTEBOOK
MARK = "WRITER-WAS-HERE"

# The biased estimator: a plausible mistake that loses the MMD exercise's 3 points.
WRONG_MMD = (
    "    def kernel(a, b):\n"
    "        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))\n"
    "    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()\n"
)


def light_chapter() -> nbformat.NotebookNode:
    """Chapter 1's imports cell and its graded cells (solutions and tests), in order."""
    nb = nbformat.read(SOURCE, as_version=4)
    imports = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [imports, *(c for c in nb.cells if c.metadata.get("nbgrader"))]
    return nb


def cell_of(nb, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def changed(nb, grade_id: str, *, body: str | None = None, before: str = "", source: str | None = None):
    """A copy of ``nb`` whose solution cell ``grade_id`` has its solution region replaced by ``body``,
    ``before`` put in front of it, or its whole ``source`` replaced."""
    nb = copy.deepcopy(nb)
    cell = cell_of(nb, grade_id)
    if body is not None:
        cell.source = re.sub(r"[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[^\n]*\n?", body, cell.source, flags=re.S)
    if source is not None:
        cell.source = source
    cell.source = before + cell.source
    return nb


# Attacks 1 and 2, on a submission that earns 3/6 (MMD wrong): put in front of the MMD solution cell.
ON_HALF = {
    "rebinds-helpers": (
        "import tlcourse.classroom.grading as _g\n"
        "_g.assert_close = _g.assert_matches_reference = _g.assert_tensor_close = lambda *a, **k: None\n"
        "_g.reference_blocked = __import__('contextlib').nullcontext\n"
    ),
    "rebinds-hidden-test": (
        "import tlcourse.classroom.judging as _j\n"
        "_j.hidden_test = lambda *a, **k: None\n"
        "_j.to_data = lambda outputs: {}\n"
    ),
    "replaces-comparisons": (
        "import builtins, math, numpy, torch\n"
        "torch.allclose = lambda *a, **k: True\n"
        "torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)\n"
        "math.isclose = lambda *a, **k: True\n"
        "numpy.allclose = numpy.isclose = lambda *a, **k: True\n"
        "builtins.abs = lambda x: 0.0\n"
    ),
    "swallows-errors": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n",
    # nbgrader reads a number shown as a graded cell's result as its score: show 3 after every later cell.
    "claims-partial-credit": (
        "get_ipython().events.register('post_run_cell', lambda *a: get_ipython().displayhook(3.0))\n"
    ),
    # Rewrites whatever probe file appears, from a thread, with the values of a correct answer it cannot know:
    # zeros here, the best a forger can do without the reference.
    "forges-probe-files": (
        "import os, threading, time, numpy\n"
        "def _forge():\n"
        "    folder = os.environ.get('TLCOURSE_PROBE_DIR', '/tmp')\n"
        "    while True:\n"
        "        for name in os.listdir(folder):\n"
        "            if name.endswith('.npz'):\n"
        "                try:\n"
        "                    keys = list(numpy.load(os.path.join(folder, name)).files)\n"
        "                    numpy.savez(os.path.join(folder, name), **{k: numpy.float64(0.0) for k in keys})\n"
        "                except Exception:\n"
        "                    pass\n"
        "        time.sleep(0.005)\n"
        "threading.Thread(target=_forge, daemon=True).start()\n"
    ),
}


def visible_only(source):
    """MMD computed on the first feature only: right on the visible tests' one-dimensional points, wrong in
    more dimensions, which only the hidden tests try."""
    nb = copy.deepcopy(source)
    cell = cell_of(nb, "mmd2_unbiased")
    cell.source = cell.source.replace("### BEGIN SOLUTION\n", "### BEGIN SOLUTION\n    x, y = x[:, :1], y[:, :1]\n")
    return nb


def reads_hidden_code(source):
    nb = changed(
        source,
        "mmd2_unbiased",
        before="_seen = []\nget_ipython().events.register('pre_run_cell', lambda info: _seen.append(info.raw_cell))\n",
    )
    nb.cells.append(nbformat.v4.new_code_cell("print('SEEN:', '\\n'.join(_seen))"))
    return nb


def reach_reference(how: str) -> tuple[str, str]:
    """Attack 3: solution cells (MMD, proxy A-distance) that take the reference instead of computing."""
    if how == "code-object":
        template = (
            "import types\nfrom tlcourse.library import metrics as _m\n"
            "{name} = types.FunctionType(_m.{name}.__code__, _m.__dict__, '{name}', _m.{name}.__defaults__)\n"
        )
    elif how == "module-file":
        template = (
            "import inspect\nfrom tlcourse.library import metrics as _m\n_ns = {{'__name__': 'copy'}}\n"
            "exec(open(inspect.getfile(_m)).read(), _ns)\n{name} = _ns['{name}']\n"
        )
    else:  # the instructor's full library, by its path on the grader's machine
        template = (
            "import importlib.util\n"
            f"_spec = importlib.util.spec_from_file_location('_ref', {str(REPO / 'tlcourse/library/metrics.py')!r})\n"
            "_ref = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_ref)\n{name} = _ref.{name}\n"
        )
    return template.format(name="mmd2_unbiased"), template.format(name="proxy_a_distance")


def reads_instructor_files(root: Path) -> str:
    """Attack 4: read the source notebooks and the gradebook by path, and search the disk for solutions."""
    paths = [root / "notebooks" / CHAPTER / NOTEBOOK, SOURCE, root / "gradebook.db", root / "submitted", REPO]
    return (
        "import json, os, time\n"
        f"_paths = {[str(p) for p in paths]!r}\n"
        "READABLE = [p for p in _paths if os.access(p, os.R_OK)]\n"
        "for _p in READABLE:\n"
        "    if _p.endswith('.ipynb'):\n"
        "        for _c in json.load(open(_p))['cells']:\n"
        "            if _c['metadata'].get('nbgrader', {}).get('solution'):\n"
        "                exec(''.join(_c['source']), globals())\n"
        "FOUND, _start = [], time.monotonic()\n"
        "for _dir, _subdirs, _files in os.walk('/'):\n"
        "    _subdirs[:] = [d for d in _subdirs if os.path.join(_dir, d) not in ('/proc', '/sys', '/dev')]\n"
        "    if time.monotonic() - _start > 30:\n"
        "        FOUND.append('(search cut at 30 s)')\n"
        "        break\n"
        "    for _f in _files:\n"
        "        if _f.endswith('.ipynb') or _f == 'metrics.py':\n"
        "            try:\n"
        "                _text = open(os.path.join(_dir, _f), errors='replace').read()\n"
        "            except OSError:\n"
        "                continue\n"
        "            if 'mmd2_unbiased' in _text and ('BEGIN SOLUTION' in _text or 'k_xx.diagonal' in _text):\n"
        "                FOUND.append(os.path.join(_dir, _f))\n"
        f"HOLDS = sorted(os.listdir({str(REPO)!r})) if os.path.isdir({str(REPO)!r}) else []\n"
        "print('READABLE:', READABLE, 'FOUND:', FOUND)\n"
        "print('THE REPOSITORY HOLDS:', HOLDS)\n"
    )


def writes_for_the_next(root: Path) -> tuple[str, list[Path]]:
    """Attack 5: patch the installed course, the environment and the course folder for whoever comes next."""
    import site

    import tlcourse.classroom.grading as grading
    import tlcourse.classroom.judging as judging
    import tlcourse.library.metrics as metrics

    site_packages = Path(site.getsitepackages()[0])
    host_targets = [
        Path(grading.__file__),
        Path(judging.__file__),
        Path(metrics.__file__),
        site_packages / "sitecustomize.py",
        site_packages / "zz-writer.pth",
        root / "submitted" / "z-next" / CHAPTER / NOTEBOOK,
        root / "notebooks" / CHAPTER / NOTEBOOK,
        root / "release" / "student-edition" / "tlcourse" / "classroom" / "grading.py",
        Path("/tmp/writer"),
    ]
    code = (
        "import os, tlcourse.classroom.grading as _g, tlcourse.classroom.judging as _j\n"
        "import tlcourse.library.metrics as _m\n"
        f"_targets = [_g.__file__, _j.__file__, _m.__file__, *{[str(p) for p in host_targets]!r},\n"
        "            os.path.expanduser('~/.ipython/profile_default/startup/00-writer.py')]\n"
        f"_patch = '\\n# {MARK}\\nimport torch, math\\ntorch.allclose = math.isclose = lambda *a, **k: True\\n'\n"
        "WRITTEN = []\n"
        "for _t in _targets:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(_t), exist_ok=True)\n"
        "        with open(_t, 'a') as _f:\n"
        "            _f.write(_patch if not _t.endswith('.pth') else '\\nimport builtins; builtins.WRITER = 1\\n')\n"
        "        WRITTEN.append(_t)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('WRITTEN:', WRITTEN)\n"
    )
    return code, host_targets


def reached(paths: list[Path]) -> list[Path]:
    """The files of ``paths`` on this machine that hold the writer's text."""
    return [p for p in paths if p.is_file() and (MARK in (t := p.read_text(errors="replace")) or "WRITER" in t)]


def undo_writes(paths: list[Path]) -> None:
    """Should the sandbox ever fail, take the writer's text out of every file it reached on this machine."""
    for path in reached(paths):
        text = path.read_text(errors="replace")
        kept = text[: text.index(f"\n# {MARK}")] if f"\n# {MARK}" in text else ""
        if kept:
            path.write_text(kept)
        else:
            path.unlink()


def grade(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tlcourse", "grade", *args, "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env)


def score_of(root: Path, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return gb.find_submission(CHAPTER, student).score


def outputs_of(root: Path, student: str) -> str:
    nb = nbformat.read(root / "autograded" / student / CHAPTER / NOTEBOOK, as_version=4)
    return "\n".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The light chapter released, the hostile class collected and autograded (two at a time), feedback."""
    if sandbox.bwrap_path() is None:
        pytest.skip("needs bubblewrap (apt-get install bubblewrap)")
    root = tmp_path_factory.mktemp("course")
    source = light_chapter()
    (root / "notebooks" / CHAPTER).mkdir(parents=True)
    nbformat.write(source, root / "notebooks" / CHAPTER / NOTEBOOK)
    steps = {"release": grade(root, "release")}
    assert (root / "release" / "student-edition" / "tlcourse").is_dir(), (
        steps["release"].stdout + steps["release"].stderr
    )
    untouched = nbformat.read(root / "release" / CHAPTER / NOTEBOOK, as_version=4)
    half = changed(source, "mmd2_unbiased", body=WRONG_MMD)
    writer_code, host_targets = writes_for_the_next(root)
    # student -> (notebook, the most it may score)
    class_ = {
        "solved": (source, 6),
        "half": (half, 3),
        "untouched": (untouched, 0),
        **{name: (changed(half, "mmd2_unbiased", before=code), 3) for name, code in ON_HALF.items()},
        # Both solution cells left to what the files would give: 6/6 if any source notebook could be read.
        "reads-instructor-files": (
            changed(
                changed(untouched, "mmd2_unbiased", source=reads_instructor_files(root)),
                "proxy_a_distance",
                source="pass",
            ),
            0,
        ),
        # Right on the visible tests' one-dimensional points, wrong in more dimensions: only the judge sees it.
        "visible-only": (visible_only(source), 3),
        "a-writer": (changed(half, "mmd2_unbiased", before=writer_code), 3),
        # Records the source of every cell its kernel runs, and shows it in a cell of its own at the end.
        "reads-hidden-code": (reads_hidden_code(source), 6),
        "memory-mmap": (
            changed(
                source,
                "mmd2_unbiased",
                before="import mmap\n_big = mmap.mmap(-1, 3 * 1024**3, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)\n"
                "for _i in range(0, len(_big), 4096):\n    _big[_i] = 1\n",
            ),
            3,
        ),
        "memory-tmpfs": (
            changed(
                source,
                "mmd2_unbiased",
                before="with open('/tmp/big', 'wb') as _f:\n"
                "    for _ in range(48):\n        _f.write(b'x' * 64 * 2**20)\n",
            ),
            3,
        ),
    }
    for how in ("code-object", "module-file", "instructor-path"):
        mmd, pad = reach_reference(how)
        nb = changed(untouched, "mmd2_unbiased", source=mmd)
        class_[f"reference-by-{how}"] = (changed(nb, "proxy_a_distance", source=pad), 0)
    inbox = tmp_path_factory.mktemp("inbox")
    for student, (nb, _) in class_.items():
        (inbox / student).mkdir()
        nbformat.write(nb, inbox / student / NOTEBOOK)
    (inbox / "z-next").mkdir()  # graded after everyone else: must not profit from the writer
    nbformat.write(half, inbox / "z-next" / NOTEBOOK)
    steps["collect"] = grade(root, "collect", str(inbox))
    check = subprocess.run([sandbox.bwrap_path(), "--ro-bind", "/", "/", "true"], capture_output=True, timeout=60)
    assert check.returncode == 0, f"bubblewrap does not start here: {check.stderr!r}"
    everyone_else = [s for s in class_ if s != "z-next"]
    steps["autograde"] = grade(
        root, "autograde", "--jobs", "2", "--memory-mib", "2048", "--cell-timeout", "120", "--students", *everyone_else
    )
    steps["autograde-next"] = grade(root, "autograde", "--students", "z-next")
    steps["feedback"] = grade(root, "feedback")
    leaked = reached(host_targets)
    undo_writes(host_targets)  # nothing to undo when the sandbox held; `leaked` says whether it did
    return root, steps, {s: limit for s, (_, limit) in class_.items()} | {"z-next": 3}, leaked


def test_every_step_succeeds(course):
    _, steps, _, _ = course
    for name, proc in steps.items():
        assert proc.returncode == 0, f"grade {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "bubblewrap sandbox" in steps["autograde"].stdout


def test_the_baselines(course):
    root, _, _, _ = course
    assert (score_of(root, "solved"), score_of(root, "half"), score_of(root, "untouched")) == (6, 3, 0)


@pytest.mark.parametrize("attack", sorted(ON_HALF))
def test_patching_helpers_and_comparisons_earns_nothing(course, attack):
    """Attacks 1 and 2: whatever the student's process patches, the judge runs in the grader."""
    root, _, limits, _ = course
    assert score_of(root, attack) <= limits[attack] == score_of(root, "half")


@pytest.mark.parametrize("how", ["code-object", "module-file", "instructor-path"])
def test_rebuilding_the_reference_earns_nothing(course, how):
    """Attack 3: the sandbox's tlcourse is the student edition; the instructor's is not there at all."""
    root, _, _, _ = course
    assert score_of(root, f"reference-by-{how}") == 0


def test_the_instructors_files_are_out_of_reach(course):
    """Attack 4: no source notebook, gradebook, submissions or repository, and no solution anywhere on disk."""
    root, _, _, _ = course
    assert score_of(root, "reads-instructor-files") == 0
    shown = outputs_of(root, "reads-instructor-files")
    # The environment is mounted (read-only) where it is: when it lives in the repository (make's .venv), the
    # repository's folder is there too, holding that and nothing else.
    venv = Path(sys.prefix).resolve()
    inside = venv.is_relative_to(REPO.resolve())
    readable = [str(REPO)] if inside else []
    assert f"READABLE: {readable!r} FOUND: []" in shown, shown
    assert f"THE REPOSITORY HOLDS: {[venv.relative_to(REPO.resolve()).parts[0]] if inside else []!r}" in shown, shown


def test_a_writer_changes_nothing_for_the_next_student(course):
    """Attack 5: every write lands in the writer's private, discarded folders, or fails."""
    root, _, _, leaked = course
    assert score_of(root, "a-writer") <= 3
    assert score_of(root, "z-next") == 3, "the next student's wrong MMD passed: the writer's patch reached it"
    assert leaked == [], f"the writer changed {leaked}"
    # Inside the sandbox, only its private /tmp and home took the writes. A path there may look like the host's:
    # a course or repository under the host's /tmp (CI's fresh clone) is, in the sandbox, in its private /tmp.
    # The mounts (the student edition, the environment) take no write, wherever they are.
    written = ast.literal_eval(outputs_of(root, "a-writer").split("WRITTEN:")[1].splitlines()[0].strip())
    mounted = ("/opt/tlcourse-student", str(Path(sys.prefix).resolve()), sys.prefix)
    assert not [w for w in written if w.startswith(mounted)], written
    host = (str(REPO), str(root))
    assert all(w.startswith("/tmp/") for w in written if w.startswith(host)), written


@pytest.mark.parametrize("student", ["memory-mmap", "memory-tmpfs"])
def test_memory_beyond_the_cap_costs_the_cell_not_the_grader(course, student):
    """3 GiB of shared memory, or of files in the private /tmp, under a 2 GiB cap: that cell dies, not the grading."""
    root, _, _, _ = course
    assert score_of(root, student) == 3  # the MMD exercise lost, the proxy A-distance one earned
    assert "The kernel died while this cell ran" in outputs_of(root, student)


def test_feedback_shows_no_hidden_code(course):
    root, _, limits, _ = course
    for student in limits:
        html = (root / "feedback" / student / CHAPTER / NOTEBOOK.replace(".ipynb", ".html")).read_text()
        for secret in ("mmd_hidden_inputs", "pad_judge", "manual_seed(1234)", "BEGIN HIDDEN TESTS", "hidden_test("):
            assert secret not in html, f"{student}'s feedback shows {secret!r}"
    html = (root / "feedback" / "visible-only" / CHAPTER / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "A test of this cell failed. AssertionError: mmd2_unbiased (m=5, n=7, d=3" in html


def test_the_kernel_never_gets_the_judges(course):
    """What the kernel runs of a hidden region is the probe (its inputs are the student's to see); the judge,
    with the expected values and tolerances, stays in the grader. The feedback shows none of the region."""
    root, _, limits, _ = course
    assert score_of(root, "reads-hidden-code") == limits["reads-hidden-code"]
    seen = outputs_of(root, "reads-hidden-code").split("SEEN:", 1)[1]
    assert "def mmd_probe" in seen and "def mmd_judge(got):  # the grader judges" in seen, seen[:3000]
    for judged in ("rel_tol=1e-4", "Runs in the grader", "metrics.mmd2_unbiased(xs, ys, bandwidth=sigma)"):
        assert judged not in seen, f"the kernel saw the judge's {judged!r}"
        html = (root / "feedback" / "reads-hidden-code" / CHAPTER / NOTEBOOK.replace(".ipynb", ".html")).read_text()
        assert judged not in html, f"the feedback shows the judge's {judged!r}"


def test_visible_tests_alone_earn_nothing(course):
    """Visible tests passed in the student's process; the judge in the grader failed the cell."""
    root, _, _, _ = course
    assert score_of(root, "visible-only") == 3


@needs_bwrap
def test_a_submission_has_a_time_cap(tmp_path):
    """Two cells of 15 s each, each within the 20 s cap of a cell, but not both within the 30 s cap of the
    submission (which counts from the kernel's start): the second is cut when the submission's time is up;
    the first, done by 15 s plus the kernel's start and the imports (under 15 s even on a busy machine),
    keeps its points."""
    root = tmp_path
    source = light_chapter()
    (root / "notebooks" / CHAPTER).mkdir(parents=True)
    nbformat.write(source, root / "notebooks" / CHAPTER / NOTEBOOK)
    assert grade(root, "release").returncode == 0
    slow = changed(source, "mmd2_unbiased", before="import time\ntime.sleep(15)\n")
    slow = changed(slow, "proxy_a_distance", before="import time\ntime.sleep(15)\n")
    (tmp_path / "inbox" / "slow").mkdir(parents=True)
    nbformat.write(slow, tmp_path / "inbox" / "slow" / NOTEBOOK)
    assert grade(root, "collect", str(tmp_path / "inbox")).returncode == 0
    proc = grade(root, "autograde", "--submission-timeout", "30", "--cell-timeout", "20")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seconds = float(re.search(r"slow: [\d.]+/6 in ([\d.]+) s", proc.stdout).group(1))
    assert score_of(root, "slow") == 3, proc.stdout[-2000:]
    assert seconds < 30 + 15, f"the submission ran {seconds:.0f} s under a cap of 30 s"
    assert "The submission used up its time limit" in outputs_of(root, "slow")


def test_a_shown_number_is_no_partial_credit(course):
    """The attack did show 3.0 in the graded cells (nbgrader would have read it as their score): as a plain
    display, it earned nothing."""
    root, _, _, _ = course
    nb = nbformat.read(root / "autograded" / "claims-partial-credit" / CHAPTER / NOTEBOOK, as_version=4)
    shown = [o for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") for o in c.outputs]
    assert any(o.output_type == "display_data" and o.data.get("text/plain") == "3.0" for o in shown)
    assert not any(o.output_type == "execute_result" for o in shown)
    assert score_of(root, "claims-partial-credit") <= score_of(root, "half")


TOY_TEST = """\
assert square(3) == 9
print("visible tests passed")
### BEGIN HIDDEN TESTS
from tlcourse.classroom.judging import hidden_test


def square_probe():
    return {"x": [square(x) for x in (-2.0, 0.5, 7.0)]}


def square_judge(got):
    assert got["x"].tolist() == [4.0, 0.25, 49.0], "square of other numbers"


checked = hidden_test("test_square", square_probe, square_judge)
### END HIDDEN TESTS"""


def test_without_bubblewrap_the_judge_still_decides(tmp_path):
    """Where bubblewrap is missing, the grader says so and the kernel runs as its own user (a harmless
    submission here), but the split holds: the probe runs in the student's kernel, the judge in the grader.
    A solution right only on the visible test's point passes it in its kernel and still earns nothing."""
    env = {**os.environ, "TLCOURSE_NO_BWRAP": "1"}
    metadata = {"schema_version": 3, "locked": False, "solution": True, "grade": False, "task": False}
    toy = nbformat.v4.new_notebook()
    toy.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    toy.cells = [
        nbformat.v4.new_code_cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            metadata={"nbgrader": {**metadata, "grade_id": "square"}},
        ),
        nbformat.v4.new_code_cell(
            TOY_TEST,
            metadata={"nbgrader": {**metadata, "solution": False, "locked": True, "grade": True, "points": 2}},
        ),
    ]
    toy.cells[1].metadata.nbgrader["grade_id"] = "test_square"
    (tmp_path / "notebooks" / "00-toy").mkdir(parents=True)
    nbformat.write(toy, tmp_path / "notebooks" / "00-toy" / "toy.ipynb")
    assert grade(tmp_path, "release", env=env).returncode == 0
    visible_only_ = copy.deepcopy(toy)
    visible_only_.cells[0].source = "def square(x):\n    return 9"
    for student, nb in {"solved": toy, "visible-only": visible_only_}.items():
        (tmp_path / "inbox" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "inbox" / student / "toy.ipynb")
    assert grade(tmp_path, "collect", str(tmp_path / "inbox"), env=env).returncode == 0
    proc = grade(tmp_path, "autograde", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NO SANDBOX" in proc.stdout
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        scores = {student: gb.find_submission("00-toy", student).score for student in ("solved", "visible-only")}
    assert scores == {"solved": 2, "visible-only": 0}
    nb = nbformat.read(tmp_path / "autograded" / "visible-only" / "00-toy" / "toy.ipynb", as_version=4)
    assert "visible tests passed" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
