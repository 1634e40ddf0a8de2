"""Measure the course against its budgets: wall time and peak memory of every notebook and experiment.

``python -m tlcourse benchmark`` runs each chapter notebook and each ``reproduce`` experiment (but the
long ones, such as ``dann-long``, half an hour or more) in a fresh process, records its wall time and the
peak resident memory of that process and of its children (a notebook's kernel is a child), prints a table
and writes a JSON file. The budgets are what the course promises on a learner's modest machine (a 2-core
CPU, no GPU, no network): each notebook at most 90 s, each notebook and experiment at most 4 GiB of
memory, the whole course (``python -m tlcourse course``, notebooks side by side) at most 4 minutes, and
the whole test command, installs included, at most 12 minutes. The command fails when a measurement is
over its budget. The course is measured twice: on the machine as it is, and with a second busy process
beside it (a learner's laptop is not quiet); the budget applies to the first, the second is reported.

``--test-command`` also measures that last one as CI runs it: ``.ci/run`` (the README's test command) in a
fresh clone of the repository's committed ``HEAD``, in a temporary folder, with a new virtual environment.
It takes as long as the test command itself (about 18 minutes), so it is not on by default.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

NOTEBOOK_SECONDS = 90
COURSE_SECONDS = 4 * 60
TEST_COMMAND_SECONDS = 12 * 60
PEAK_MEMORY_MIB = 4096


#: Benchmark runs worth keeping, one ``[[run]]`` each (date, machine, command, what else ran, the figures):
#: ``python -m tlcourse benchmark`` prints the block to add; ``python -m tlcourse expected --markdown`` renders
#: the latest runs in RESULTS.md. Figures from a busy machine say so in their ``conditions``.
RECORD = Path(__file__).with_name("benchmarks.toml")


@dataclass
class Measurement:
    kind: str  # "notebook", "experiment", "course", "course-under-load" or "test-command"
    name: str
    seconds: float
    peak_mib: float
    ok: bool
    error: str = ""

    def over_budget(self) -> list[str]:
        over = []
        if self.kind == "notebook" and self.seconds > NOTEBOOK_SECONDS:
            over.append(f"{self.seconds:.0f} s > {NOTEBOOK_SECONDS} s")
        if self.kind == "course" and self.seconds > COURSE_SECONDS:
            over.append(f"{self.seconds:.0f} s > {COURSE_SECONDS} s")
        if self.kind == "test-command" and self.seconds > TEST_COMMAND_SECONDS:
            over.append(f"{self.seconds:.0f} s > {TEST_COMMAND_SECONDS} s")
        if self.kind != "test-command" and self.peak_mib > PEAK_MEMORY_MIB:  # a budget per notebook and experiment
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
    command = [sys.executable, "-m", "tlcourse.classroom.benchmark", "--one", kind, target, str(output)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return Measurement(kind, result["name"], result["seconds"], result["peak_mib"], result["ok"], result["error"])
    except (IndexError, json.JSONDecodeError, KeyError):
        return Measurement(kind, target, seconds, float("nan"), False, (proc.stderr or proc.stdout)[-2000:])


def _one(kind: str, target: str, output: Path) -> dict:
    """In the child: run one notebook, experiment or the test command, and report on stdout as JSON."""
    error = ""
    start = time.perf_counter()
    if kind == "notebook":
        from tlcourse.classroom.course import execute_notebook

        path = Path(target)
        name = path.parent.name
        try:
            execute_notebook(path, output / "notebooks" / name / path.name)
        except Exception as exc:  # any failure is reported, not raised: the benchmark goes on
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
    elif kind in ("course", "course-under-load"):
        from tlcourse.classroom.course import run_course

        name = "whole course" + (", a busy process beside it" if kind == "course-under-load" else "")
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if kind == "course-under-load" else None
        try:
            if run_course(Path(target), output / kind):
                error = f"a notebook failed; see {output / kind}"
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    elif kind == "test-command":
        name = "fresh clone: .ci/run"
        log = output / "test-command.log"
        returncode = run_test_command(Path(target), log)
        if returncode:
            error = f".ci/run exited with {returncode}; see {log}"
    else:
        from tlcourse.experiments import run_experiment

        name = target
        try:
            run_experiment(target, seed=0, progress=False).save(output / "experiments" / f"{target}.json")
        except Exception as exc:  # likewise
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
    return {
        "name": name,
        "seconds": time.perf_counter() - start,
        "peak_mib": _peak_mib(),
        "ok": not error,
        "error": error,
    }


def _clean_environment(repository: Path) -> dict[str, str]:
    """This process's environment without the repository's virtual environment, as a fresh shell has it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    venv = (repository / ".venv").resolve()
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(venv)]
    env["PATH"] = os.pathsep.join(path)
    return env


def check_repository(repository: Path) -> None:
    """Fail early, before any measurement, if ``repository`` cannot be cloned; name uncommitted changes."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repository, capture_output=True, text=True
    )
    if status.returncode != 0:
        raise ValueError(
            f"{repository.resolve()} is not a git repository: the test command is measured on a fresh "
            "clone of it; pass --repository with the repository's folder."
        )
    if status.stdout.strip():
        print(
            f"note: {repository.resolve()} has uncommitted changes; the fresh clone measures HEAD without them",
            flush=True,
        )


def run_test_command(repository: Path, log: Path) -> int:
    """Run ``.ci/run`` in a fresh clone of ``repository``'s committed HEAD, installs included; its exit status.

    The clone lives in a temporary folder that is removed afterwards; the command's output goes to ``log``.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tlcourse-fresh-clone-") as tmp:
        clone = Path(tmp) / "tlcourse"
        subprocess.run(["git", "clone", "--quiet", str(repository.resolve()), str(clone)], check=True)
        with log.open("w") as out:
            return subprocess.run(
                ["bash", ".ci/run"], cwd=clone, stdout=out, stderr=subprocess.STDOUT, env=_clean_environment(repository)
            ).returncode


