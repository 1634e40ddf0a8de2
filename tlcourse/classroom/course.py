"""Run the course headless: execute every chapter notebook and print each chapter's results table.

A notebook marks the cell that prints its results table with the cell tag ``results``; that cell's
printed text is what the course run shows at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

RESULTS_TAG = "results"
#: The benchmark's record (`tlcourse.classroom.benchmark`): each notebook's measured seconds.
RECORD = Path(__file__).with_name("benchmarks.toml")


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


def longest_first(paths: list[Path], record: Path = RECORD) -> list[Path]:
    """``paths`` in the order to start them: the notebook that took longest in its latest benchmark run first,
    so that no long notebook starts while the other worker is nearly done. A notebook with no record counts
    as the longest (started late, an unknown long one would finish last); ties keep chapter order."""
    latest: dict[str, float] = {}
    if record.exists():
        for run in tomllib.loads(record.read_text()).get("run", []):  # oldest first: later runs overwrite
            for item, seconds in run.get("seconds", {}).items():
                if item.startswith("notebook "):
                    latest[item.removeprefix("notebook ")] = float(seconds)
    return sorted(paths, key=lambda p: -latest.get(p.parent.name, float("inf")))


def default_jobs() -> int:
    """Notebooks run side by side by default: one per two cores' worth of the machine, at most 2.

    Two notebooks at one torch thread each finish sooner than one after the other at two threads: the
    course's small networks leave much of a second thread idle (measured in README's table).
    """
    return max(1, min(2, os.cpu_count() or 1))


def _execute_in_worker(path: Path, target: Path, timeout: int, threads: int) -> tuple[str, float, str]:
    """A pool worker: run one notebook with ``threads`` torch threads in its kernel (inherited through the
    environment); returns (results text, seconds, error or "")."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        nb, seconds = execute_notebook(path, target, timeout)
    except (CellExecutionError, CellTimeoutError) as error:
        return "", 0.0, str(error)
    return results_text(nb), seconds, ""


def run_course(
    notebooks: Path, output: Path, chapters: list[str] | None = None, timeout: int = 900, jobs: int | None = None
) -> int:
    """Execute the chapter notebooks, ``jobs`` at a time (default `default_jobs`, the longest first), each
    kernel with its share of the cores; print where the executed copies are and each results table, in
    chapter order."""
    paths = chapter_notebooks(notebooks, chapters)
    if not paths:
        print(f"No chapter notebooks found under {notebooks}.", file=sys.stderr)
        return 1
    jobs = max(1, min(jobs or default_jobs(), len(paths)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    targets = {path: output / path.parent.name / path.name for path in paths}
    print(f"running {len(paths)} notebooks, {jobs} at a time ({threads} torch thread(s) each) ...", flush=True)
    results: dict[Path, tuple[str, float, str]] = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_execute_in_worker, p, targets[p], timeout, threads): p for p in longest_first(paths)}
        for future in as_completed(futures):
            path = futures[future]
            results[path] = text, seconds, error = future.result()
            if error:
                print(f"FAILED {path}: the executed copy with the error is {targets[path]}\n{error}", file=sys.stderr)
            else:
                print(f"  {path.parent.name} done in {seconds:.0f} s -> {targets[path]}", flush=True)
    print()
    failures = 0
    for path in paths:
        text, seconds, error = results[path]
        if error:
            failures += 1
            continue
        print(f"== {path.parent.name} ({seconds:.0f} s): {targets[path]}")
        print(text or "(this notebook has no cell tagged 'results')")
        print()
    print(
        f"{len(paths) - failures} notebook(s) ran, {failures} failed, in {time.perf_counter() - started:.0f} s. "
        "Open the course with: .venv/bin/jupyter lab"
    )
    return 1 if failures else 0
