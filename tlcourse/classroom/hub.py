"""A class on one machine: ``python -m tlcourse hub`` (``make hub``) runs a real JupyterHub on 127.0.0.1.

- People come from a roster file, one a line: ``name`` (a student) or ``name instructor``; ``#`` starts a
  comment. Names are JupyterHub user names and nbgrader student ids at once, so they must be lower case
  letters, digits and ``. _ -`` (JupyterHub lower-cases names; nbgrader's exchange splits on ``+``).
- Log-in is JupyterHub's shared-password authenticator: one password for the students, another for the
  instructors, written to ``STATE/passwords`` (readable by its owner only) and printed at start. That is
  for a class on this machine only; a real class uses its OAuth or LTI authenticator (docs/deploy.md).
- Each person's single-user server is the course's own environment (this Python), started by
  JupyterHub's SimpleLocalProcessSpawner as the hub's own user, with a home folder of its own under
  ``STATE/homes/``. The instructor's server opens in the course folder (formgrader, ``grade ...``). A
  student's server has the student edition's ``tlcourse`` first on its path (``release/student-edition``,
  which ``hub release`` writes; before any release a student's server does not start), so a student's
  kernel holds no reference answer. On one machine
  and one system user that is no wall: the course folder is still readable (a real class uses one container
  a student, docs/deploy.md).
- nbgrader's exchange is ``STATE/exchange`` (every server's nbgrader configuration points there): students
  fetch and submit from JupyterLab's Assignments panel; the instructor releases, collects and returns
  feedback with ``python -m tlcourse hub release|collect|feedback``, and grades with the course's grader
  (``python -m tlcourse grade autograde``, sandboxed) in between.

Every process the hub starts (the proxy, each single-user server) carries ``TLCOURSE_HUB_STATE`` in its
environment: stopping the hub (Ctrl-C, SIGTERM) asks JupyterHub to stop them, then ends whatever of them
is left (`reap`), so no process outlives the hub.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

MARKER = "TLCOURSE_HUB_STATE"  # in the environment of every process a hub starts: its state folder
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
ROLES = ("student", "instructor")
COURSE_ID = "tlcourse"
DEFAULT_PORT = 8000
DEFAULT_STATE = Path("hub-state")


class HubError(ValueError):
    """A problem with the hub's input (roster, port, state) that the message says how to fix."""


@dataclass(frozen=True)
class Roster:
    instructors: tuple[str, ...]
    students: tuple[str, ...]

    @property
    def everyone(self) -> tuple[str, ...]:
        return self.instructors + self.students


def read_roster(path: Path) -> Roster:
    """The roster at ``path``; a HubError that lists every bad line (line numbers included) otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HubError(
            f"No roster at {path}: write one name a line (`name` for a student, `name instructor` for an "
            "instructor), or give --roster the file"
        ) from None
    except UnicodeDecodeError:
        raise HubError(f"The roster {path} is not UTF-8 text: save it as plain text, one name a line") from None
    people: dict[str, str] = {}
    seen: dict[str, int] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}:{number}"
        name = unicodedata.normalize("NFC", fields[0])
        role = fields[1] if len(fields) > 1 else "student"
        if len(fields) > 2 or role not in ROLES:
            problems.append(f"{where}: {line.strip()!r} is not `name` or `name instructor`")
            continue
        if not NAME.fullmatch(name):
            problems.append(
                f"{where}: the name {name!r} is not usable (lower case letters, digits and . _ - only, starting "
                "with a letter or digit, at most 32 characters: JupyterHub lower-cases names, nbgrader's "
                "exchange splits on +)"
            )
            continue
        key = name.casefold()
        if key in seen:
            problems.append(f"{where}: {name!r} is on the roster twice (first on line {seen[key]}): keep one")
            continue
        seen[key] = number
        people[name] = role
    if problems:
        raise HubError(
            f"The roster {path} has {len(problems)} problem(s); nothing was started:\n  " + "\n  ".join(problems)
        )
    roster = Roster(
        tuple(n for n, r in people.items() if r == "instructor"), tuple(n for n, r in people.items() if r == "student")
    )
    if not roster.instructors or not roster.students:
        raise HubError(f"The roster {path} needs at least one instructor (`name instructor`) and one student")
    return roster


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """A HubError when ``host:port`` is taken (another hub, a lab): nothing is started then."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise HubError(
                f"Port {port} on {host} is in use ({error.strerror}): stop what listens there (another hub?), "
                f"or give another one: python -m tlcourse hub --port {port + 1} (make hub PORT={port + 1})"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def passwords(state: Path) -> dict[str, str]:
    """The class's two passwords (``student``, ``instructor``), made once and kept in ``STATE/passwords``."""
    path = state / "passwords"
    if path.exists():
        pairs = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        if set(pairs) == set(ROLES):
            return pairs
    pairs = {
        "student": os.environ.get("TLCOURSE_HUB_STUDENT_PASSWORD") or secrets.token_urlsafe(9),
        "instructor": os.environ.get("TLCOURSE_HUB_INSTRUCTOR_PASSWORD") or secrets.token_urlsafe(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in pairs.items()))
    return pairs


