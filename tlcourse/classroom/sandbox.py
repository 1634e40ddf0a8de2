"""The sandbox a submission's kernel runs in while it is graded.

Each kernel starts inside bubblewrap (Debian's ``bubblewrap``), as an unprivileged user of its own user
namespace, with:
- no network (its own, empty network namespace); the grader talks to it over ZeroMQ's unix sockets (``ipc``)
  in a folder of its own;
- a read-only view of the system (``/usr``, ``/etc``), of Python and its virtual environment, and of the
  data folders; a ``tlcourse`` that is the student edition (``release/student-edition/tlcourse``) when there
  is one, else the course's own package (without it, reference answers are reachable: see the README);
- nothing of the course folder: no source notebooks, no gradebook, no other student's files;
- a private writable folder (its working directory, ``$HOME``, the probe's outputs) and a private ``/tmp``,
  both gone when the kernel is;
- a memory cap that counts all of its memory: a cgroup (``memory.max`` on cgroup v2,
  ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` on v1) when this process may create one,
  else ``RLIMIT_AS`` (virtual memory: torch alone reserves about 3 GiB of it, so the cap must sit above that).

A grader killed outright (SIGKILL) cannot clean up: its sandboxed kernels die with it (``--die-with-parent``),
and the next ``autograde`` removes the private folders and cgroups they left (`sweep_leftovers`). A kill in
the instant between a kernel's launch and bubblewrap's start leaves a kernel with no parent to watch: where a
cgroup holds it, that sweep ends it too.

Where bubblewrap is missing the kernel runs as the grader's user, unsandboxed but with the memory cap and
its own working folder (`describe` says so, and the grader prints it): the hidden tests are still judged
in the grader, but the student's code can read and write whatever the grader's user can.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from tlcourse.classroom.judging import PROBE_DIR_ENV

STUDENT_EDITION = Path("release") / "student-edition"
COURSE_MOUNT = "/opt/tlcourse-student"  # where the sandbox sees the student's tlcourse (on its PYTHONPATH)
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup")
# What the kernel inherits of the grader's environment (no more: it may hold secrets). nbgrader sets
# NBGRADER_EXECUTION, by which the notebooks train on their grading budget.
PASSED_ENV = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPLBACKEND")
PASSED_ENV += ("NBGRADER_EXECUTION", "TLCOURSE_PROFILE")
MODEL_CACHE_ENV = "TLCOURSE_MODEL_CACHE"  # set only from SandboxSettings.trusted_model_cache, never passed on


# What a kernel leaves on the machine: "<prefix><pid of the grader process that made it>-<random>".
PRIVATE_PREFIX, CGROUP_PREFIX = "tlcourse-sandbox-", "tlcourse-kernel-"


def bwrap_path() -> str | None:
    """bubblewrap's path, or None where it is not installed (or ``TLCOURSE_NO_BWRAP`` is set, for tests)."""
    return None if os.environ.get("TLCOURSE_NO_BWRAP") else shutil.which("bwrap")


def memory_cgroup_root() -> tuple[str, Path] | None:
    """``("v2" | "v1", folder)`` where this process may make memory cgroups, else None."""
    own = Path("/proc/self/cgroup").read_text() if Path("/proc/self/cgroup").exists() else ""
    v2 = CGROUP_V2 / "cgroup.controllers"
    if v2.exists() and "memory" in v2.read_text().split():
        # cgroup v2: a child of our own cgroup (the line "0::/path").
        path = next((line[3:] for line in own.splitlines() if line.startswith("0::")), "/")
        folder = CGROUP_V2 / path.lstrip("/")
        if os.access(folder, os.W_OK) and (folder / "cgroup.subtree_control").exists():
            return "v2", folder
    if (CGROUP_V1 / "memory.limit_in_bytes").exists() and os.access(CGROUP_V1, os.W_OK):
        return "v1", CGROUP_V1
    return None


def memory_mechanism() -> str:
    """How the memory cap is enforced on this machine, in words."""
    found = memory_cgroup_root()
    if found:
        return f"cgroup {found[0]} memory limit (all of the kernel's memory: heap, mappings, shared memory, tmpfs)"
    return "RLIMIT_AS (virtual memory; torch reserves about 3 GiB of address space on its own)"


def describe() -> str:
    """One line on how submissions are isolated here, for the instructor's log."""
    if bwrap_path():
        how = "bubblewrap sandbox (no network, read-only system, no course files)"
    else:
        how = (
            "NO SANDBOX: bubblewrap is not installed (apt-get install bubblewrap), so student code runs as this "
            "user and can read and write what it can; hidden tests are still judged in the grader"
        )
    return f"student code: {how}; memory cap: {memory_mechanism()}"


