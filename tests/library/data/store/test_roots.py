"""Data roots: the folders searched, in order, and the SHA-256 of a file."""

from __future__ import annotations

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
