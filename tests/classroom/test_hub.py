"""The local class hub's bad input, without a browser: the roster, a port in use, a missing chromium, a
student who submits twice or after the deadline (nbgrader's exchange, with the course's collect); and the
hub started from the command line, stopped with SIGTERM, leaving no process behind."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tlcourse.classroom import hub

CHAPTER, NOTEBOOK = "00-tiny", "tiny.ipynb"


def roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.txt"
    path.write_text(text)
    return path


def test_a_good_roster(tmp_path):
    found = hub.read_roster(roster(tmp_path, "# the class\nteacher instructor\nalice\n\nbob  # late joiner\n"))
    assert found == hub.Roster(("teacher",), ("alice", "bob"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teacher instructor\nalice\nAlice\n", "'Alice' is not usable"),
        ("teacher instructor\nalice\nbob\nalice\n", "'alice' is on the roster twice (first on line 2)"),
        ("teacher instructor\nal+ice\n", "'al+ice' is not usable"),
        ("teacher instructor\n../bob\n", "'../bob' is not usable"),
        ("teacher instructor\nalice teacher\n", "is not `name` or `name instructor`"),
        ("alice\nbob\n", "needs at least one instructor"),
    ],
)
def test_a_bad_roster_names_the_line_and_starts_nothing(tmp_path, text, message):
    with pytest.raises(hub.HubError) as error:
        hub.read_roster(roster(tmp_path, text))
    assert message in str(error.value)


def test_every_bad_line_is_listed_at_once(tmp_path):
    with pytest.raises(hub.HubError) as error:
        hub.read_roster(roster(tmp_path, "teacher instructor\nalice\nalice\nb*b\n"))
    assert "2 problem(s)" in str(error.value) and ":3:" in str(error.value) and ":4:" in str(error.value)


def test_a_missing_roster_says_how_to_write_one(tmp_path):
    with pytest.raises(hub.HubError, match="one name a line"):
        hub.read_roster(tmp_path / "nowhere.txt")


def test_a_port_in_use_is_refused_with_another_to_try(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(hub.HubError, match=f"Port {port} on 127.0.0.1 is in use.*--port {port + 1}"):
            hub.start_hub(tmp_path / "state", roster(tmp_path, "t instructor\na\n"), course_root=tmp_path, port=port)
    assert not (tmp_path / "state").exists(), "a refused start must write nothing"


def test_the_command_line_says_a_port_is_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "tlcourse", "hub", "--port", str(port), "--state", str(tmp_path / "s")]
        result = subprocess.run(
            [*command, "--roster", str(roster(tmp_path, "t instructor\na\n"))], capture_output=True, text=True
        )
    assert result.returncode == 2 and f"error: Port {port}" in result.stderr, result.stderr


def test_a_missing_chromium_is_a_clear_skip_reason(monkeypatch, tmp_path):
    monkeypatch.delenv("TLCOURSE_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert hub.chromium_path() is None
    reason = hub.browser_missing()
    assert reason is not None and "apt-get install chromium" in reason


def test_a_chromium_that_is_not_executable_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_CHROMIUM", str(tmp_path / "chromium"))
    assert "is not an executable file" in str(hub.browser_missing())


# ------------------------------------------------------------------------ submitting twice, or after the deadline
@pytest.fixture
def exchange_course(tmp_path, tiny_course):
    """The tiny course released into a hub's exchange (no hub running: the exchange is folders)."""
    state = tmp_path / "state"
    (state / "exchange").mkdir(parents=True)
    api = hub.hub_api(state, tiny_course)
    hub.release(api, [CHAPTER], due=dt.datetime(2026, 12, 1, 17, 0))
    return api, state, tiny_course


def submit(state: Path, student: str, when: str, marker: str) -> Path:
    """A submission as nbgrader's exchange stores it (what the Assignments panel's Submit writes)."""
    folder = state / "exchange" / "tlcourse" / "inbound" / f"{student}+{CHAPTER}+{when} UTC+{marker}"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"x = '{marker}'")]
    nbformat.write(nb, folder / NOTEBOOK)
    (folder / "timestamp.txt").write_text(f"{when} UTC")
    return folder


def collected(root: Path, student: str) -> str:
    return nbformat.read(root / "submitted" / student / CHAPTER / NOTEBOOK, as_version=4).cells[0].source


