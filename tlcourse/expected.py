"""Expected result ranges, read from ``expected.toml`` (one file, next to this module).

Each experiment's table in that file names the command and the seeds that measured its ranges, so a
range can always be traced back to real runs and regenerated.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

EXPECTED_FILE = Path(__file__).with_name("expected.toml")


@cache
def load_expected() -> dict:
    """The parsed expected file: ``{experiment: {"command", "seeds", "measured", "ranges", ...}}``."""
    with EXPECTED_FILE.open("rb") as f:
        return tomllib.load(f)


def expected_ranges() -> dict[str, dict[str, list[float]]]:
    """``{experiment: {result_name: [low, high]}}``, as ``python -m tlcourse expected --json`` prints it."""
    return {name: dict(entry.get("ranges", {})) for name, entry in load_expected().items()}


def expected_range(experiment: str, name: str) -> tuple[float, float]:
    """The ``(low, high)`` range of one result; a clear KeyError if it is not in the file."""
    ranges = expected_ranges()
    if experiment not in ranges:
        raise KeyError(f"No expected ranges for experiment {experiment!r}; known: {sorted(ranges)}.")
    if name not in ranges[experiment]:
        raise KeyError(f"No expected range for {experiment!r} result {name!r}; known: {sorted(ranges[experiment])}.")
    low, high = ranges[experiment][name]
    return float(low), float(high)


def check_result(experiment: str, name: str, value: float) -> float:
    """Return ``value`` if it lies in its expected range, else raise an AssertionError that says why.

    The message gives the range, where it came from, and what usually puts a number outside it.
    """
    low, high = expected_range(experiment, name)
    if not low <= value <= high:
        entry = load_expected()[experiment]
        raise AssertionError(
            f"{experiment}: {name} = {value:.4f} is outside its expected range [{low}, {high}] "
            f"(measured with `{entry.get('command', '?')}` over seeds {entry.get('seeds', '?')}). "
            "If you changed a budget (images, epochs, learning rate) or the code, run the chapter again with "
            "the defaults; if the number is still off, the implementation is likely wrong."
        )
    return value
