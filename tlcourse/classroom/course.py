"""Run the course headless: execute every chapter notebook and print each chapter's results table.

A notebook marks the cell that prints its results table with the cell tag ``results``; that cell's
printed text is what the course run shows at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

RESULTS_TAG = "results"


def chapter_notebooks(notebooks: Path, chapters: list[str] | None = None) -> list[Path]:
    """The chapter notebooks, ``notebooks/<chapter>/<name>.ipynb``, in chapter order."""
    if not notebooks.is_dir():
        raise FileNotFoundError(f"No notebooks folder at {notebooks.resolve()}; run this from the repository root.")
    found = sorted(p for p in notebooks.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if chapters:
        unknown = set(chapters) - {p.parent.name for p in found}
        if unknown:
            raise ValueError(
                f"Unknown chapters {sorted(unknown)}; available: {sorted({p.parent.name for p in found})}."
            )
        found = [p for p in found if p.parent.name in chapters]
    return found


def results_text(nb: nbformat.NotebookNode) -> str:
    """The printed text of the cells tagged ``results``."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and RESULTS_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stdout":
                    parts.append(out.get("text", ""))
    return "".join(parts).rstrip()


def execute_notebook(path: Path, output: Path, timeout: int = 900) -> tuple[nbformat.NotebookNode, float]:
    """Execute ``path`` in its own folder; the executed copy is written to ``output`` even on failure."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
    return nb, time.perf_counter() - start


def run_course(notebooks: Path, output: Path, chapters: list[str] | None = None, timeout: int = 900) -> int:
    """Execute the chapter notebooks; print where the executed copies are and each results table."""
    paths = chapter_notebooks(notebooks, chapters)
    if not paths:
        print(f"No chapter notebooks found under {notebooks}.", file=sys.stderr)
        return 1
    failures = 0
    summary = []
    for path in paths:
        target = output / path.parent.name / path.name
        print(f"running {path} ...", flush=True)
        try:
            nb, seconds = execute_notebook(path, target, timeout)
        except (CellExecutionError, CellTimeoutError) as error:
            failures += 1
            print(f"FAILED {path}: the executed copy with the error is {target}\n{error}", file=sys.stderr)
            continue
        summary.append((path.parent.name, target, seconds, results_text(nb)))
        print(f"  done in {seconds:.0f} s -> {target}", flush=True)
    print()
    for chapter, target, seconds, text in summary:
        print(f"== {chapter} ({seconds:.0f} s): {target}")
        print(text or "(this notebook has no cell tagged 'results')")
        print()
    print(f"{len(summary)} notebook(s) ran, {failures} failed. Open the course with: .venv/bin/jupyter lab")
    return 1 if failures else 0
