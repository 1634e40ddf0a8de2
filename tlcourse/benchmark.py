"""Measure the course against its budgets: wall time and peak memory of every notebook and experiment.

``python -m tlcourse benchmark`` runs each chapter notebook and each ``reproduce`` experiment in a fresh
process, records its wall time and the peak resident memory of that process and of its children (a
notebook's kernel is a child), prints a table and writes a JSON file. Budgets (DESIGN.md, on the 2-core
CPU): each notebook at most 3 minutes and 4 GiB, the whole course at most 12 minutes.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

NOTEBOOK_SECONDS = 180
COURSE_SECONDS = 12 * 60
PEAK_MEMORY_MIB = 4096


@dataclass
class Measurement:
    kind: str  # "notebook" or "experiment"
    name: str
    seconds: float
    peak_mib: float
    ok: bool
    error: str = ""

    def over_budget(self) -> list[str]:
        over = []
        if self.kind == "notebook" and self.seconds > NOTEBOOK_SECONDS:
            over.append(f"{self.seconds:.0f} s > {NOTEBOOK_SECONDS} s")
        if self.peak_mib > PEAK_MEMORY_MIB:
            over.append(f"{self.peak_mib:.0f} MiB > {PEAK_MEMORY_MIB} MiB")
        return over


def _peak_mib() -> float:
    """Peak resident memory of this process and of its largest finished child, in MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return max(own, children) / scale


def _measure_in_child(kind: str, target: str, output: Path) -> Measurement:
    """Run one measurement in a fresh interpreter, so that peak memory is this item's alone."""
    command = [sys.executable, "-m", "tlcourse.benchmark", "--one", kind, target, str(output)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return Measurement(kind, result["name"], result["seconds"], result["peak_mib"], result["ok"], result["error"])
    except (IndexError, json.JSONDecodeError, KeyError):
        return Measurement(kind, target, seconds, float("nan"), False, (proc.stderr or proc.stdout)[-2000:])


def _one(kind: str, target: str, output: Path) -> dict:
    """In the child: run one notebook or experiment and report on stdout as JSON."""
    error = ""
    start = time.perf_counter()
    if kind == "notebook":
        from tlcourse.course import execute_notebook

        path = Path(target)
        name = path.parent.name
        try:
            execute_notebook(path, output / "notebooks" / name / path.name)
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the benchmark goes on
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
    else:
        from tlcourse.experiments import run_experiment

        name = target
        try:
            run_experiment(target, seed=0, progress=False).save(output / "experiments" / f"{target}.json")
        except Exception as exc:  # noqa: BLE001
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
    return {"name": name, "seconds": time.perf_counter() - start, "peak_mib": _peak_mib(), "ok": not error,
            "error": error}


def run_benchmark(notebooks: Path, output: Path, *, experiments: bool = True, chapters: list[str] | None = None) -> int:
    """Measure every notebook (and experiment), print the table, write ``output/benchmark.json``."""
    from tlcourse.course import chapter_notebooks
    from tlcourse.experiments import experiment_names

    output.mkdir(parents=True, exist_ok=True)
    items = [("notebook", str(p)) for p in chapter_notebooks(notebooks, chapters)]
    if experiments:
        items += [("experiment", name) for name in experiment_names()]
    measurements = []
    for kind, target in items:
        print(f"{kind} {target} ...", flush=True)
        m = _measure_in_child(kind, target, output)
        measurements.append(m)
        status = "ok" if m.ok else f"FAILED: {m.error.splitlines()[-1] if m.error else '?'}"
        print(f"  {m.seconds:6.1f} s  {m.peak_mib:7.0f} MiB  {status}", flush=True)

    course_seconds = sum(m.seconds for m in measurements if m.kind == "notebook")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "budgets": {"notebook_seconds": NOTEBOOK_SECONDS, "course_seconds": COURSE_SECONDS,
                    "peak_memory_mib": PEAK_MEMORY_MIB},
        "course_seconds": course_seconds,
        "measurements": [asdict(m) for m in measurements],
    }
    (output / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{'what':<42} {'seconds':>8} {'peak MiB':>9}  budget")
    problems = 0
    for m in measurements:
        over = m.over_budget() + ([] if m.ok else ["failed"])
        problems += bool(over)
        print(f"{m.kind + ' ' + m.name:<42} {m.seconds:8.1f} {m.peak_mib:9.0f}  {'; '.join(over) or 'ok'}")
    course_over = course_seconds > COURSE_SECONDS
    problems += course_over
    print(f"{'whole course (notebooks)':<42} {course_seconds:8.1f} {'':>9}  "
          f"{f'{course_seconds:.0f} s > {COURSE_SECONDS} s' if course_over else 'ok'}")
    print(f"\nwrote {output / 'benchmark.json'}")
    return 1 if problems else 0


if __name__ == "__main__":
    # The child mode: python -m tlcourse.benchmark --one KIND TARGET OUTPUT
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(_one(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
    else:
        sys.exit("use `python -m tlcourse benchmark`")
