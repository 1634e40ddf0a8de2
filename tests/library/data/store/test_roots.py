"""Data roots: the folders searched, in order, and the SHA-256 of a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlcourse.library.data import data_roots, download_root, sha256_file


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


@pytest.mark.parametrize("kind", ["file", "device"])
def test_tlcourse_data_that_is_not_a_folder_is_named(tmp_path, monkeypatch, kind):
    from tlcourse.library.data.store import roots

    target = tmp_path / "afile" if kind == "file" else Path("/dev/null")
    if kind == "file":
        target.write_text("x")
    monkeypatch.setenv("TLCOURSE_DATA", str(target))
    for call in (roots.data_roots, roots.download_root):
        with pytest.raises(roots.DataNotFoundError, match=r"TLCOURSE_DATA=.* is not a folder: point"):
            call()
