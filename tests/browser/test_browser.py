"""The course in a real browser: Playwright drives Debian's chromium (by its path; Playwright's own browser
build is never downloaded).

- A learner: ``jupyter lab`` on 127.0.0.1, chapter 1 opened, its first cells run, a figure in the output
  area, no error in the browser's console.
- A class on the local hub (`tlcourse.classroom.hub`): a student logs in, fetches chapter 1 from the
  Assignments panel, writes one exercise's solution in the notebook, saves and submits; the instructor
  collects, autogrades with the course's grader (sandboxed where bubblewrap is installed) and returns
  feedback, all with the course's commands; the student fetches the feedback and opens it, with the score
  the one solved exercise earns. The instructor's formgrader lists the submission.
- Stopping the hub leaves no process behind.

One browser and one hub for the module (its tests share module-scoped fixtures, so the root conftest.py runs
them in one worker); each test also passes when run on its own (``-k``). Chapter 1 on the hub is its light
version (imports and graded cells, as tests/classroom/test_sandbox.py grades it), so that autograding costs
seconds. A failing test's page is kept as a screenshot in ``test-artifacts/browser/``
(``$TLCOURSE_ARTIFACTS``), which CI uploads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from tlcourse.classroom import hub

REPO = Path(__file__).resolve().parents[2]
CHAPTER, NOTEBOOK = "01-domain-shift", "domain_shift.ipynb"
SOURCE = REPO / "notebooks" / CHAPTER / NOTEBOOK
ARTIFACTS = Path(os.environ.get("TLCOURSE_ARTIFACTS") or REPO / "test-artifacts") / "browser"
WAIT_MS = 180_000  # a server or kernel start on a busy 2-core machine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hub.browser_missing() is not None, reason=str(hub.browser_missing())),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=hub.chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@contextmanager
def page_of(browser, name: str):
    """A fresh page (own cookies) with its console errors in ``page.errors``; a screenshot if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
    try:
        yield page
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for number, each in enumerate(context.pages):
            each.screenshot(path=str(ARTIFACTS / f"{name}-{number}.png"), full_page=True)
        raise
    finally:
        context.close()


def run_cells(page, count: int) -> None:
    """Run the notebook's first ``count`` cells from the top (Shift+Enter each), as a learner does."""
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves on
    for _ in range(count):
        page.keyboard.press("Shift+Enter")


# ------------------------------------------------------------------------------------------------ a learner
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on 127.0.0.1 over a copy of chapter 1 (the repository's notebook stays untouched)."""
    folder = tmp_path_factory.mktemp("lab")
    (folder / CHAPTER).mkdir()
    shutil.copy(SOURCE, folder / CHAPTER / NOTEBOOK)
    port, token = hub.free_port(), "learner-token"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}", "--allow-root"]
    command += ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(folder / "lab.log", "wb")  # noqa: SIM115 (the server's whole life)
    process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).status == 200, process)
        yield url, token
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


