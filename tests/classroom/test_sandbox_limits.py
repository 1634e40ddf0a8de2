"""The sandbox's pieces on their own, in seconds: its command line, and the memory cap both ways."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlcourse.classroom import sandbox

GRAB = "x = bytearray({mib} * 2**20); print('allocated')"  # bytearray writes every page: all of it is used


def test_the_command_line_shows_nothing_of_the_course(tmp_path):
    course = tmp_path / "course"
    inner = [sys.executable, "-m", "ipykernel_launcher", "-f", str(tmp_path / "k.json")]
    command = sandbox.bwrap_command("bwrap", tmp_path / "private", sandbox.SandboxSettings(course, 512).package, inner)
    text = " ".join(command)
    assert command[-len(inner) :] == inner and "--unshare-all" in command and "--clearenv" in command
    assert command[command.index("--remount-ro") + 1] == "/"  # nothing but /tmp and the private folder is writable
    assert str(course) not in text and "--share-net" not in text
    binds = [command[i + 1] for i, arg in enumerate(command) if arg == "--bind"]  # the only writable mounts
    assert binds == [str(tmp_path / "private")]


def test_a_model_cache_reaches_the_kernel_only_when_the_settings_trust_one(tmp_path, monkeypatch):
    """The grader's own $TLCOURSE_MODEL_CACHE is not passed on; a trusted cache is mounted writable and named to
    the kernel after the environment is cleared (bubblewrap applies its options in order)."""
    monkeypatch.setenv(sandbox.MODEL_CACHE_ENV, str(tmp_path / "graders-own"))
    inner = [sys.executable, "-m", "ipykernel_launcher"]
    package = sandbox.SandboxSettings(tmp_path, 512).package
    plain = sandbox.bwrap_command("bwrap", tmp_path / "private", package, inner)
    assert sandbox.MODEL_CACHE_ENV not in plain and str(tmp_path / "graders-own") not in plain
    cache = tmp_path / "cache"
    command = sandbox.bwrap_command("bwrap", tmp_path / "private", package, inner, model_cache=cache)
    binds = [command[i + 1] for i, arg in enumerate(command) if arg == "--bind"]
    assert binds == [str(tmp_path / "private"), str(cache)]
    named = command.index(sandbox.MODEL_CACHE_ENV)
    assert command[named - 1] == "--setenv" and command[named + 1] == str(cache)
    assert named > command.index("--clearenv")


def test_without_bubblewrap_a_model_cache_still_comes_only_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(sandbox.MODEL_CACHE_ENV, str(tmp_path / "graders-own"))
    show = [sys.executable, "-c", f"import os; print(os.environ.get({sandbox.MODEL_CACHE_ENV!r}), os.environ['HOME'])"]
    for cache, seen in ((None, "None"), (tmp_path / "cache", str(tmp_path / "cache"))):
        command = sandbox.unsandboxed_command(tmp_path / "private", show, model_cache=cache)
        shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        assert shown == [seen, str(tmp_path / "private" / "work")]


def test_the_student_edition_is_the_sandbox_tlcourse_when_there_is_one(tmp_path):
    settings = sandbox.SandboxSettings(tmp_path, 512)
    assert settings.student_package() == settings.package  # no edition: the course's own (see the README)
    edition = tmp_path / "release" / "student-edition" / "tlcourse"
    edition.mkdir(parents=True)
    (edition / "__init__.py").write_text("")
    assert settings.student_package() == edition


def test_without_bubblewrap_the_log_says_so(monkeypatch):
    monkeypatch.setenv("TLCOURSE_NO_BWRAP", "1")
    assert "NO SANDBOX" in sandbox.describe() and "apt-get install bubblewrap" in sandbox.describe()


def run_capped(cap: sandbox.MemoryCap, mib: int) -> subprocess.CompletedProcess:
    try:
        command = cap.wrapper([sys.executable, "-c", GRAB.format(mib=mib)])
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        cap.close()


def test_rlimit_as_stops_an_allocation_beyond_the_cap(monkeypatch):
    monkeypatch.setattr(sandbox, "memory_cgroup_root", lambda: None)
    assert "RLIMIT_AS" in sandbox.memory_mechanism()
    assert run_capped(sandbox.MemoryCap(512), 64).returncode == 0
    over = run_capped(sandbox.MemoryCap(512), 1024)
    assert over.returncode != 0 and "MemoryError" in over.stderr


@pytest.mark.skipif(sandbox.memory_cgroup_root() is None, reason="no memory cgroup this process may create")
def test_a_cgroup_stops_an_allocation_beyond_the_cap():
    cap = sandbox.MemoryCap(256)
    folder = cap.cgroup
    assert folder is not None
    assert run_capped(sandbox.MemoryCap(256), 64).returncode == 0
    over = run_capped(cap, 768)
    assert over.returncode == -9 and "allocated" not in over.stdout  # the kernel's OOM killer ends it
    assert not folder.exists()  # the cgroup went with it


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_the_sandbox_has_no_network_and_a_read_only_system(tmp_path):
    (tmp_path / "private" / "work").mkdir(parents=True)
    probe = (
        "import os, socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=3); print('network')\n"
        "except OSError:\n    print('no network')\n"
        "for path in ('/usr/w', '/w', os.__file__ + '.w'):\n"
        "    try:\n        open(path, 'w'); print('wrote', path)\n"
        "    except OSError:\n        pass\n"
        "open('/tmp/w', 'w'); print('tmp ok', os.getuid())\n"
    )
    inner = [sys.executable, "-c", probe]
    package = Path(sandbox.__file__).resolve().parents[1]
    out = subprocess.run(
        sandbox.bwrap_command(shutil.which("bwrap"), tmp_path / "private", package, inner),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split("\n")[:2] == ["no network", "tmp ok 65534"], out.stdout + out.stderr


def dead_pid() -> int:
    """The pid of a process that has ended (reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_only_what_dead_graders_left(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sandbox, "memory_cgroup_root", lambda: None)
    orphan = tmp_path / f"{sandbox.PRIVATE_PREFIX}{dead_pid()}-abc"
    (orphan / "work").mkdir(parents=True)
    (orphan / "work" / "notes.txt").write_text("left behind")
    live = tmp_path / f"{sandbox.PRIVATE_PREFIX}{sandbox.os.getpid()}-def"
    live.mkdir()
    foreign = tmp_path / f"{sandbox.PRIVATE_PREFIX}not-a-pid"
    foreign.mkdir()
    assert sandbox.sweep_leftovers() == [orphan]
    assert not orphan.exists() and live.is_dir() and foreign.is_dir()


HOLDS_A_KERNEL = """
import asyncio, sys
from pathlib import Path
from tlcourse.classroom import sandbox

async def main():
    km = sandbox.SandboxedKernelManager(kernel_name="python3")
    km.settings = sandbox.SandboxSettings(course_root=Path(sys.argv[1]), memory_mib=2048)
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    await client.wait_for_ready(timeout=120)  # bubblewrap runs (and watches this process), the kernel answers
    print("KERNEL", km.private, km.memory.cgroup, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass  # ended meanwhile
    return found


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_killed_grader_leaves_no_kernel_and_the_next_one_sweeps(tmp_path):
    """SIGKILL to the process holding a sandboxed kernel: the kernel dies with it, and `sweep_leftovers`
    removes its private folder and cgroup."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDS_A_KERNEL, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = next((line for line in holder.stdout if line.startswith("KERNEL ")), "")  # the kernel prints too
        assert line, "the process holding the kernel ended before the kernel answered"
        _, private, cgroup = line.split()
        assert processes_mentioning(private), "the kernel did not start"
    finally:
        holder.kill()
        holder.wait(timeout=30)
    for _ in range(100):
        if not processes_mentioning(private):
            break
        time.sleep(0.1)
    assert not processes_mentioning(private), "the sandboxed kernel outlived its grader"
    assert Path(private).is_dir()  # what a killed grader cannot clean up ...
    removed = sandbox.sweep_leftovers()
    assert Path(private) in removed and not Path(private).exists()  # ... the next one does
    if cgroup != "None":
        assert Path(cgroup) in removed and not Path(cgroup).exists()
