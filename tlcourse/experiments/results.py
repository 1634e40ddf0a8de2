"""What an experiment returns (`ExperimentResult`) and how its table prints (`format_table`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path


@dataclass
class ExperimentResult:
    """The numbers an experiment produced.

    Attributes:
        experiment: the registry name, e.g. ``"domain-shift"``.
        seed: the seed it ran with.
        results: ``{name: value}``; accuracies are fractions in [0, 1].
        seconds: wall time of the run.
        table: rows for the printed table: ``[(row name, {column: value})]``.
        details: anything else a notebook may want to show (models, features, histories); never saved.
    """

    experiment: str
    seed: int
    results: dict[str, float]
    seconds: float
    table: list[tuple[str, dict[str, float | str]]] = field(default_factory=list)
    details: dict = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "seed": self.seed, "results": self.results, "seconds": self.seconds}

    def save(self, path: str | Path) -> None:
        """Write the JSON summary, atomically: a reader never sees half a file, and a failed write leaves no
        partial file behind. A path that cannot be written (`check_writable_file`) is a ValueError."""
        # Imported here: the data package imports torch, and the results and expected ranges load without it.
        from tlcourse.library.data.store.writable import check_writable_file

        path = check_writable_file(path, "--json", example=f"{self.experiment}-{self.seed}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        # A fresh temporary name: a file of the user's called <path>.tmp is never overwritten.
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tlcourse-", suffix=".json.part")
        os.close(handle)
        tmp = Path(tmp_name)
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def format_table(self) -> str:
        """The chapter's table as aligned text (`format_table`); its rows already hold percentages."""
        return format_table(self.table, title=f"{self.experiment} (seed {self.seed}, {self.seconds:.0f} s)")


def _decimals(value: float, low: int, high: int) -> int:
    """The fewest decimals in ``[low, high]`` that show ``value`` whole (float32 noise aside)."""
    for d in range(low, high):
        if abs(value - round(value, d)) <= 1e-6 * max(1.0, abs(value)):
            return d
    return high


def _column_format(values: list[float | str]) -> Callable[[float | str], str]:
    """One number format for a whole column, so that its digits line up and read alike.

    Integers (parameter counts, sizes) get thousands separators. Other numbers get as many decimals as
    the column's most precise value needs, at least 1 and at most 2 from 10 up (percentages), 3 from
    1 up, else 4. Strings print as they are.
    """
    numbers = [v for v in values if not isinstance(v, str)]
    if numbers and all(isinstance(v, Integral) and not isinstance(v, bool) for v in numbers):
        return lambda v: v if isinstance(v, str) else f"{v:,}"
    largest = max((abs(float(v)) for v in numbers), default=0.0)
    high = 2 if largest >= 10 else 3 if largest >= 1 else 4
    decimals = max((_decimals(float(v), 1, high) for v in numbers), default=1)
    return lambda v: v if isinstance(v, str) else f"{float(v):.{decimals}f}"


def format_table(rows: list[tuple[str, dict[str, float | str]]], title: str = "") -> str:
    """Aligned plain-text table: one line per row name, one column per key of the row dicts.

    Each column's numbers share one format (`_column_format`): ``43.00`` above ``13.55``, never ``43``
    above ``13.55``; a missing cell is left blank.
    """
    columns = list(dict.fromkeys(k for _, row in rows for k in row))
    formats = {c: _column_format([row[c] for _, row in rows if c in row]) for c in columns}
    header = ["", *columns]
    body = [[name, *(formats[c](row[c]) if c in row else "" for c in columns)] for name, row in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)