def nbgrader_settings(state: Path, course_root: Path, student: str | None) -> str:
    lines = [
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {COURSE_ID!r}",
        f"c.Exchange.root = {str(state / 'exchange')!r}",
    ]
    if student is not None:  # everything on this machine runs as one system user: name the student
        lines.append(f"c.CourseDirectory.student_id = {student!r}")
    else:
        lines.append(f"c.CourseDirectory.root = {str(course_root)!r}")
    return "\n".join(lines) + "\n"


def write_state(state: Path, roster: Roster, course_root: Path, port: int) -> Path:
    """The hub's folder: homes, exchange, nbgrader and JupyterHub configuration. Returns the config file."""
    state = state.resolve()
    exchange = state / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o777)  # nbgrader's exchange: every student writes its inbound folder
    for person in roster.everyone:
        config = state / "homes" / person / ".jupyter" / "nbgrader_config.py"
        config.parent.mkdir(parents=True, exist_ok=True)
        student = person if person in roster.students else None
        config.write_text(nbgrader_settings(state, course_root, student))
    secret = passwords(state)
    bindir = Path(sys.executable).parent
    proxy = proxy_command()
    args = ["--allow-root"] if os.geteuid() == 0 else []
    settings = f"""# Written by `python -m tlcourse hub` (tlcourse/classroom/hub.py): edit the roster, not this file.
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{state / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(state / "jupyterhub_cookie_secret")!r}
c.JupyterHub.pid_file = {str(state / "jupyterhub.pid")!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {secret["student"]!r}
c.SharedPasswordAuthenticator.admin_password = {secret["instructor"]!r}
c.Authenticator.allowed_users = {set(roster.students)!r}
c.Authenticator.admin_users = {set(roster.instructors)!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(state / "homes" / "{username}")!r}
c.Spawner.cmd = [{str(bindir / "jupyterhub-singleuser")!r}]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {{{MARKER!r}: {str(state)!r}, "OMP_NUM_THREADS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}}
c.Spawner.env_keep = ["PATH", "PYTHONPATH", "LANG", "LC_ALL", "TLCOURSE_DATA", "TORCH_HOME", "XDG_CACHE_HOME"]
INSTRUCTORS = {set(roster.instructors)!r}


STUDENT_EDITION = {str(course_root / "release" / "student-edition")!r}


def pre_spawn_hook(spawner):
    import os

    # The instructor works in the course folder (formgrader, `python -m tlcourse grade ...`).
    if spawner.user.name in INSTRUCTORS:
        spawner.notebook_dir = {str(course_root)!r}
        spawner.environment["TLCOURSE_EXCHANGE_ROOT"] = {str(exchange)!r}
    # A student's kernels import the student edition's tlcourse (no reference answers), which `hub release`
    # (or `grade release`) writes; until then a student's server does not start.
    elif os.path.isfile(os.path.join(STUDENT_EDITION, "tlcourse", "__init__.py")):
        spawner.environment["PYTHONPATH"] = STUDENT_EDITION
    else:  # nothing released yet: a server now would hold the course's own tlcourse, answers and all
        raise RuntimeError("nothing is released yet: your instructor runs `python -m tlcourse hub release` first")


c.Spawner.pre_spawn_hook = pre_spawn_hook
"""
    target = state / "jupyterhub_config.py"
    target.write_text(settings)
    return target