def test_a_second_submission_replaces_the_first_and_both_are_kept(exchange_course, capsys):
    api, state, root = exchange_course
    first = submit(state, "alice", "2026-11-30 10:00:00.000000", "first")
    hub.collect(api, CHAPTER)
    assert "first" in collected(root, "alice")
    second = submit(state, "alice", "2026-11-30 12:00:00.000000", "second")
    report = hub.collect(api, CHAPTER)
    assert "second" in collected(root, "alice")
    assert "the last of 2 before the deadline; all are kept" in report["alice"]
    assert first.is_dir() and second.is_dir(), "a submission was deleted from the exchange"


def test_a_late_submission_is_kept_and_the_last_one_on_time_is_graded(exchange_course):
    api, state, root = exchange_course
    submit(state, "bob", "2026-12-01 16:59:00.000000", "on-time")
    late = submit(state, "bob", "2026-12-01 18:00:00.000000", "late")
    report = hub.collect(api, CHAPTER)
    assert "on-time" in collected(root, "bob")
    assert "1 later submission(s) after the deadline not collected (kept in the exchange)" in report["bob"]
    assert late.is_dir()


def test_only_late_submissions_are_collected_and_marked_late(exchange_course):
    api, state, root = exchange_course
    submit(state, "carol", "2026-12-02 09:00:00.000000", "late")
    report = hub.collect(api, CHAPTER)
    assert "late" in collected(root, "carol")
    assert "LATE: after the deadline of 2026-12-01 17:00 UTC" in report["carol"]


def test_a_deadline_that_is_no_date_is_refused():
    with pytest.raises(hub.HubError, match="2026-12-01T17:00"):
        hub.parse_deadline("next friday")


# ------------------------------------------------------------------------------------- no process left behind
@pytest.mark.slow
def test_sigterm_stops_the_hub_and_every_server(tmp_path, tiny_course):
    """``python -m tlcourse hub`` (what ``make hub`` runs), a student's server started, then SIGTERM."""
    state, port = tmp_path / "state", hub.free_port()
    command = [sys.executable, "-m", "tlcourse", "hub", "--state", str(state), "--port", str(port)]
    command += ["--roster", str(roster(tmp_path, "teacher instructor\nalice\n")), "--root", str(tiny_course)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "JupyterHub for tlcourse" in process.stdout.readline()  # printed once the hub answers
        # Before a release there is no student edition: a student's server would hold the answers, so it does
        # not start.
        with pytest.raises(urllib.error.HTTPError) as refused:
            start_server(state, port, "alice")
        assert refused.value.code == 500 and "nothing is released yet" in (state / "hub.log").read_text()
        release = [sys.executable, "-m", "tlcourse", "grade", "release", "--root", str(tiny_course)]
        assert subprocess.run(release, capture_output=True, timeout=300).returncode == 0
        assert start_server(state, port, "alice"), "alice's server did not answer"
        servers = hub.marked_processes(state)
        assert len(servers) >= 2, "the proxy and alice's server should be running"
        # A student's server (and so her kernels) imports the student edition that the release wrote.
        edition = tiny_course.resolve() / "release" / "student-edition"
        assert (edition / "tlcourse" / "__init__.py").is_file()
        environments = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in servers]
        assert [f"PYTHONPATH={edition}".encode() in env for env in environments].count(True) == 1, environments
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
        assert process.returncode == 0, output
        assert "no process left" in output, output
        assert hub.marked_processes(state) == []
    finally:
        if process.poll() is None:
            process.kill()
        hub.reap(state)


def start_server(state: Path, port: int, user: str) -> bool:
    """Log ``user`` in with the class password and open their lab: JupyterHub starts their server."""
    import http.cookiejar
    import re
    import urllib.parse

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/hub/login", timeout=30).read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    password = hub.passwords(state)["student"]
    form = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf}).encode()
    with opener.open(f"{base}/hub/login?next=/hub/spawn", data=form, timeout=180) as answer:
        answer.read()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # the server starts behind JupyterHub's spawn-pending page
        try:
            with opener.open(f"{base}/user/{user}/lab", timeout=30) as answer:  # through its OAuth
                return answer.status == 200
        except urllib.error.HTTPError as error:
            if error.code not in (424, 502, 503):
                raise
        time.sleep(0.5)
    return False


def test_reap_ends_a_marked_process(tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, hub.MARKER: str(state.resolve())}
    orphan = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 10  # its environment is the marked one once it has exec'd sleep
        while orphan.pid not in hub.marked_processes(state) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.pid in hub.marked_processes(state)
        assert orphan.pid in hub.reap(state)
        assert orphan.wait(10) is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()
