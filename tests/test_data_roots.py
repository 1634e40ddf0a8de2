"""Data roots, and fetching Fashion-MNIST through pooch from a local HTTP server (no internet)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from dataclasses import replace
from functools import partial

import numpy as np
import pooch
import pytest

from tlcourse.library.data import (
    ChecksumError,
    DataNotFoundError,
    check_fashion_mnist,
    data_roots,
    download_root,
    fetch_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    sha256_file,
)
from tlcourse.library.data import fashion_mnist as fm

FETCH = "python -m tlcourse data fetch fashion-mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file holding a uint8 array."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


# ----------------------------------------------------------------------------------------------- roots
def test_data_roots_order_follows_env(isolated_data_roots, monkeypatch):
    env, xdg, system = isolated_data_roots["env"], isolated_data_roots["xdg"], isolated_data_roots["system"]
    assert data_roots() == [env, xdg / "tlcourse", system]
    assert download_root() == env
    monkeypatch.delenv("TLCOURSE_DATA")
    assert data_roots() == [xdg / "tlcourse", system]
    assert download_root() == xdg / "tlcourse"


def test_sha256_file_known_answer(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_missing_dataset_names_the_fetch_command(isolated_data_roots):
    with pytest.raises(DataNotFoundError) as err:
        find_fashion_mnist()
    message = str(err.value)
    assert FETCH in message and "dataset-fashion-mnist" in message
    for folder in isolated_data_roots.values():  # every place searched is listed
        assert str(folder) in message
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(DataNotFoundError, match="tlcourse data fetch"):
        load_fashion_mnist("test")


def test_first_root_wins_and_partial_copies_are_reported(isolated_data_roots):
    env_copy = isolated_data_roots["env"] / "fashion-mnist"
    system_copy = isolated_data_roots["system"] / "fashion-mnist"
    env_copy.mkdir(parents=True)
    (env_copy / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match="only 1 of 4"):
        find_fashion_mnist()
    system_copy.mkdir(parents=True)
    for f in fm.FILES.values():
        (system_copy / f.plain_name).write_bytes(b"x")  # decompressed copies count too
    assert find_fashion_mnist() == system_copy
    for f in fm.FILES.values():
        (env_copy / f.filename).write_bytes(b"x")
    assert find_fashion_mnist() == env_copy


# ------------------------------------------------------------------------------- fetching from a fixture
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Tiny valid Fashion-MNIST-format files served on 127.0.0.1; yields (url_base, dir, file table)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # never send local requests through a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images": rng.integers(0, 256, (20, 28, 28)), "train-labels": np.arange(20) % 10,
              "t10k-images": rng.integers(0, 256, (10, 28, 28)), "t10k-labels": np.arange(10)}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    table = {}
    for key, array in arrays.items():
        payload = idx_bytes(array)
        name = fm.FILES[key].filename
        (folder / name).write_bytes(gzip.compress(payload, mtime=0))
        table[key] = fm.IdxFile(name, (base + name,), sha256_file(folder / name),
                                hashlib.sha256(payload).hexdigest(), len(payload))
    monkeypatch.setattr(fm, "FILES", table)
    try:
        yield base, folder, table, arrays
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_lands_checked_files_that_load(served, tmp_path):
    base, _, table, arrays = served
    root = tmp_path / "root"
    folder = fetch_fashion_mnist(root, progress=False)
    assert folder == root / "fashion-mnist"
    assert sorted(os.listdir(root)) == ["fashion-mnist"]  # no staging folder left behind
    assert sorted(os.listdir(folder)) == sorted(f.filename for f in table.values())
    assert all(check_fashion_mnist(folder).values())
    train = load_fashion_mnist("train", root=root)
    assert train.x.shape == (20, 1, 28, 28)
    np.testing.assert_allclose(train.x[:, 0].numpy() * 255, arrays["train-images"], atol=1e-4)
    assert train.y.tolist() == arrays["train-labels"].tolist()
    # Found now: a second fetch returns at once, even with the server unreachable.
    for key, f in table.items():
        table[key] = replace(f, urls=(f"http://127.0.0.1:{free_port()}/x",))
    assert fetch_fashion_mnist(root, progress=False) == folder


def test_fetch_falls_back_to_the_mirror(served, tmp_path):
    _, _, table, _ = served
    dead = f"http://127.0.0.1:{free_port()}/"
    for key, f in table.items():
        table[key] = replace(f, urls=(dead + f.filename, *f.urls))
    assert all(check_fashion_mnist(fetch_fashion_mnist(tmp_path / "root", progress=False)).values())


@pytest.mark.parametrize("root_exists", [False, True])
def test_corrupted_download_is_rejected_and_nothing_stays(served, tmp_path, root_exists):
    _, folder, table, _ = served
    name = table["t10k-images"].filename  # the third file: two good files were already downloaded
    data = bytearray((folder / name).read_bytes())
    data[-20] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    root = tmp_path / "root"
    if root_exists:
        root.mkdir()
    with pytest.raises(ChecksumError, match="SHA-256") as err:
        fetch_fashion_mnist(root, progress=False)
    assert "deleted" in str(err.value) and FETCH in str(err.value)
    if root_exists:
        assert os.listdir(root) == []
    else:
        assert not root.exists()


def test_unreachable_server_gives_clear_error_and_writes_nothing(served, tmp_path):
    _, _, table, _ = served
    dead = f"http://127.0.0.1:{free_port()}/"
    for key, f in table.items():
        table[key] = replace(f, urls=(dead + f.filename,))
    root = tmp_path / "a" / "root"
    with pytest.raises(DataNotFoundError) as err:
        fetch_fashion_mnist(root, progress=False)
    assert "no network" in str(err.value) and "dataset-fashion-mnist" in str(err.value)
    assert os.listdir(tmp_path) == ["served"]  # not even the folders were left


def test_unwritable_root_gives_clear_error(served, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="TLCOURSE_DATA"):
        fetch_fashion_mnist(blocker / "root", progress=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_root_gives_clear_error(served, tmp_path):
    root = tmp_path / "read-only"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="Cannot write"):
            fetch_fashion_mnist(root, progress=False)
        assert os.listdir(root) == []
    finally:
        root.chmod(0o755)


def test_pooch_is_what_downloads(served, tmp_path, monkeypatch):
    """The hash check and temp-file-then-move come from pooch: make sure we really call it."""
    calls = []
    real = pooch.retrieve
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: calls.append(k["known_hash"]) or real(*a, **k))
    fetch_fashion_mnist(tmp_path / "root", progress=False)
    assert calls == [f"sha256:{f.gz_sha256}" for f in served[2].values()]


# ---------------------------------------------------------------------------------------------- catalog
def test_catalog_reports_missing_data_and_unknown_names(isolated_data_roots):
    from tlcourse.library.data import catalog

    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert {"fashion-mnist", "uci-digits", "font-digits", "photos"} <= set(rows)  # then the benchmarks
    assert rows["fashion-mnist"]["status"] == "missing"
    assert rows["fashion-mnist"]["location"] == str(isolated_data_roots["env"] / "fashion-mnist")
    assert rows["photos"]["status"] == "ready"
    lines: list[str] = []
    assert catalog.check_dataset("fashion-mnist", echo=lines.append) is False
    assert FETCH in "\n".join(lines)
    lines.clear()
    assert catalog.check_dataset("photos", echo=lines.append) is True and len(lines) == 2
    with pytest.raises(ValueError, match="fashion-mnist, uci-digits, font-digits, photos"):
        catalog.fetch_dataset("imagenet")  # (mnist is a known benchmark now)
