"""Hidden tests in two halves: a *probe* where the student's code runs, a *judge* in the trusted grader.

A graded cell's hidden region holds imports, function definitions (the hidden inputs, say) and one call::

    def mmd_probe():        # calls the student's functions on the hidden inputs
        return {"case 1": mmd2_unbiased(xs, ys, bandwidth=0.5), ...}

    def mmd_judge(got):     # `got`: what the probe returned, as numpy arrays; raises AssertionError
        assert_close(float(got["case 1"]), reference(xs, ys, bandwidth=0.5).item(), ...)

    checked = hidden_test("test_mmd2_unbiased", mmd_probe, mmd_judge)

The judge imports what it uses itself: in the grader, only the region's imports and definitions exist.

Run as a tutorial (nbval, a learner's own kernel), `hidden_test` runs both halves here. When the grader runs
the submission in its sandbox (``TLCOURSE_PROBE_DIR`` set), only the probe runs there: its outputs go, as
data (`to_data`: arrays, numbers and strings; never a pickle), to ``<grade_id>.npz`` in that folder. The
grader then reads the region from its own gradebook, runs ``judge`` in its own process (`judge_outputs`)
and fails the cell when it raises: nothing the student's code did in its own process reaches the verdict.
The kernel never gets the judge's code: the grader sends it the region `without_judge`.
"""

from __future__ import annotations

import ast
import io
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

