"""The full benchmarks' registry: fetching each one all or nothing from a local server (the ``serve``
fixture), what its failures say, and the real table of URLs and sums (kept in step with
data_scripts/README.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tlcourse.library.data import (
    BENCHMARKS,
    ChecksumError,
    DataNotFoundError,
    UnverifiedDataError,
    check_benchmark,
    fetch_benchmark,
    find_benchmark,
    load_pacs,
    load_usps,
)
from tlcourse.library.data.store.download import UNVERIFIED_SUMS_FILE

REPO = Path(__file__).resolve().parents[4]
ENV = "env"  # key of isolated_data_roots: the $TLCOURSE_DATA folder


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


def test_read_only_root_gives_a_clear_error(serve, tmp_path):
    serve("mnist")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match=r"(?s)Cannot write.*TLCOURSE_DATA"):
        fetch_benchmark("mnist", root=blocker / "root", progress=False)


_SUM = re.compile(r"^(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})$")


def test_real_table_sums_are_well_formed_and_only_pacs_is_unverified():
    for bench in BENCHMARKS.values():
        assert bench.licence and bench.hash_source and bench.homepage and bench.manual
        for remote in bench.files:
            assert remote.sources and all(s.url.startswith(("http://", "https://")) for s in remote.sources)
            for source in remote.sources:
                assert source.known_hash is None or _SUM.match(source.known_hash), (bench.name, source)
    assert [b.name for b in BENCHMARKS.values() if not b.verified] == ["pacs"]
    sha256 = {
        b.name
        for b in BENCHMARKS.values()
        if b.verified and all(s.known_hash.startswith("sha256:") for r in b.files for s in r.sources)
    }
    assert sha256 == {"mnist", "svhn", "usps", "movie-polarity", "drug-reviews", "imdb"}


def test_readme_lists_every_url_and_sum():
    readme = (REPO / "data_scripts" / "README.md").read_text()
    for bench in BENCHMARKS.values():
        assert f"`{bench.name}`" in readme
        for remote in bench.files:
            for source in remote.sources:
                assert source.url in readme, source.url
                if source.known_hash:
                    assert source.known_hash.split(":")[1] in readme, (bench.name, remote.filename)


def test_an_unreadable_root_is_skipped_and_named(serve, isolated_data_roots, monkeypatch, deny_access):
    """A copy in the user cache is found though $TLCOURSE_DATA cannot be read; with none, the folder is named."""
    serve("usps")
    monkeypatch.setenv("TLCOURSE_DATA", str(isolated_data_roots["xdg"] / "tlcourse"))
    fetch_benchmark("usps", progress=False)  # lands in the user cache (pooch's folder under XDG_CACHE_HOME)
    blocked = isolated_data_roots[ENV]
    monkeypatch.setenv("TLCOURSE_DATA", str(blocked))
    deny_access(blocked, "is_dir")
    assert len(load_usps("test")) == 4
    with pytest.raises(DataNotFoundError) as err:
        find_benchmark("svhn")
    assert f"{blocked / 'svhn'}  (cannot be read: Permission denied" in str(err.value)


def test_fetch_replaces_a_damaged_download_instead_of_calling_it_ready(serve, isolated_data_roots, capsys):
    server = serve("usps")["server"]
    folder = fetch_benchmark("usps", progress=False)
    archive = next(f for f in folder.iterdir() if f.name.endswith(".bz2"))
    archive.write_bytes(archive.read_bytes()[:50])  # cut short
    requests = len(server.requests)
    assert fetch_benchmark("usps", progress=False) == folder
    assert len(server.requests) > requests and "damaged" in capsys.readouterr().err
    assert all(ok is not False for ok in check_benchmark("usps", folder).values())
