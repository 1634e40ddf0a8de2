"""The full benchmarks, fetched from a local HTTP server that serves tiny fake files in the real formats.

idx files (MNIST), MATLAB .mat (SVHN), LIBSVM text in bzip2 (USPS), a tar.gz of PNGs with label files
(MNIST-M), gzipped saved tensors (Syn Numbers), tar.gz archives of JPEG class folders (Office-31, PACS).
The dataset table is pointed at the server with sums computed here, in the same algorithm as the real
table (SHA-256 or MD5; none for PACS). Also checks the real table itself and data_scripts/README.md.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib.util
import io
import os
import re
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from test_data_download import FileServer, dead_url, tar_gz
from tlcourse.library.data import (
    BENCHMARKS,
    ChecksumError,
    DataNotFoundError,
    Domain,
    UnverifiedDataError,
    check_benchmark,
    fetch_benchmark,
    find_benchmark,
    load_benchmark,
    load_mnist,
    load_office31,
    load_pacs,
    load_svhn,
    load_usps,
)
from tlcourse.library.data import benchmarks as bm
from tlcourse.library.data import catalog
from tlcourse.library.data.download import UNVERIFIED_SUMS_FILE, Remote, Source
from tlcourse.library.data.object_benchmarks import OFFICE31_CLASSES, PACS_CLASSES

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------ fake real formats
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


def jpeg_tree(prefix: str, classes: dict[str, int]) -> dict[str, bytes]:
    """``{prefix/<class>/img_<k>.jpg: bytes}`` with ``classes[c]`` images of varied non-square sizes."""
    files = {}
    for cls, count in classes.items():
        for k in range(count):
            h, w = 30 + 7 * k, 44 - 5 * k
            files[f"{prefix}/{cls}/img_{k}.jpg"] = image_bytes(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8), "JPEG")
    return files


def fake_files(name: str) -> tuple[dict[str, bytes], dict]:
    """The fake files of benchmark ``name``, and what the loader must return from them."""
    if name == "mnist":
        x = {s: RNG.integers(0, 256, (n, 28, 28)) for s, n in (("train", 12), ("test", 6))}
        y = {"train": np.arange(12) % 10, "test": np.arange(6)}
        files = {"train-images-idx3-ubyte.gz": idx_gz(x["train"]), "train-labels-idx1-ubyte.gz": idx_gz(y["train"]),
                 "t10k-images-idx3-ubyte.gz": idx_gz(x["test"]), "t10k-labels-idx1-ubyte.gz": idx_gz(y["test"])}
        return files, {"x": x, "y": y}
    if name == "svhn":
        x = {s: RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8) for s, n in (("train", 10), ("test", 5))}
        y = {"train": np.arange(10), "test": np.arange(5) + 5}
        files = {f"{s}_32x32.mat": mat_bytes(x[s], np.where(y[s] == 0, 10, y[s]).reshape(-1, 1).astype(np.uint8))
                 for s in ("train", "test")}
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
                f"{i:08d}.png {y[split][i]}\n" for i in range(n)).encode()
        return {"mnist_m.tar.gz": tar_gz(members)}, {"x": x, "y": y}
    if name == "syn-numbers":
        x = {s: torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8) for s, n in (("train", 8), ("test", 3))}
        y = {"train": torch.arange(8), "test": torch.tensor([7, 8, 9])}
        return {f"synth_{s}.pt.gz": saved_tensors(x[s], y[s]) for s in ("train", "test")}, {"x": x, "y": y}
    if name == "office31":  # pytorch-adapt's layout: office31/<domain>/images/<class>/*.jpg
        counts = {"amazon": {"back_pack": 2, "trash_can": 1, "mug": 1}, "dslr": {"bike": 1, "ruler": 1},
                  "webcam": {"pen": 2}}
        members = {}
        for domain, classes in counts.items():
            members.update(jpeg_tree(f"office31/{domain}/images", classes))
        return {"office31.tar.gz": tar_gz(members)}, {"counts": counts}
    if name == "pacs":  # one archive per domain, <domain>/<class>/*.jpg
        counts = {"art_painting": {"dog": 2}, "cartoon": {"person": 1, "house": 1}, "photo": {"guitar": 1},
                  "sketch": {"horse": 3}}
        return {f"{d}.tgz": tar_gz(jpeg_tree(d, c)) for d, c in counts.items()}, {"counts": counts}
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
                remotes.append(replace(remote, sources=(
                    Source(server.url(remote.filename), _sum_like(remote.sources[0].known_hash, data)),)))
            monkeypatch.setitem(BENCHMARKS, name, replace(BENCHMARKS[name], files=tuple(remotes)))
            expected["server"] = server
            return expected
        yield serve_one


ENV = "env"  # key of isolated_data_roots: the $TLCOURSE_DATA folder


# --------------------------------------------------------------------------------- fetch, load, check
DIGITS = ["mnist", "svhn", "usps", "mnist-m", "syn-numbers"]


@pytest.mark.parametrize("name", DIGITS)
def test_digit_benchmark_fetches_checks_and_loads_as_course_domains(serve, isolated_data_roots, name):
    expected = serve(name)
    folder = fetch_benchmark(name, progress=False)
    assert folder == isolated_data_roots[ENV] / name
    assert os.listdir(isolated_data_roots[ENV]) == [name]  # no staging folder left
    assert all(check_benchmark(name).values())
    for split in ("train", "test"):
        d = load_benchmark(name, split)
        assert isinstance(d, Domain) and d.name == name
        assert d.x.shape == (len(expected["y"][split]), 3, 28, 28) and d.x.dtype == torch.float32
        assert 0.0 <= float(d.x.min()) and float(d.x.max()) <= 1.0
        assert d.y.tolist() == [int(v) for v in expected["y"][split]] and d.classes == tuple("0123456789")


def test_native_formats_keep_the_pixels(serve):
    mnist, svhn, usps = serve("mnist"), serve("svhn"), serve("usps")
    for name in ("mnist", "svhn", "usps"):
        fetch_benchmark(name, progress=False)
    d = load_mnist("train", size=None, channels=None)
    np.testing.assert_allclose(d.x[:, 0].numpy() * 255, mnist["x"]["train"], atol=1e-3)
    d = load_svhn("test", size=None, channels=None)
    assert d.x.shape == (5, 3, 32, 32)
    np.testing.assert_allclose(d.x.permute(2, 3, 1, 0).numpy() * 255, svhn["x"]["test"], atol=1e-3)
    assert d.y.tolist() == [5, 6, 7, 8, 9]
    d = load_usps("train", size=None, channels=None)
    assert d.x.shape == (9, 1, 16, 16)
    np.testing.assert_allclose(d.x[:, 0].numpy() * 255, usps["x"]["train"], atol=0.51)  # rounding of -1..1
    gray = load_svhn("train", size=None, channels=1)
    luma = np.tensordot([0.299, 0.587, 0.114], svhn["x"]["train"].astype(np.float64) / 255, axes=(0, 2))
    np.testing.assert_allclose(gray.x[:, 0].permute(1, 2, 0).numpy(), luma, atol=1e-5)


def test_limit_takes_the_same_seeded_subset(serve):
    serve("svhn")
    fetch_benchmark("svhn", progress=False)
    full = load_svhn("train")
    a, b = load_svhn("train", limit=4, seed=3), load_svhn("train", limit=4, seed=3)
    assert len(a) == 4 and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    positions = [int((full.x == a.x[i]).flatten(1).all(1).nonzero()) for i in range(4)]
    assert full.y[positions].tolist() == a.y.tolist()
    with pytest.raises(ValueError, match="positive"):
        load_svhn("train", limit=0)


@pytest.mark.parametrize("name, loader, domains", [
    ("office31", load_office31, ("amazon", "dslr", "webcam")),
    ("pacs", load_pacs, ("art_painting", "cartoon", "photo", "sketch")),
])
def test_image_benchmark_fetches_and_loads_each_domain(serve, isolated_data_roots, name, loader, domains):
    expected = serve(name)
    fetch_benchmark(name, progress=False, allow_unverified=(name == "pacs"))
    classes = OFFICE31_CLASSES if name == "office31" else PACS_CLASSES
    for domain in domains:
        d = loader(domain, image_size=24)
        counts = expected["counts"][domain]
        assert d.name == f"{name}-{domain}" and d.classes == classes
        assert d.x.shape == (sum(counts.values()), 3, 24, 24)
        assert sorted(d.y.tolist()) == sorted(classes.index(c) for c, k in counts.items() for _ in range(k))
    assert load_benchmark(name, domains[0][0].upper(), image_size=8).name == f"{name}-{domains[0]}"


def test_office31_original_layout_and_bad_folders(tmp_path):
    # A copy placed by hand from the original archive: <domain>/images/<class>/ at the top.
    root = tmp_path / "office31"
    for domain in ("amazon", "dslr", "webcam"):
        for rel, data in jpeg_tree(f"{domain}/images", {"mug": 1, "bike": 1}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    d = load_office31("W", image_size=16, root=tmp_path)
    assert d.name == "office31-webcam" and d.y.tolist() == [OFFICE31_CLASSES.index("bike"),
                                                            OFFICE31_CLASSES.index("mug")]
    with pytest.raises(ValueError, match="domains amazon, dslr, webcam"):
        load_office31("clipart", root=tmp_path)
    (root / "webcam" / "images" / "not_a_class").mkdir()
    with pytest.raises(ValueError, match="not_a_class"):
        load_office31("webcam", root=tmp_path)


# ----------------------------------------------------------------------------------------- failures
def test_corrupted_archive_is_rejected_and_nothing_stays(serve, isolated_data_roots):
    server = serve("mnist-m")["server"]
    path = server.folder / "mnist_m.tar.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="MD5") as err:
        fetch_benchmark("mnist-m", progress=False)
    assert "deleted" in str(err.value) and "data fetch mnist-m" in str(err.value)
    assert not isolated_data_roots[ENV].exists()


def test_interrupted_download_restarts_cleanly(serve, isolated_data_roots):
    server = serve("usps")["server"]
    server.behaviour["usps.t.bz2"] = "cut-once"
    with pytest.raises(DataNotFoundError, match="do not resume"):
        fetch_benchmark("usps", progress=False)
    assert not isolated_data_roots[ENV].exists()
    fetch_benchmark("usps", progress=False)
    assert server.requests.count("usps.t.bz2") == 2 and len(load_usps("test")) == 4


def test_pacs_refuses_without_permission_and_records_measured_sums(serve, isolated_data_roots):
    server = serve("pacs")["server"]
    with pytest.raises(UnverifiedDataError, match="--allow-unverified") as err:
        fetch_benchmark("pacs", progress=False)
    assert "data_scripts/fetch.py pacs" in str(err.value)
    assert server.requests == [] and not isolated_data_roots[ENV].exists()
    folder = fetch_benchmark("pacs", progress=False, allow_unverified=True)
    sums = (folder / UNVERIFIED_SUMS_FILE).read_text()
    for domain in ("art_painting", "cartoon", "photo", "sketch"):
        digest = hashlib.sha256((server.folder / f"{domain}.tgz").read_bytes()).hexdigest()
        assert f"{digest}  {domain}.tgz" in sums
    result = check_benchmark("pacs")
    assert result.pop("layout") is True and set(result.values()) == {None}


def test_missing_benchmark_says_how_to_get_it(isolated_data_roots):
    with pytest.raises(DataNotFoundError) as err:
        find_benchmark("svhn")
    message = str(err.value)
    assert "python -m tlcourse data fetch svhn" in message and "$TLCOURSE_DATA/svhn/" in message
    assert str(isolated_data_roots[ENV] / "svhn") in message
    with pytest.raises(DataNotFoundError, match="--allow-unverified"):
        load_pacs("photo")
    with pytest.raises(ValueError, match="Unknown benchmark 'imagenet'"):
        find_benchmark("imagenet")


def test_damaged_files_are_reported_at_load(serve):
    serve("usps")
    folder = fetch_benchmark("usps", progress=False)
    data = (folder / "usps.bz2").read_bytes()
    (folder / "usps.bz2").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt.*data fetch usps"):
        load_usps("train")
    assert check_benchmark("usps")["usps.bz2"] is False


def test_read_only_root_gives_a_clear_error(serve, tmp_path):
    serve("mnist")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="(?s)Cannot write.*TLCOURSE_DATA"):
        fetch_benchmark("mnist", root=blocker / "root", progress=False)


# ------------------------------------------------------------------------------------ command lines
def test_cli_fetch_offline_fails_clearly_and_writes_nothing(serve, isolated_data_roots, monkeypatch, capsys):
    from tlcourse.__main__ import main

    serve("mnist")
    dead = tuple(replace(r, sources=(Source(dead_url(r.filename), r.sources[0].known_hash),))
                 for r in BENCHMARKS["mnist"].files)
    monkeypatch.setitem(BENCHMARKS, "mnist", replace(BENCHMARKS["mnist"], files=dead))
    assert main(["data", "fetch", "mnist"]) != 0
    err = capsys.readouterr().err
    assert "no network" in err and "Traceback" not in err
    assert not isolated_data_roots[ENV].exists()


def test_cli_fetch_check_and_list(serve, capsys):
    from tlcourse.__main__ import main

    serve("usps")
    assert main(["data", "list"]) == 0
    assert re.search(r"usps\s+missing", capsys.readouterr().out)
    assert main(["data", "fetch", "usps"]) == 0
    assert "usps: ready in" in capsys.readouterr().out
    assert main(["data", "check", "usps"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok") >= 3 and "sha256 as published" in out
    assert main(["data", "fetch", "pacs"]) != 0
    assert "--allow-unverified" in capsys.readouterr().err


def _fetch_script():
    spec = importlib.util.spec_from_file_location("fetch_script", REPO / "data_scripts" / "fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_fetch_script_allow_unverified_check_and_errors(serve, tmp_path, capsys):
    main = _fetch_script()
    serve("pacs")
    root = tmp_path / "lab-data"
    assert main(["pacs", "--root", str(root), "--quiet"]) == 2
    assert "--allow-unverified" in capsys.readouterr().err and not root.exists()
    assert main(["pacs", "--root", str(root), "--quiet", "--allow-unverified"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" in out and "photo.tgz" in out and (root / "pacs" / "photo").is_dir()
    assert main(["--check", "pacs", "--root", str(root)]) == 0
    assert "unverified" in capsys.readouterr().out
    assert main([]) == 2
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    serve("usps")
    assert main(["usps", "--root", str(blocker / "root"), "--quiet"]) == 2
    assert "Cannot write" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the real table itself
_SUM = re.compile(r"^(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})$")


def test_real_table_sums_are_well_formed_and_only_pacs_is_unverified():
    for bench in BENCHMARKS.values():
        assert bench.licence and bench.hash_source and bench.homepage and bench.manual
        for remote in bench.files:
            assert remote.sources and all(s.url.startswith(("http://", "https://")) for s in remote.sources)
            for source in remote.sources:
                assert source.known_hash is None or _SUM.match(source.known_hash), (bench.name, source)
    assert [b.name for b in BENCHMARKS.values() if not b.verified] == ["pacs"]
    sha256 = {b.name for b in BENCHMARKS.values() if b.verified and
              all(s.known_hash.startswith("sha256:") for r in b.files for s in r.sources)}
    assert sha256 == {"mnist", "svhn", "usps"}


def test_readme_lists_every_url_and_sum():
    readme = (REPO / "data_scripts" / "README.md").read_text()
    for bench in BENCHMARKS.values():
        assert f"`{bench.name}`" in readme
        for remote in bench.files:
            for source in remote.sources:
                assert source.url in readme, source.url
                if source.known_hash:
                    assert source.known_hash.split(":")[1] in readme, (bench.name, remote.filename)


def test_catalog_lists_the_benchmarks(isolated_data_roots):
    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert set(BENCHMARKS) <= set(rows)
    assert "licence" in rows["svhn"]["source"] and "non-commercial" in rows["svhn"]["source"]
    assert rows["office31"]["status"] == "missing"
    assert rows["office31"]["location"] == str(isolated_data_roots[ENV] / "office31")