def proxy_command() -> str:
    """JupyterHub's proxy: the npm one (``make hub`` installs it into .venv/node; it speaks WebSocket subprotocols,
    which JupyterLab's kernels ask for), else the Python one (pip's configurable-http-proxy) on PATH."""
    venv = Path(sys.executable).parent
    node = venv.parent / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if shutil.which("node") and os.access(node, os.X_OK):
        return str(node)
    found = shutil.which("configurable-http-proxy", path=f"{venv}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise HubError(
            "configurable-http-proxy is not installed: npm install --prefix .venv/node configurable-http-proxy "
            "(make hub does), or pip install configurable-http-proxy"
        )
    return found


def marked_processes(state: Path) -> list[int]:
    """Process ids (Linux) whose environment names ``state`` as their hub's: the hub's children, wherever."""
    needle = f"{MARKER}={Path(state).resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def reap(state: Path, grace: float = 5.0) -> list[int]:
    """End every process left from the hub at ``state`` (SIGTERM, then SIGKILL). Returns the ids it found."""
    found = marked_processes(state)
    for pid in found:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in found):
        time.sleep(0.1)
    for pid in found:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Hub:
    """A running hub: its process (a session of its own), its URL and state folder."""

    process: subprocess.Popen
    url: str
    state: Path
    roster: Roster
    passwords: dict[str, str]

    def stop(self, timeout: float = 30.0) -> list[int]:
        """Stop the hub (it stops the servers and the proxy), then end anything left. Returns what was left."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with suppress(ProcessLookupError):  # the hub's own session (the proxy starts in it)
            os.killpg(self.process.pid, signal.SIGKILL)
        return reap(self.state)


def start_hub(
    state: Path,
    roster_path: Path,
    *,
    course_root: Path,
    port: int = DEFAULT_PORT,
    log: Path | None = None,
    timeout: float = 60.0,
) -> Hub:
    """Start JupyterHub and wait until it answers; HubError (nothing left running) when it cannot start."""
    roster = read_roster(roster_path)
    check_port(port)
    state = Path(state).resolve()
    course_root = Path(course_root).resolve()
    config = write_state(state, roster, course_root, port)
    leftovers = reap(state)
    if leftovers:
        print(f"ended {len(leftovers)} process(es) left from an earlier hub at {state}")
    env = {**os.environ, MARKER: str(state)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    output = open(log, "ab") if log is not None else None  # noqa: SIM115 (the hub's whole life)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=state,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
    )
    hub = Hub(process, f"http://127.0.0.1:{port}", state, roster, passwords(state))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            hub.stop()
            raise HubError(f"JupyterHub exited at start (code {process.returncode}): see its log {log or 'above'}")
        try:
            with urllib.request.urlopen(f"{hub.url}/hub/api/", timeout=2) as answer:
                if answer.status == 200:
                    return hub
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            hub.stop()
            raise HubError(f"JupyterHub did not answer at {hub.url} within {timeout:.0f} s: see its log {log or ''}")
        time.sleep(0.2)


def serve(state: Path, roster_path: Path, *, course_root: Path, port: int) -> int:
    """``python -m tlcourse hub``: run the hub until Ctrl-C or SIGTERM, then stop it and everything it started."""
    log = Path(state).resolve() / "hub.log"
    hub = start_hub(state, roster_path, course_root=course_root, port=port, log=log)
    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"JupyterHub for {COURSE_ID} at {hub.url} (this machine only), state in {state}")
        print(f"  instructors {', '.join(hub.roster.instructors)}: password {hub.passwords['instructor']}")
        print(f"  students {', '.join(hub.roster.students)}: password {hub.passwords['student']}")
        print(f"  (the passwords are in {state / 'passwords'}; JupyterHub's log in {log})")
        print("Ctrl-C stops the hub and every server", flush=True)
        while not stopping and hub.process.poll() is None:
            time.sleep(0.5)
    finally:
        left = hub.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"hub stopped ({len(left)} leftover process(es) ended)" if left else "hub stopped; no process left")
    return 0 if stopping else (hub.process.returncode or 1)


# ----------------------------------------------------------------------------------- the instructor's side
def hub_api(state: Path, course_root: Path | None):
    """The course's nbgrader API (its grader, sandboxed), with the hub's exchange."""
    from tlcourse.classroom.instructor import nbgrader_api

    api = nbgrader_api(course_root, exchange_root=Path(state).resolve() / "exchange")
    api.config.ExchangeCollect.before_duedate = True  # the last submission before the deadline, if any
    return api


def parse_deadline(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HubError(f"--due {text!r} is not a date and time: write it as 2026-12-01T17:00 (UTC)") from None
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def release(api, chapters: list[str], due: dt.datetime | None = None) -> None:
    """The course's release (student version and edition), then into the exchange for students to fetch."""
    from tlcourse.classroom import instructor
    from tlcourse.classroom.errors import GradingError

    instructor.release(api, chapters)
    for chapter in chapters:
        if due is not None:
            api.gradebook.update_or_create_assignment(chapter, duedate=due)
        result = api.release_assignment(chapter)
        if not result["success"]:
            raise GradingError(instructor.failure_message(f"hub release {chapter}", result))
        print(f"{chapter}: in the exchange for students to fetch" + (f" (due {due:%Y-%m-%d %H:%M} UTC)" if due else ""))


