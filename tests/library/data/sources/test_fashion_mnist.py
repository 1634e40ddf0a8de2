"""Fashion-MNIST: reading idx files, finding a copy in the data roots, fetching it through pooch from a local
HTTP server (no internet), and loading Debian's copy."""

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
import torch

from tlcourse.library.data import (
    ChecksumError,
    DataNotFoundError,
    check_fashion_mnist,
    fetch_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
    sha256_file,
)
from tlcourse.library.data.sources import fashion_mnist as fm

FETCH = "python -m tlcourse data fetch fashion-mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file holding a uint8 array."""
    return (
        struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def test_read_idx_known_answer(tmp_path):
    # idx3 of uint8, shape (2, 2, 3), written by hand: magic 0x00000803 then the three sizes.
    payload = bytes.fromhex("00000803000000020000000200000003") + bytes(range(12))
    (tmp_path / "a-idx3-ubyte").write_bytes(payload)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(payload))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        a = read_idx(tmp_path / name)
        assert a.dtype == np.uint8 and a.shape == (2, 2, 3)
        assert a[1, 0, 2] == 8 and a.ravel().tolist() == list(range(12))
    # idx1 of big-endian int32: values must come out in native order.
    (tmp_path / "b").write_bytes(bytes.fromhex("00000c0100000003") + struct.pack(">3i", 1, 256, -1))
    assert read_idx(tmp_path / "b").tolist() == [1, 256, -1]


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    payload = bytes.fromhex("000008010000000a") + bytes(10)
    (tmp_path / "short").write_bytes(payload[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "short.gz").write_bytes(gzip.compress(payload)[:-10])
    with pytest.raises(ValueError, match=r"truncated or corrupt.*fetch fashion-mnist"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "png")


def test_debian_fashion_mnist_loads_and_checks(debian_fashion_mnist):
    train = load_fashion_mnist("train", root=debian_fashion_mnist)
    test = load_fashion_mnist("test", root=debian_fashion_mnist)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert train.name == "fashion-mnist"
    assert check_fashion_mnist(debian_fashion_mnist) == {
        "train-images-idx3-ubyte.gz": True,
        "train-labels-idx1-ubyte.gz": True,
        "t10k-images-idx3-ubyte.gz": True,
        "t10k-labels-idx1-ubyte.gz": True,
    }


def test_fashion_mnist_cache_cannot_be_changed_by_callers(debian_fashion_mnist):
    first = load_fashion_mnist("test", root=debian_fashion_mnist)
    expected = first.x[:5].clone(), first.y[:5].clone()
    first.x.zero_()
    first.y.fill_(3)
    again = load_fashion_mnist("test", root=debian_fashion_mnist)
    assert torch.equal(again.x[:5], expected[0]) and torch.equal(again.y[:5], expected[1])


def test_bad_split_and_corrupt_copy(tmp_path, debian_fashion_mnist):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", root=debian_fashion_mnist)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / f).write_bytes(bytes.fromhex("0000080100000001") + b"\x00")
    assert check_fashion_mnist(tmp_path) == {
        f + ".gz": False
        for f in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    }


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
    arrays = {
        "train-images": rng.integers(0, 256, (20, 28, 28)),
        "train-labels": np.arange(20) % 10,
        "t10k-images": rng.integers(0, 256, (10, 28, 28)),
        "t10k-labels": np.arange(10),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    table = {}
    for key, array in arrays.items():
        payload = idx_bytes(array)
        name = fm.FILES[key].filename
        (folder / name).write_bytes(gzip.compress(payload, mtime=0))
        table[key] = fm.IdxFile(
            name, (base + name,), sha256_file(folder / name), hashlib.sha256(payload).hexdigest(), len(payload)
        )
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
    _, _, table, arrays = served
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


def test_fetch_replaces_a_truncated_copy_instead_of_calling_it_ready(served, tmp_path, capsys):
    _, _, table, _ = served
    root = tmp_path / "root"
    folder = fetch_fashion_mnist(root, progress=False)
    name = table["train-images"].filename
    (folder / name).write_bytes((folder / name).read_bytes()[:100])  # cut short, as an interrupted copy is
    assert not check_fashion_mnist(folder)[name]
    assert fetch_fashion_mnist(root, progress=False) == folder
    assert all(check_fashion_mnist(folder).values())
    assert "damaged" in capsys.readouterr().err


def test_a_truncated_copy_offline_is_named_not_called_ready(served, tmp_path):
    _, _, table, _ = served
    root = tmp_path / "root"
    folder = fetch_fashion_mnist(root, progress=False)
    name = table["t10k-labels"].filename
    (folder / name).write_bytes(b"")
    dead = f"http://127.0.0.1:{free_port()}/"
    for key, f in table.items():
        table[key] = replace(f, urls=(dead + f.filename,))
    with pytest.raises(DataNotFoundError) as err:
        fetch_fashion_mnist(root, progress=False)
    assert "damaged" in str(err.value) and name in str(err.value) and "no network" in str(err.value)


def test_an_unreadable_root_is_skipped_and_named(isolated_data_roots, debian_fashion_mnist, monkeypatch, deny_access):
    """A root we may not look into (a folder of another user, say) must not hide a good copy elsewhere."""
    from tlcourse.library.data.store import roots

    monkeypatch.setattr(roots, "SYSTEM_DATA_ROOT", debian_fashion_mnist.parent)
    blocked = isolated_data_roots["env"]
    deny_access(blocked, "is_file")
    assert find_fashion_mnist() == debian_fashion_mnist  # the good copy further down is found
    monkeypatch.setattr(roots, "SYSTEM_DATA_ROOT", isolated_data_roots["system"])
    with pytest.raises(DataNotFoundError) as err:
        find_fashion_mnist()
    assert f"{blocked / 'fashion-mnist'}  (cannot be read: Permission denied" in str(err.value)
