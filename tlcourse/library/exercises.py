"""What a graded exercise's reference becomes in the student edition: a call to the learner's own solution.

The student edition (``python -m tlcourse grade release``, `tlcourse.classroom.edition`) replaces the body
of each graded exercise's reference in the library with a call to `learner_solution`. The library code
that uses the reference (a chapter's experiment, a method class) then runs the function of that name that
the learner wrote in the notebook, once its cell has run; before that, and in any other notebook, it
raises a `NotImplementedError` that names the exercise and its notebook. The full library never calls this
module: there the references are the course's own code.
"""

from __future__ import annotations

import ast
import inspect
import json
import reprlib
import sys
import threading
from pathlib import Path
from typing import Any

_MISSING = object()
_SAVED: dict[tuple[str, str, float], Any] = {}  # (notebook, name, its mtime) -> the function defined there
_CALLING = threading.local()  # .names: the exercises whose learner's function is running in this thread


def _is_default(value: Any, default: Any) -> bool:
    if default is _MISSING:
        return False
    try:
        return bool(value is default or value == default)
    except Exception:  # a tensor, say: compared with a literal default it is not the default
        return False


def learner_function(name: str) -> Any:
    """The object the notebook defined as ``name`` (dotted for a class's method), or None.

    A notebook's names live in ``__main__`` (IPython's user namespace). Anything of tlcourse's own, such
    as the stub itself imported under the exercise's name, does not count.
    """
    found: Any = sys.modules.get("__main__")
    for part in name.split("."):
        found = inspect.getattr_static(found, part, None) if found is not None else None
        if isinstance(found, staticmethod | classmethod):
            found = found.__func__
    if found is None or str(getattr(found, "__module__", "") or "").startswith("tlcourse"):
        return None
    return found if callable(found) else None


def _saved_notebook(exercise: str) -> Path | None:
    """The learner's copy of the exercise's notebook ("exercise N of notebooks/<chapter>/<name>.ipynb"),
    looked for from the working folder (a kernel runs in its notebook's folder) and the folders above it."""
    relative = exercise.partition(" of ")[2]
    if not relative.endswith(".ipynb"):
        return None
    here = Path.cwd()
    for base in (here, *here.parents):
        if (base / relative).is_file():
            return base / relative
    return None


def _code(source: str) -> str:
    """A cell's Python, without IPython's ``%`` and ``!`` lines."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def saved_solution(name: str, exercise: str) -> Any:
    """The learner's ``name`` from their saved notebook of ``exercise``, for a notebook of another chapter.

    The cell that defines ``name`` runs in a namespace of its own, after the imports of the cells above it
    (nothing else of that notebook runs). None when the notebook or the definition is not found.
    """
    path = _saved_notebook(exercise)
    if path is None or path.parent.resolve() == Path.cwd().resolve():  # the running notebook's own: not saved
        return None
    top = name.split(".")[0]
    key = (str(path), name, path.stat().st_mtime)
    if key not in _SAVED:
        try:
            cells = [c for c in json.loads(path.read_text()).get("cells", []) if c.get("cell_type") == "code"]
        except (OSError, ValueError):
            return None
        imports: list[str] = []
        found = None
        for cell in cells:
            source = "".join(cell.get("source", []))
            try:
                tree = ast.parse(_code(source))
            except SyntaxError:
                continue
            if any(isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == top for n in tree.body):
                found = _code(source)
                break
            imports += [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        if found is None:
            return None
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(compile("\n".join([*imports, found]), str(path), "exec"), namespace)  # the learner's own code
        _SAVED[key] = namespace
        print(f"tlcourse: {name} is your solution of {exercise}, as saved", file=sys.stderr)
    found = _SAVED[key]
    for part in name.split("."):
        found = inspect.getattr_static(found, part, None) if not isinstance(found, dict) else found.get(part)
        if isinstance(found, staticmethod | classmethod):
            found = found.__func__
    return found if callable(found) else None


def learner_solution(
    name: str, exercise: str, arguments: dict[str, Any], defaults: dict[str, Any] | None = None
) -> Any:
    """Call the learner's ``name`` with the reference's ``arguments`` (its parameters, by name).

    An argument the learner's function does not take is left out when it has the reference's default
    (``defaults``: a reference may have options the exercise does not ask for); a call that sets such an
    option raises, rather than quietly doing something else. When the learner renamed the parameters,
    they are passed by position.

    Raises:
        NotImplementedError: no cell of the running notebook defines ``name`` yet; the message names
            the exercise (``exercise``: "exercise N of notebooks/<chapter>/<notebook>.ipynb"). Also when
            the learner's ``name`` calls the library's ``name`` (here, the stub that called it): at once,
            rather than after a thousand nested calls and a RecursionError.
    """
    calling: set[str] = _CALLING.__dict__.setdefault("names", set())
    if name in calling:  # the learner's function called the library's, which would call the learner's again
        raise NotImplementedError(
            f"your {name} ({exercise}) calls the library's {name}, which in the student edition calls yours: "
            f"write {name} without the library's."
        )
    function = learner_function(name)
    saved = function is None and (function := saved_solution(name, exercise)) is not None
    if function is None:
        raise NotImplementedError(
            f"{name} is {exercise}: solve it there. The student edition of tlcourse has no reference "
            f"answer; once your {name} is defined in the notebook that runs (or saved in that notebook, "
            "for another chapter's), the library uses yours."
        )
    calling.add(name)
    try:
        return _call(function, name, exercise, arguments, defaults)
    except NotImplementedError as error:
        if saved and not str(error):  # the released stub, unchanged: nbgrader's `raise NotImplementedError()`
            raise NotImplementedError(
                f"{name} is {exercise}: your saved notebook still has its stub; solve it there and save it."
            ) from None
        raise
    finally:
        calling.discard(name)


def _call(function: Any, name: str, exercise: str, arguments: dict[str, Any], defaults: dict[str, Any] | None) -> Any:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return function(*arguments.values())
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return function(**arguments)
    named = {key: value for key, value in arguments.items() if key in parameters}
    renamed = not all(
        p.name in named for p in parameters.values() if p.default is p.empty and p.kind is not p.VAR_POSITIONAL
    )
    for key, value in arguments.items():
        if not renamed and key not in parameters and not _is_default(value, (defaults or {}).get(key, _MISSING)):
            raise NotImplementedError(
                f"this call of {name} sets {key}={reprlib.repr(value)}, an option of the full course's reference "
                f"that your {name} ({exercise}) does not take; the cells that need it run with the full course."
            )
    if not renamed:
        return function(**named)
    positional = [p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return function(*list(arguments.values())[: len(positional)])


def withheld(name: str, exercise: str) -> NotImplementedError:
    """The error a withheld helper raises: ``name`` holds (part of) the answer to ``exercise``."""
    return NotImplementedError(
        f"{name} holds the answer to {exercise}, so the student edition of tlcourse leaves it out: solve the "
        "exercise there; the cells that need this part of the library run with the full course."
    )