def run_benchmark(
    notebooks: Path,
    output: Path,
    *,
    experiments: bool = True,
    chapters: list[str] | None = None,
    test_command: Path | None = None,
    run_notebooks: bool = True,
    course: bool = True,
    command: str = "python -m tlcourse benchmark",
) -> int:
    """Measure every notebook (and experiment), print the table, write ``output/benchmark.json``.

    ``test_command``: a repository whose test command (``.ci/run``) to time on a fresh clone, last.
    """
    from tlcourse.classroom.course import chapter_notebooks
    from tlcourse.experiments import experiment_names

    # Every argument is checked before the output folder is made: a typo leaves nothing behind.
    items = [("notebook", str(p)) for p in chapter_notebooks(notebooks, chapters)] if run_notebooks else []
    if run_notebooks and course and not chapters:
        items += [("course", str(notebooks)), ("course-under-load", str(notebooks))]
    if experiments:
        items += [("experiment", name) for name in experiment_names(include_long=False)]
    if test_command is not None:
        check_repository(test_command)
        items.append(("test-command", str(test_command)))
    output.mkdir(parents=True, exist_ok=True)
    measurements = []
    for kind, target in items:
        print(f"{kind} {target} ...", flush=True)
        m = _measure_in_child(kind, target, output)
        measurements.append(m)
        status = "ok" if m.ok else f"FAILED: {m.error.splitlines()[-1] if m.error else '?'}"
        print(f"  {m.seconds:6.1f} s  {m.peak_mib:7.0f} MiB  {status}", flush=True)

    course_seconds = sum(m.seconds for m in measurements if m.kind == "notebook")  # one after the other
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "budgets": {
            "notebook_seconds": NOTEBOOK_SECONDS,
            "course_seconds": COURSE_SECONDS,
            "test_command_seconds": TEST_COMMAND_SECONDS,
            "peak_memory_mib": PEAK_MEMORY_MIB,
        },
        "command": command,
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
    if run_notebooks:
        print(f"{'the notebooks one after the other (sum)':<42} {course_seconds:8.1f}")
    print(f"\nwrote {output / 'benchmark.json'}")
    print("\nto keep this run (RESULTS.md shows it), add this to tlcourse/classroom/benchmarks.toml:\n")
    print(record_toml(report))
    return 1 if problems else 0


def _item_name(m: Measurement) -> str:
    return m.kind if m.kind in ("course", "course-under-load", "test-command") else f"{m.kind} {m.name}"


def record_toml(report: dict, conditions: str = "nothing else running") -> str:
    """The ``[[run]]`` block of `RECORD` for one benchmark report (``conditions``: edit it if the machine was busy)."""
    machine = report["machine"]
    lines = [
        "[[run]]",
        f'date = "{report["date"]}"',
        f'machine = "{machine["cpus"]} CPUs, {machine["platform"]}, torch {machine["torch"]}, '
        f'{machine["threads"]} torch threads"',
        f'command = "{report.get("command", "python -m tlcourse benchmark")}"',
        f'conditions = "{conditions}"',
        "[run.seconds]",
    ]
    measurements = [Measurement(**m) for m in report["measurements"]]
    lines += [f'"{_item_name(m)}" = {m.seconds:.1f}' for m in measurements]
    lines += ["[run.peak_mib]"]
    lines += [f'"{_item_name(m)}" = {m.peak_mib:.0f}' for m in measurements if m.peak_mib == m.peak_mib]
    return "\n".join(lines) + "\n"


def _budget(item: str) -> str:
    if item.startswith("notebook "):
        return f"{NOTEBOOK_SECONDS} s"
    return {"course": f"{COURSE_SECONDS} s", "test-command": f"{TEST_COMMAND_SECONDS} s"}.get(item, "")


def budgets_markdown(record: Path = RECORD) -> str:
    """The recorded benchmark runs as a Markdown section: each item's seconds and peak memory, per run."""
    import tomllib

    runs = tomllib.loads(record.read_text()).get("run", []) if record.exists() else []
    out = ["## Budgets: time and memory", ""]
    if not runs:
        return "\n".join([*out, f"No benchmark run recorded yet in `{record.name}`.", ""])
    out += [
        f"Recorded in `tlcourse/classroom/{record.name}` from `python -m tlcourse benchmark` (and "
        "`make benchmark-tests` for the test command, a fresh clone with its installs). Budgets: each notebook "
        f"at most {NOTEBOOK_SECONDS} s (alone, every core), the course (two notebooks at a time) at most "
        f"{COURSE_SECONDS} s, the test command at most {TEST_COMMAND_SECONDS} s, and at most "
        f"{PEAK_MEMORY_MIB} MiB for any notebook or experiment; the course under load is reported, not budgeted.",
        "",
    ]
    for run in runs:
        out += [f"**{run['date']}**, {run['machine']}; {run['conditions']}. Command: `{run['command']}`.", ""]
        out += ["| item | seconds | peak MiB | budget |", "|---|---|---|---|"]
        for item, seconds in run.get("seconds", {}).items():
            peak = run.get("peak_mib", {}).get(item, "")
            out.append(f"| {item} | {seconds:.1f} | {peak} | {_budget(item)} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    # The child mode: python -m tlcourse.classroom.benchmark --one KIND TARGET OUTPUT
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(_one(sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
    else:
        sys.exit("use `python -m tlcourse benchmark`")