def submissions(api, chapter: str) -> dict[str, list[dt.datetime]]:
    """Every submission of ``chapter`` in the exchange, by student, oldest first (nbgrader keeps them all)."""
    inbound = Path(api.config.Exchange.root) / COURSE_ID / "inbound"
    found: dict[str, list[dt.datetime]] = {}
    for folder in sorted(inbound.glob(f"*+{chapter}+*")):
        student, _, stamp = folder.name.split("+", 3)[:3]
        found.setdefault(student, []).append(_timestamp(stamp))
    return {student: sorted(stamps) for student, stamps in found.items()}


def _timestamp(text: str) -> dt.datetime:
    from nbgrader.utils import parse_utc

    return parse_utc(text).replace(tzinfo=None)


def collect(api, chapter: str) -> dict[str, str]:
    """nbgrader's collect from the exchange, with what happened to each student's submissions said plainly.

    nbgrader keeps every submission in the exchange. Collect takes each student's last one before the deadline
    (or the last one if there is no deadline, or none before it: then it is marked late) and replaces an older
    collected copy; nothing is deleted. Returns ``{student: what was collected}``.
    """
    from tlcourse.classroom import instructor
    from tlcourse.classroom.errors import GradingError

    result = api.collect(chapter, update=True)
    if not result["success"]:
        raise GradingError(instructor.failure_message(f"hub collect {chapter}", result))
    try:
        due = api.gradebook.find_assignment(chapter).duedate
    except Exception:
        due = None
    report = {}
    for student, stamps in submissions(api, chapter).items():
        on_time = [s for s in stamps if due is None or s <= due]
        taken = on_time[-1] if on_time else stamps[-1]
        late = [s for s in stamps if due is not None and s > due]
        line = f"submission of {taken:%Y-%m-%d %H:%M:%S} UTC"
        if len(stamps) > 1:
            line += f" (the last of {len(on_time) if on_time else len(stamps)} before the deadline; all are kept)"
        if not on_time:
            line += f" LATE: after the deadline of {due:%Y-%m-%d %H:%M} UTC; nbgrader records it as late"
        elif late:
            line += f"; {len(late)} later submission(s) after the deadline not collected (kept in the exchange)"
        report[student] = line
        print(f"{chapter} {student}: {line}")
    if not report:
        print(f"{chapter}: nobody has submitted yet")
    return report


def return_feedback(api, chapters: list[str]) -> None:
    """The course's feedback (HTML, hidden tests hidden), then into the exchange for students to fetch."""
    from tlcourse.classroom import instructor
    from tlcourse.classroom.errors import GradingError

    instructor.feedback(api, chapters)
    for chapter in chapters:
        result = api.release_feedback(chapter)
        if not result["success"]:
            raise GradingError(instructor.failure_message(f"hub feedback {chapter}", result))
        print(f"{chapter}: feedback in the exchange for students to fetch")


# ----------------------------------------------------------------------------------------- the browser tests
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    """Debian's chromium (``$TLCOURSE_CHROMIUM`` first): Playwright drives it by path, never its own build."""
    given = os.environ.get("TLCOURSE_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (their skip reason), or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "needs the playwright package (pip install -e '.[dev]', which make test does)"
    given = os.environ.get("TLCOURSE_CHROMIUM")
    if given and not os.access(given, os.X_OK):
        return f"TLCOURSE_CHROMIUM={given} is not an executable file: point it at chromium, or unset it"
    if chromium_path() is None:
        return (
            "needs Debian's chromium on PATH (apt-get install chromium; `make test` installs it where it runs "
            "as root, and Playwright's own browser download is not used): not found as " + " or ".join(CHROMIUM_NAMES)
        )
    return None