def wait_for(ready, process, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"the server exited (code {process.returncode})"
        try:
            if ready():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server did not answer in time"
        time.sleep(0.2)


def test_a_learner_runs_chapter_1_and_sees_a_figure(browser, lab):
    url, token = lab
    with page_of(browser, "learner") as page:
        page.goto(f"{url}/lab/tree/{CHAPTER}/{NOTEBOOK}?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for()  # the kernel is up
        run_cells(page, 4)  # the imports, a heading, the data and its figure of every domain
        figure = page.locator(".jp-Notebook .jp-OutputArea-output img").first
        figure.wait_for()
        assert figure.evaluate("img => img.naturalWidth") > 100, "the figure did not render"
        assert page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type*='error']").count() == 0
        assert not page.errors, "the browser's console has errors:\n" + "\n".join(page.errors)


# ------------------------------------------------------------------------------------------------- a class
@pytest.fixture(scope="module")
def class_hub(tmp_path_factory):
    """A hub over a course of chapter 1 (light), released into its exchange; stopped (and checked) at the end."""
    root = tmp_path_factory.mktemp("course")
    nb = nbformat.read(SOURCE, as_version=4)
    imports = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [imports, *(c for c in nb.cells if c.metadata.get("nbgrader"))]
    (root / "notebooks" / CHAPTER).mkdir(parents=True)
    nbformat.write(nb, root / "notebooks" / CHAPTER / NOTEBOOK)
    roster = root / "roster.txt"
    roster.write_text("teacher instructor\nalice\nbob\n")
    state = tmp_path_factory.mktemp("hub-state")
    running = hub.start_hub(state, roster, course_root=root, port=hub.free_port(), log=state / "hub.log")
    try:
        assert tlcourse(state, root, "release").returncode == 0
        yield running, root
    finally:
        running.stop()


def tlcourse(state: Path, root: Path, action: str) -> subprocess.CompletedProcess:
    """The instructor's command: ``python -m tlcourse hub ACTION`` (or ``grade autograde``) for chapter 1."""
    if action == "autograde":
        command = ["grade", "autograde", "--root", str(root), "--memory-mib", "2048", "--cell-timeout", "120"]
    else:
        command = ["hub", action, "--state", str(state), "--root", str(root), "--chapters", CHAPTER]
    result = subprocess.run([sys.executable, "-m", "tlcourse", *command], capture_output=True, text=True, timeout=900)
    print(result.stdout, result.stderr)
    return result


def log_in(page, running, user: str) -> None:
    role = "instructor" if user in running.roster.instructors else "student"
    page.goto(f"{running.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", running.passwords[role])
    page.click("#login_submit")


def assignments(page):
    """The Assignments panel (nbgrader's lab extension), opened from its menu."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
    panel = page.locator("#nbgrader-assignment-list")
    panel.wait_for()
    return panel


def solution_of(grade_id: str) -> str:
    """The instructor's solution of one exercise, as the student would type it (no solution markers)."""
    cell = next(
        c
        for c in nbformat.read(SOURCE, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )
    return "\n".join(
        line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


def test_a_student_submits_the_instructor_grades_and_she_reads_the_feedback(browser, class_hub):
    running, root = class_hub
    state = running.state
    with page_of(browser, "student") as page:
        log_in(page, running, "alice")
        page.locator(".jp-Launcher").wait_for()  # the student's server is up, JupyterLab loaded
        panel = assignments(page)
        panel.locator("#released_assignments_list .list_item", has_text=CHAPTER).locator(
            "button", has_text="Fetch"
        ).click()
        panel.locator("#fetched_assignments_list .list_item", has_text=CHAPTER).wait_for()
        assert (state / "homes" / "alice" / CHAPTER / NOTEBOOK).is_file()

        page.goto(f"{running.url}/user/alice/lab/tree/{CHAPTER}/{NOTEBOOK}")
        cell = page.locator(".jp-Notebook .jp-CodeCell", has_text="def mmd2_unbiased")
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(solution_of("mmd2_unbiased"))
        page.keyboard.press("Control+s")
        page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached")
        saved = nbformat.read(state / "homes" / "alice" / CHAPTER / NOTEBOOK, as_version=4)
        assert "YOUR CODE HERE" not in next(c.source for c in saved.cells if "def mmd2_unbiased" in c.source)

        panel = assignments(page)
        fetched = panel.locator("#fetched_assignments_list .list_item", has_text=CHAPTER).first
        fetched.locator("button", has_text="Submit").click()
        panel.locator("#submitted_assignments_list .list_item", has_text=CHAPTER).first.wait_for()
        assert list((state / "exchange" / "tlcourse" / "inbound").glob(f"alice+{CHAPTER}+*"))

        for action in ("collect", "autograde", "feedback"):  # the instructor's side: the course's commands
            result = tlcourse(state, root, action)
            assert result.returncode == 0, f"{action}: {result.stdout}{result.stderr}"

        panel.locator("#refresh_assignments_list").click()
        submitted = panel.locator("#submitted_assignments_list .list_item", has_text=CHAPTER).first
        submitted.locator("button", has_text="Fetch Feedback").click()
        assert not page.errors, "the browser's console has errors:\n" + "\n".join(page.errors)
        panel.locator("#submitted_assignments_list a", has_text="view feedback").first.click()  # lab opens it
        html = state / "homes" / "alice" / CHAPTER / "feedback"
        page.locator(".jp-DirListing-item", has_text=".html").first.wait_for()  # in the student's files
        path = next(html.glob("*/*.html")).relative_to(state / "homes" / "alice")
        page.goto(f"{running.url}/user/alice/files/{urllib.parse.quote(path.as_posix())}")
        text = page.locator("body").inner_text()
        assert re.search(r"Score: 3(\.0+)? / 6(\.0+)?", text), text[:2000]
        assert "test_mmd2_unbiased" in text  # (the feedback page's fonts and MathJax come from a CDN: not offline)

    # The instructor's formgrader lists the graded submission (a step of the same story, not a test of its own:
    # it needs the submission above).
    with page_of(browser, "instructor") as page:
        log_in(page, running, "teacher")
        page.locator(".jp-Launcher").wait_for()
        page.goto(f"{running.url}/user/teacher/formgrader/manage_submissions/{CHAPTER}")
        page.locator("tr", has_text="alice").first.wait_for()
        row = page.locator("tr", has_text="alice").first.inner_text()
        assert "graded" in row and "3 / 6" in row, row


def test_stopping_the_hub_leaves_no_process(browser, class_hub):
    running, _ = class_hub
    if not user_servers(running.state):  # this test run on its own: no server yet, so alice starts hers
        with page_of(browser, "student") as page:
            log_in(page, running, "alice")
            page.locator(".jp-Launcher").wait_for()
    assert user_servers(running.state), "a single-user server should be running before the hub stops"
    left = running.stop()
    assert running.process.poll() is not None, "the hub still runs"
    assert left == [], f"processes outlived JupyterHub's own shutdown: {left}"
    assert hub.marked_processes(running.state) == []


def user_servers(state: Path) -> list[int]:
    """The class's single-user servers among the hub's processes (by their command line)."""
    return [
        pid
        for pid in hub.marked_processes(state)
        if b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