@dataclass
class SandboxSettings:
    course_root: Path
    memory_mib: int
    package: Path = Path(__file__).resolve().parents[1]  # the course's own tlcourse, for the fallback
    # A folder every kernel reads and writes as $TLCOURSE_MODEL_CACHE (`tlcourse.experiments.model_cache`), so that
    # a model the library trains the same way in each submission trains once. Only for submissions the instructor
    # trusts (the course's own tests grade its reference solutions and their variants): a class's kernels could
    # leave a model there for the next student. None (the default): no cache.
    trusted_model_cache: Path | None = None

    def student_package(self) -> Path:
        """The student edition's ``tlcourse`` when the course has one, else the course's own package."""
        edition = Path(self.course_root) / STUDENT_EDITION / "tlcourse"
        return edition if (edition / "__init__.py").is_file() else self.package


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_leftovers() -> list[Path]:
    """Remove the private folders and cgroups of kernels whose grader process is gone (killed, say), with
    any process still in such a cgroup; returns what was removed. A grader that ends normally leaves
    nothing (`SandboxedKernelManager.dispose`); one killed with SIGKILL cannot clean up: its sandboxed
    kernels die with it (bubblewrap's ``--die-with-parent``), and the next grader removes the rest here."""

    def orphans(root: Path, prefix: str) -> list[Path]:
        found = []
        for folder in root.glob(prefix + "*"):
            owner = folder.name[len(prefix) :].split("-", 1)[0]
            if owner.isdigit() and folder.is_dir() and not folder.is_symlink() and not _alive(int(owner)):
                found.append(folder)
        return found

    removed = []
    for folder in orphans(Path(tempfile.gettempdir()), PRIVATE_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    cgroups = memory_cgroup_root()
    for folder in orphans(cgroups[1], CGROUP_PREFIX) if cgroups else ():
        cap = MemoryCap.__new__(MemoryCap)
        cap.cgroup = folder
        cap.close()  # ends what is still in it, then removes it
        if cap.cgroup is None:
            removed.append(folder)
    return removed


class MemoryCap:
    """A cgroup of its own for one kernel, or an ``RLIMIT_AS`` for it, set up by `wrapper` around its command."""

    def __init__(self, mib: int):
        self.bytes = mib * 1024 * 1024
        self.cgroup: Path | None = None
        found = memory_cgroup_root()
        if found is None:
            return
        version, root = found
        folder = root / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            folder.mkdir()
            if version == "v2":
                (folder / "memory.max").write_text(str(self.bytes))
                if (folder / "memory.swap.max").exists():
                    (folder / "memory.swap.max").write_text("0")
            else:
                (folder / "memory.limit_in_bytes").write_text(str(self.bytes))
                if (folder / "memory.memsw.limit_in_bytes").exists():  # swap counts too (needs swap accounting)
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(self.bytes))
            self.cgroup = folder
        except OSError:
            self.remove(folder)

    def wrapper(self, command: list[str]) -> list[str]:
        """``command``, started in the cgroup (its process joins it before exec) or under ``RLIMIT_AS``."""
        procs = str(self.cgroup / "cgroup.procs") if self.cgroup else ""
        as_kib = "" if self.cgroup else str(self.bytes // 1024)
        script = 'if [ -n "$1" ]; then echo $$ > "$1" || exit 97; fi; if [ -n "$2" ]; then ulimit -v "$2"; fi; '
        return ["/bin/sh", "-c", script + 'shift 2; exec "$@"', "sh", procs, as_kib, *command]

    def close(self) -> None:
        """End what is left in the cgroup (a kernel's children, say), then remove it."""
        if self.cgroup is None:
            return
        for _ in range(50):
            with contextlib.suppress(OSError, ValueError):
                for pid in (self.cgroup / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            if self.remove(self.cgroup):
                self.cgroup = None
                return
            time.sleep(0.1)

    @staticmethod
    def remove(folder: Path) -> bool:
        try:
            folder.rmdir()  # a cgroup can go once its processes have
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False


def _read_only_binds(paths: list[Path]) -> list[str]:
    args: list[str] = []
    seen: set[str] = set()
    for path in paths:
        path = Path(path)
        if str(path) in seen or not path.exists():
            continue
        seen.add(str(path))
        args += ["--ro-bind", str(path), str(path)]
    return args


def unsandboxed_command(private: Path, inner: list[str], model_cache: Path | None = None) -> list[str]:
    """``inner`` where bubblewrap is missing: the grader's environment, with the kernel's private folders, and a
    model cache only from ``model_cache`` (`SandboxSettings.trusted_model_cache`), never the grader's own."""
    env = [f"{PROBE_DIR_ENV}={private / 'probe'}", f"HOME={private / 'work'}"]
    if model_cache is None:
        return ["/usr/bin/env", "-u", MODEL_CACHE_ENV, *env, *inner]
    return ["/usr/bin/env", *env, f"{MODEL_CACHE_ENV}={model_cache}", *inner]


def bwrap_command(
    bwrap: str, private: Path, package: Path, inner: list[str], model_cache: Path | None = None
) -> list[str]:
    """bubblewrap's command line around ``inner`` (the kernel's): see the module's docstring. ``model_cache``:
    `SandboxSettings.trusted_model_cache`, mounted read-write where it is."""
    from tlcourse.library.data.store.roots import data_roots

    args = [bwrap, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534"]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += _read_only_binds([Path(sys.base_prefix), Path(sys.prefix), *[r for r in data_roots() if r.is_dir()]])
    args += ["--ro-bind", str(package), f"{COURSE_MOUNT}/tlcourse"]
    args += ["--bind", str(private), str(private), "--chdir", str(private / "work")]
    if model_cache is not None:
        args += ["--bind", str(model_cache), str(model_cache)]
    args += ["--clearenv", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin"]
    for name in PASSED_ENV:
        if name in os.environ:
            args += ["--setenv", name, os.environ[name]]
    data = os.environ.get("TLCOURSE_DATA")
    if data and Path(data).is_dir():
        args += ["--setenv", "TLCOURSE_DATA", data]
    if model_cache is not None:
        args += ["--setenv", MODEL_CACHE_ENV, str(model_cache)]
    args += ["--setenv", "PYTHONPATH", COURSE_MOUNT, "--setenv", "PYTHONNOUSERSITE", "1"]
    args += ["--setenv", "HOME", str(private / "work"), "--setenv", "TMPDIR", "/tmp"]
    args += ["--setenv", "MPLCONFIGDIR", "/tmp/matplotlib", "--setenv", PROBE_DIR_ENV, str(private / "probe")]
    args += ["--remount-ro", "/"]  # the sandbox's own root folder too: only /tmp and the private folder take writes
    return [*args, "--", *inner]


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in the sandbox, talks over unix sockets and has a memory cap.

    ``settings`` (a `SandboxSettings`) must be set before the kernel starts; ``private`` is the kernel's
    own folder on this machine (``work/``: its working folder and home; ``probe/``: what the hidden tests'
    probes hand back; ``ipc/``: the connection file and sockets).
    """

    settings: SandboxSettings | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Named after this process (the kernel's cannot rename it), for `sweep_leftovers` should it be killed.
        self.private = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
        for sub in ("work", "probe", "ipc"):
            (self.private / sub).mkdir()
        self.transport = "ipc"
        self.ip = str(self.private / "ipc" / "kernel")
        self.connection_file = str(self.private / "ipc" / "kernel.json")
        self.memory: MemoryCap | None = None

    @property
    def probe_dir(self) -> Path:
        return self.private / "probe"

    def copy_into_work(self, folder: Path, max_bytes: int = 100 * 1024 * 1024) -> None:
        """Copy the regular files of ``folder`` (a submission's other files, not notebooks) into ``work/``."""
        total = 0
        for path in sorted(Path(folder).iterdir()) if folder and Path(folder).is_dir() else []:
            if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb" or path.name.startswith("."):
                continue
            total += path.stat().st_size
            if total > max_bytes:
                break
            shutil.copyfile(path, self.private / "work" / path.name)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        inner = super().format_kernel_cmd(extra_arguments)
        settings = self.settings
        assert settings is not None, "SandboxedKernelManager.settings must be set before the kernel starts"
        bwrap = bwrap_path()
        cache = settings.trusted_model_cache
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
        if bwrap:
            command = bwrap_command(bwrap, self.private, settings.student_package(), inner, model_cache=cache)
        else:
            command = unsandboxed_command(self.private, inner, model_cache=cache)
        if self.memory is not None:
            self.memory.close()
        self.memory = MemoryCap(settings.memory_mib)
        return self.memory.wrapper(command)

    async def _async_pre_start_kernel(self, **kw):
        # The kernel works in its own folder, not in the submission's (where the grader writes).
        cwd = kw.pop("cwd", None)
        if cwd:
            self.copy_into_work(Path(cwd))
        kw["cwd"] = str(self.private / "work")
        command, kw = await super()._async_pre_start_kernel(**kw)
        # Interrupt by a message on the control channel (the kernel then signals itself): a SIGINT to the
        # process group would reach bubblewrap too, which dies of it, and takes the kernel with it.
        self.kernel_spec.interrupt_mode = "message"
        return command, kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self.dispose()

    def dispose(self) -> None:
        """Remove the kernel's cgroup and private folder (after its process has ended)."""
        if self.memory is not None:
            self.memory.close()
        shutil.rmtree(self.private, ignore_errors=True)
