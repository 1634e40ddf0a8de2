"""Helpers that the notebooks' test cells call: number and tensor checks with messages for a learner.

The visible tests run them in the student's kernel, where the student can change them: they teach, and
decide nothing on their own. Hidden tests are judged in the grader (`tlcourse.classroom.judging`).
`reference_blocked` switches reference functions off while a probe runs: a courtesy for a course graded
without its student edition (whose `tlcourse` has no references at all), not a defence.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch


def _blocked(*args: Any, **kwargs: Any) -> Any:
    # This code object replaces the reference's own while it is blocked. It runs with the reference
    # module's globals, so it may use builtins only.
    raise RuntimeError(
        "tlcourse's reference implementation is switched off while this exercise is graded: "
        "write the computation yourself instead of calling tlcourse."
    )


@contextmanager
def reference_blocked(*functions: Callable[..., Any]) -> Iterator[None]:
    """Inside the block, calling any of ``functions`` raises, under whatever name it was imported.

    The function objects themselves are changed (their code is swapped), so ``from tlcourse.library.metrics
    import mmd2_unbiased as helper`` done earlier is blocked too. Everything is restored on exit.
    """
    originals = []
    for function in functions:
        inner = inspect.unwrap(function)
        if getattr(inner, "__closure__", None):
            raise TypeError(f"cannot block {inner.__qualname__}: it is a closure")
        originals.append((inner, inner.__code__))
    try:
        for inner, _ in originals:
            inner.__code__ = _blocked.__code__
        yield
    finally:
        for inner, code in originals:
            inner.__code__ = code


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64)
    return torch.as_tensor(value, dtype=torch.float64)


def assert_matches_reference(
    student: Callable[..., Any],
    reference: Callable[..., Any],
    *args: Any,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    name: str | None = None,
    **kwargs: Any,
) -> None:
    """Assert that ``student(*args, **kwargs)`` equals the reference's answer on the same inputs.

    The student's function runs while the reference is blocked, so calling it earns nothing.
    """
    name = name or getattr(reference, "__name__", "the function")
    expected = _as_tensor(reference(*args, **kwargs))
    with reference_blocked(reference):
        got = student(*args, **kwargs)
    if got is None:
        raise AssertionError(f"{name} returned None: did you forget `return`?")
    got_t = _as_tensor(got)
    if got_t.shape != expected.shape:
        raise AssertionError(f"{name} returned shape {tuple(got_t.shape)}, expected {tuple(expected.shape)}.")
    if not torch.allclose(got_t, expected, atol=atol, rtol=rtol):
        raise AssertionError(f"{name} returned {got_t.tolist()}, expected {expected.tolist()} (within {atol}).")


def _known_mistakes(matches: Callable[[Any], bool], mistakes: Mapping[str, Any] | None) -> str:
    """The hints of ``mistakes`` (hint -> the value that mistake gives) whose value ``matches``, as a suffix."""
    return "".join(f" {hint}" for hint, wrong in (mistakes or {}).items() if matches(wrong))


def assert_close(
    value: float, expected: float, *, atol: float, what: str, mistakes: Mapping[str, float] | None = None
) -> None:
    """A number check with a message that says what was expected and what came out.

    ``mistakes`` maps a hint to the value that a common mistake gives on the same input (worked out by
    hand, like ``expected``): when the value is off and matches one of them, the message adds its hint.
    """
    if value is None or not math.isfinite(float(value)):
        raise AssertionError(f"{what}: got {value!r}, expected a finite number close to {expected:.4f}.")
    if abs(float(value) - expected) > atol:
        hints = _known_mistakes(lambda wrong: abs(float(value) - wrong) <= atol, mistakes)
        raise AssertionError(f"{what}: got {float(value):.4f}, expected {expected:.4f} (within {atol}).{hints}")


def assert_tensor_close(
    value: torch.Tensor, expected: Any, *, atol: float, what: str, mistakes: Mapping[str, Any] | None = None
) -> None:
    """`assert_close` for a tensor: its shape must be ``expected``'s and every entry within ``atol``.

    ``mistakes`` maps a hint to the tensor (or nested list) that a common mistake gives on the same input.
    """
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what}: got {type(value).__name__}, expected a tensor.")
    got, want = _as_tensor(value), _as_tensor(expected)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: got shape {tuple(got.shape)}, expected {tuple(want.shape)}.")
    if not torch.allclose(got, want, atol=atol, rtol=0.0):
        hints = _known_mistakes(
            lambda wrong: (
                _as_tensor(wrong).shape == got.shape and torch.allclose(got, _as_tensor(wrong), atol=atol, rtol=0.0)
            ),
            mistakes,
        )
        raise AssertionError(f"{what}: got {got.tolist()}, expected {want.tolist()} (within {atol}).{hints}")
