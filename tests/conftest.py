"""Shared fixtures.

Data fixtures: an isolated set of data roots, the Debian copy of Fashion-MNIST, a local HTTP file server
(no internet), and tiny fake copies of the full benchmarks in their real formats served from it (``serve``):
idx files (MNIST), MATLAB .mat (SVHN), LIBSVM text in bzip2 (USPS), a tar.gz of PNGs with label files
(MNIST-M), gzipped saved tensors (Syn Numbers), tar.gz archives of JPEG class folders (Office-31, PACS). The
benchmark table is pointed at the server with sums computed here, in the same algorithm as the real table
(SHA-256 or MD5; none for PACS). Helpers that tests call are fixtures too (``dead_url``, ``tar_gz``,
``jpeg_tree``): with pytest's importlib mode one test module cannot import another.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import os
import socket
import struct
import sys
import tarfile
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

# nbgrader runs the `alembic` command of its own environment: put this interpreter's bin folder first
# on PATH, so the tests work from `.venv/bin/python -m pytest` without an activated environment.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture
def isolated_data_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point every data root ($TLCOURSE_DATA, user cache, system folder) at empty folders under tmp_path."""
    from tlcourse.library.data.store import roots

    paths = {"env": tmp_path / "env-root", "xdg": tmp_path / "xdg-cache", "system": tmp_path / "system"}
    monkeypatch.setenv("TLCOURSE_DATA", str(paths["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(paths["xdg"]))
    monkeypatch.setattr(roots, "SYSTEM_DATA_ROOT", paths["system"])
    return paths


@pytest.fixture
def deny_access(monkeypatch: pytest.MonkeyPatch):
    """``deny_access(folder, "is_file")``: that Path method raises EACCES for anything under ``folder``, as it
    does for a folder of another user (root, who runs these tests here, ignores permission bits)."""

    def deny(folder: Path, method: str) -> None:
        real = getattr(Path, method)

        def denied(self, *args, **kwargs):
            if self.is_relative_to(folder):
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, denied)

    return deny


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def debian_fashion_mnist() -> Path:
    """Debian's copy of Fashion-MNIST; the test is skipped where the package is not installed."""
    names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    if not all((DEBIAN_FASHION_MNIST / n).is_file() for n in names):
        pytest.skip(
            f"Debian's dataset-fashion-mnist is not installed (no {DEBIAN_FASHION_MNIST}); "
            "`sudo apt-get install dataset-fashion-mnist` enables this test"
        )
    return DEBIAN_FASHION_MNIST


# ------------------------------------------------------------------------------- a local HTTP server
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; ``server.behaviour[name]`` plays a failure for that file:
    ``"404"``, ``"cut"`` (headers promise the whole file, half is sent, the connection closes),
    ``"cut-once"`` (the same, for the first request only) or ``"stall"`` (half is sent, then nothing more
    for up to a minute: a download caught mid-file)."""

    def log_message(self, *args) -> None:
        pass

    def _send_half(self, name: str) -> None:
        """Headers that promise the whole file, then its first half only."""
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].lstrip("/")
        self.server.requests.append(name)
        mode = self.server.behaviour.get(name)
        if mode == "404":
            self.send_error(404)
            return
        if mode == "stall":
            self._send_half(name)
            time.sleep(60)
            return
        if mode in ("cut", "cut-once"):
            if mode == "cut-once":
                del self.server.behaviour[name]
            self._send_half(name)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


class FileServer:
    """An HTTP server on 127.0.0.1 (ephemeral port, own thread) serving the files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(folder)))
        self.httpd.behaviour = {}
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def behaviour(self) -> dict[str, str]:
        return self.httpd.behaviour

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``name``; returns its SHA-256."""
        (self.folder / name).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A running `FileServer` of the folder ``tmp_path/served``."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # never send local requests through a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    with FileServer(folder) as s:
        yield s


def make_dead_url(name: str = "x") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/{name}"


@pytest.fixture(name="dead_url")
def dead_url_fixture():
    """`make_dead_url`, for tests."""
    return make_dead_url


def make_tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(name="tar_gz")
def tar_gz_fixture():
    """`make_tar_gz`, for tests."""
    return make_tar_gz


# ------------------------------------------------------------------ fake full benchmarks, real formats
RNG = np.random.default_rng(0)


def idx_gz(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def mat_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": x, "y": y})
    return buffer.getvalue()


def usps_bz2(images: np.ndarray, labels: np.ndarray) -> bytes:
    """LIBSVM lines: label 1..10, then index:value with values in [-1, 1]; zero values left out."""
    lines = []
    for img, label in zip(images.reshape(len(images), -1), labels):
        values = img / 127.5 - 1.0
        features = " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(values) if abs(v) > 1e-9)
        lines.append(f"{label + 1} {features}")
    return bz2.compress(("\n".join(lines) + "\n").encode())


def image_bytes(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def saved_tensors(*tensors: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(tuple(tensors), buffer)
    return gzip.compress(buffer.getvalue(), mtime=0)


def make_jpeg_tree(prefix: str, classes: dict[str, int]) -> dict[str, bytes]:
    """``{prefix/<class>/img_<k>.jpg: bytes}`` with ``classes[c]`` images of varied non-square sizes."""
    files = {}
    for cls, count in classes.items():
        for k in range(count):
            h, w = 30 + 7 * k, 44 - 5 * k
            files[f"{prefix}/{cls}/img_{k}.jpg"] = image_bytes(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8), "JPEG")
    return files


@pytest.fixture(name="jpeg_tree")
def jpeg_tree_fixture():
    """`make_jpeg_tree`, for tests."""
    return make_jpeg_tree


def fake_files(name: str) -> tuple[dict[str, bytes], dict]:
    """The fake files of benchmark ``name``, and what the loader must return from them."""
    if name == "mnist":
        x = {s: RNG.integers(0, 256, (n, 28, 28)) for s, n in (("train", 12), ("test", 6))}
        y = {"train": np.arange(12) % 10, "test": np.arange(6)}
        files = {
            "train-images-idx3-ubyte.gz": idx_gz(x["train"]),
            "train-labels-idx1-ubyte.gz": idx_gz(y["train"]),
            "t10k-images-idx3-ubyte.gz": idx_gz(x["test"]),
            "t10k-labels-idx1-ubyte.gz": idx_gz(y["test"]),
        }
        return files, {"x": x, "y": y}
    if name == "svhn":
        x = {s: RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8) for s, n in (("train", 10), ("test", 5))}
        y = {"train": np.arange(10), "test": np.arange(5) + 5}
        files = {
            f"{s}_32x32.mat": mat_bytes(x[s], np.where(y[s] == 0, 10, y[s]).reshape(-1, 1).astype(np.uint8))
            for s in ("train", "test")
        }
        return files, {"x": x, "y": y}
    if name == "usps":
        x = {s: RNG.integers(0, 256, (n, 16, 16)) for s, n in (("train", 9), ("test", 4))}
        x["train"][0, :4, :] = 127.5  # exactly 0 in [-1, 1]: left out of the LIBSVM line
        y = {"train": np.arange(9), "test": np.array([9, 0, 3, 3])}
        files = {"usps.bz2": usps_bz2(x["train"], y["train"]), "usps.t.bz2": usps_bz2(x["test"], y["test"])}
        return files, {"x": x, "y": y}
    if name == "mnist-m":
        members, x, y = {}, {}, {}
        for split, n in (("train", 6), ("test", 4)):
            x[split] = RNG.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
            y[split] = (np.arange(n) * 3) % 10
            for i in range(n):
                members[f"mnist_m/mnist_m_{split}/{i:08d}.png"] = image_bytes(x[split][i], "PNG")
            members[f"mnist_m/mnist_m_{split}_labels.txt"] = "".join(
                f"{i:08d}.png {y[split][i]}\n" for i in range(n)
            ).encode()
        return {"mnist_m.tar.gz": make_tar_gz(members)}, {"x": x, "y": y}
    if name == "syn-numbers":
        x = {s: torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8) for s, n in (("train", 8), ("test", 3))}
        y = {"train": torch.arange(8), "test": torch.tensor([7, 8, 9])}
        return {f"synth_{s}.pt.gz": saved_tensors(x[s], y[s]) for s in ("train", "test")}, {"x": x, "y": y}
    if name == "office31":  # pytorch-adapt's layout: office31/<domain>/images/<class>/*.jpg
        counts = {
            "amazon": {"back_pack": 2, "trash_can": 1, "mug": 1},
            "dslr": {"bike": 1, "ruler": 1},
            "webcam": {"pen": 2},
        }
        members = {}
        for domain, classes in counts.items():
            members.update(make_jpeg_tree(f"office31/{domain}/images", classes))
        return {"office31.tar.gz": make_tar_gz(members)}, {"counts": counts}
    if name == "pacs":  # one archive per domain, <domain>/<class>/*.jpg
        counts = {
            "art_painting": {"dog": 2},
            "cartoon": {"person": 1, "house": 1},
            "photo": {"guitar": 1},
            "sketch": {"horse": 3},
        }
        return {f"{d}.tgz": make_tar_gz(make_jpeg_tree(d, c)) for d, c in counts.items()}, {"counts": counts}
    raise KeyError(name)


def _sum_like(real: str | None, data: bytes) -> str | None:
    """A sum of ``data`` in the algorithm the real table uses for that file (None stays None)."""
    if real is None:
        return None
    alg = real.split(":")[0]
    return f"{alg}:{hashlib.new(alg, data).hexdigest()}"


@pytest.fixture
def serve(tmp_path, monkeypatch, isolated_data_roots):
    """``serve(name)`` serves the fake files of ``name``, points its table entry at them, returns the
    expected content; the server stops after the test. Downloads go to the isolated $TLCOURSE_DATA."""
    from tlcourse.library.data import BENCHMARKS
    from tlcourse.library.data.store.download import Source

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    with FileServer(folder) as server:

        def serve_one(name: str) -> dict:
            files, expected = fake_files(name)
            remotes = []
            for remote in BENCHMARKS[name].files:
                data = files[remote.filename]
                server.add(remote.filename, data)
                remotes.append(
                    replace(
                        remote,
                        sources=(Source(server.url(remote.filename), _sum_like(remote.sources[0].known_hash, data)),),
                    )
                )
            monkeypatch.setitem(BENCHMARKS, name, replace(BENCHMARKS[name], files=tuple(remotes)))
            expected["server"] = server
            return expected

        yield serve_one