PROBE_DIR_ENV = "TLCOURSE_PROBE_DIR"
MAX_PROBE_BYTES = 64 * 1024 * 1024  # a probe hands back small outputs; more is refused, unread
GRADE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def to_data(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``outputs`` flattened to ``{"key/sub/0": array}``: tensors, arrays, numbers, bools and strings only.

    Nested dicts, lists and tuples become path-like keys; anything else (a model, a function) is an error
    that names the key, so a probe never hands back an object.
    """
    flat: dict[str, np.ndarray] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                add(f"{key}/{k}" if key else str(k), v)
        elif isinstance(value, (list, tuple)) and not all(isinstance(v, (bool, int, float)) for v in value):
            for i, v in enumerate(value):
                add(f"{key}/{i}", v)
        elif value is None or isinstance(value, (bool, int, float, str, list, tuple, np.ndarray, np.generic)):
            flat[key] = np.asarray("None" if value is None else value)
        elif type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            flat[key] = value.detach().cpu().numpy().copy()
        else:
            raise TypeError(f"a probe hands back data only; {key!r} is a {type(value).__name__}")
        if key in flat and flat[key].dtype.kind == "O":
            raise TypeError(f"a probe hands back data only; {key!r} holds Python objects")

    add("", dict(outputs))
    return flat


def dumps(data: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    return buffer.getvalue()


def loads(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` blob; object arrays (pickles) are refused by numpy itself."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def hidden_test(
    grade_id: str,
    probe: Callable[[], Mapping[str, Any]],
    judge: Callable[[dict[str, np.ndarray]], None],
    blocked: Iterable[Callable[..., Any]] = (),
) -> dict[str, np.ndarray]:
    """Run a hidden test: here (tutorial), or only its probe, handing back data (grading sandbox).

    Returns what the probe handed back (a graded cell assigns it: ending in an expression, it would show
    a value that nbgrader takes for partial credit).

    ``blocked``: reference functions switched off while the probe runs (`reference_blocked`). That is
    a courtesy for a course graded without its student edition, not a defence: with the student edition,
    the references are not there at all.
    """
    from tlcourse.classroom.grading import reference_blocked

    with reference_blocked(*blocked):
        got = loads(dumps(to_data(probe())))  # the round trip the grader's copy takes
    folder = os.environ.get(PROBE_DIR_ENV)
    if folder:
        if not GRADE_ID.match(grade_id):
            raise ValueError(f"not a grade id: {grade_id!r}")
        target = Path(folder) / f"{grade_id}.npz"
        part = target.with_suffix(".part")
        part.write_bytes(dumps(got))
        part.replace(target)
        return got
    judge(got)
    return got


def compare(
    got: Mapping[str, np.ndarray], expected: Mapping[str, Any], *, atol: float, rtol: float = 1e-4, what: str
) -> None:
    """Assert that every entry of ``expected`` (the reference's outputs, any `to_data` value) came back in
    ``got`` (the probe's) with its shape and within ``atol + rtol * |expected|``; the message names the entry."""
    for key, want in to_data(expected).items():
        label = f"{what} ({key})" if key else what
        if key not in got:
            raise AssertionError(f"{label}: nothing came back for it")
        mine = np.asarray(got[key])
        if mine.dtype.kind not in "biuf" or want.dtype.kind not in "biuf":
            if mine.tolist() != want.tolist():
                raise AssertionError(f"{label}: got {mine.tolist()!r}, expected {want.tolist()!r}")
            continue
        if mine.shape != want.shape:
            raise AssertionError(f"{label}: got shape {mine.shape}, expected {want.shape}")
        if not np.allclose(mine.astype(np.float64), want.astype(np.float64), atol=atol, rtol=rtol):
            shown = {"threshold": 8, "precision": 6}
            raise AssertionError(
                f"{label}: got {np.array2string(mine, **shown)}, expected {np.array2string(want, **shown)} "
                f"(within {atol})"
            )


def _hidden_test_call(tree: ast.Module) -> ast.Call | None:
    for node in tree.body:
        if isinstance(node, (ast.Expr, ast.Assign)) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "hidden_test":
                return node.value
    return None


def _judge_name(tree: ast.Module) -> str | None:
    """The name of the judge a region's `hidden_test` call names (its third argument, or ``judge=``)."""
    call = _hidden_test_call(tree)
    if call is None:
        return None
    argument = call.args[2] if len(call.args) > 2 else next((k.value for k in call.keywords if k.arg == "judge"), None)
    return argument.id if isinstance(argument, ast.Name) else None


def without_judge(region: list[str]) -> list[str]:
    """The lines of a hidden region with its judge's definition replaced by one line that raises.

    What the grader sends the student's kernel: the probe runs there, and nothing there shows how its
    outputs are judged (the expected values, the tolerances); the grader runs the judge from its gradebook.
    """
    text = "\n".join(region)
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return region
    name = _judge_name(tree)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        return region
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    indent = region[node.lineno - 1][: len(region[node.lineno - 1]) - len(region[node.lineno - 1].lstrip())]
    stub = f"{indent}def {name}(got):  # the grader judges what the probe hands back\n{indent}    raise RuntimeError"
    return [*region[:first], *stub.split("\n"), *region[node.end_lineno :]]


def judge_of(region: str) -> Callable[[dict[str, np.ndarray]], None] | None:
    """The judge of a hidden region (the third argument of its `hidden_test` call), ready to run here.

    Only the region's imports and function and class definitions are executed, in a fresh namespace: the
    probe and anything else at top level are not run. ``region`` comes from the instructor's gradebook,
    never from a submission.
    """
    tree = ast.parse(textwrap.dedent(region))
    name = _judge_name(tree)
    if name is None:
        return None
    tree.body = [
        node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
    ]
    namespace: dict[str, Any] = {"__name__": "tlcourse_hidden_judge"}
    exec(compile(tree, "<hidden test judge>", "exec"), namespace)  # the instructor's own code, from the gradebook
    return namespace.get(name)


def judges(region: str) -> bool:
    """Whether a hidden region is in probe/judge form (it calls `hidden_test`)."""
    try:
        return _hidden_test_call(ast.parse(textwrap.dedent(region))) is not None
    except SyntaxError:
        return False


def read_probe(folder: Path, grade_id: str) -> dict[str, np.ndarray]:
    """What the sandbox handed back for ``grade_id``; AssertionError with a message when nothing usable came."""
    path = Path(folder) / f"{grade_id}.npz"
    if path.is_symlink() or not path.is_file():
        raise AssertionError("the hidden tests' probe handed back nothing (it did not run to its end)")
    if path.stat().st_size > MAX_PROBE_BYTES:
        raise AssertionError("the hidden tests' probe handed back too much data")
    try:
        with path.open("rb") as f:
            return loads(f.read(MAX_PROBE_BYTES + 1))
    except Exception as error:  # a corrupt or forged file: numpy raises many kinds
        raise AssertionError(f"the hidden tests' probe handed back unreadable data ({type(error).__name__})") from None


def judge_outputs(region: str, got: dict[str, np.ndarray]) -> str | None:
    """Run the region's ``judge`` on ``got`` in this process: None when it passes, else the failure message."""
    judge = judge_of(region)
    if judge is None:
        return "this hidden test has no judge (instructor: hidden_test(grade_id, probe, judge) names a function)"
    try:
        judge(got)
    except AssertionError as error:
        return f"AssertionError: {error}".rstrip(": ")
    except Exception as error:  # a missing key, a wrong shape or type in what the probe handed back
        return f"{type(error).__name__}: {error}"
    return None
