"""Measure the local hub: ``python -m tlcourse.classroom.hub_measure [STUDENTS]`` (needs chromium and playwright).

Releases chapter 1 (a student's server runs the student edition) and starts a hub with STUDENTS students
(default 4) over it. Each student, one after the other, logs in in chromium, opens chapter 1 and runs its
first cells (imports, data, the figure of every domain): the time from the log-in click to a chapter-1
kernel that is idle is printed per student. With every student's server and kernel up at once, the
resident memory of each student's processes (server + kernel) is read from /proc, and the machine's
available memory with them. Then the hub stops. Prints one line per student and a summary; measured
numbers go into docs/deploy.md by hand, with the command and how busy the machine was.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tlcourse.classroom import hub

REPO = Path(__file__).resolve().parents[2]
CHAPTER, NOTEBOOK = "01-domain-shift", "domain_shift.ipynb"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def per_student_memory(state: Path, students: list[str]) -> dict[str, float]:
    """MiB of resident memory of each student's processes (those whose environment names the student)."""
    totals = dict.fromkeys(students, 0.0)
    for pid in hub.marked_processes(state):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            user = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"JUPYTERHUB_USER=")), None)
            if user in totals:
                totals[user] += rss_mib(pid)
        except OSError:
            continue
    return totals


def main(count: int = 4) -> int:
    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the hub stops too (finally)
    students = [f"student{i}" for i in range(1, count + 1)]
    work = Path(tempfile.mkdtemp(prefix="tlcourse-hub-measure-"))
    roster = work / "roster.txt"
    roster.write_text("teacher instructor\n" + "\n".join(students) + "\n")
    for student in students:  # each student's copy of chapter 1, as a fetch leaves it
        target = work / "state" / "homes" / student / CHAPTER
        target.mkdir(parents=True)
        shutil.copy(REPO / "notebooks" / CHAPTER / NOTEBOOK, target / NOTEBOOK)
    # A student's server runs the student edition, which only a release writes (the hub starts none before it):
    # release chapter 1 from a course folder of its own, as an instructor would before the class.
    course = work / "course"
    shutil.copytree(REPO / "notebooks" / CHAPTER, course / "notebooks" / CHAPTER)
    release = [sys.executable, "-m", "tlcourse", "grade", "release", "--root", str(course)]
    released = subprocess.run(release, capture_output=True, text=True, timeout=600)
    if released.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(f"hub_measure: the release failed, so no student's server could start:\n{released.stderr}")
    running = hub.start_hub(work / "state", roster, course_root=course, port=hub.free_port(), log=work / "hub.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=hub.chromium_path(), args=["--no-sandbox"])
            seconds = {}
            for student in students:
                page = browser.new_context().new_page()
                page.set_default_timeout(300_000)
                page.goto(f"{running.url}/hub/login")
                page.fill("#username_input", student)
                page.fill("#password_input", running.passwords["student"])
                start = time.monotonic()
                page.click("#login_submit")  # JupyterHub starts the server, then JupyterLab opens
                page.locator(".jp-Launcher").wait_for()
                page.goto(f"{running.url}/user/{student}/lab/tree/{CHAPTER}/{NOTEBOOK}")
                page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for()
                seconds[student] = time.monotonic() - start
                page.locator(".jp-Notebook .jp-Cell").first.click()
                page.keyboard.press("Escape")
                for _ in range(4):
                    page.keyboard.press("Shift+Enter")
                page.locator(".jp-Notebook .jp-OutputArea-output img").first.wait_for()
                print(f"{student}: log-in to an idle chapter-1 kernel {seconds[student]:.1f} s", flush=True)
            memory = per_student_memory(running.state, students)
            for student in students:
                print(f"{student}: server + kernel (chapter 1's first cells run) {memory[student]:.0f} MiB resident")
            hub_mib = sum(rss_mib(p) for p in [running.process.pid]) + sum(
                rss_mib(p) for p in hub.marked_processes(running.state) if p not in _students_pids(running, students)
            )
            available = next(
                int(line.split()[1]) / 2**20
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemAvailable:")
            )
            print(f"with all {count} servers and kernels up: {available:.1f} GiB of memory still available")
            values = sorted(seconds.values())
            print(
                f"summary: {count} students; log-in to kernel median {values[len(values) // 2]:.1f} s, "
                f"max {values[-1]:.1f} s; memory per student median "
                f"{sorted(memory.values())[len(memory) // 2]:.0f} MiB; hub and proxy {hub_mib:.0f} MiB"
            )
            browser.close()
    finally:
        left = running.stop()
        shutil.rmtree(work, ignore_errors=True)
        print(f"hub stopped, {len(left)} process(es) left after its shutdown")
    return 0


def _students_pids(running, students: list[str]) -> set[int]:
    found = set()
    for pid in hub.marked_processes(running.state):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if any(f"JUPYTERHUB_USER={s}".encode() in env.split(b"\0") for s in students):
            found.add(pid)
    return found


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4))
