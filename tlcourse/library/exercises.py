"""What a graded exercise's reference becomes in the student edition: a call to the learner's own solution.

The student edition (``python -m tlcourse grade release``, `tlcourse.classroom.edition`) replaces the body
of each graded exercise's reference in the library with a call to `learner_solution`. The library code
that uses the reference (a chapter's experiment, a method class) then runs the function of that name that
the learner wrote in the notebook, once its cell has run; before that, and in any other notebook, it
raises a `NotImplementedError` that names the exercise and its notebook. The full library never calls this
module: there the references are the course's own code.
"""

from __future__ import annotations

import inspect
import reprlib
import sys
from typing import Any

_MISSING = object()


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
            the exercise (``exercise``: "exercise N of notebooks/<chapter>/<notebook>.ipynb").
    """
    function = learner_function(name)
    if function is None:
        raise NotImplementedError(
            f"{name} is {exercise}: solve it there. The student edition of tlcourse has no reference "
            f"answer; once your {name} is defined in the notebook that runs, the library uses yours."
        )
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
