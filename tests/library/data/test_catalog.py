"""The catalog of every dataset, and the two command lines over it: ``python -m tlcourse data
list|check|fetch`` and ``data_scripts/fetch.py`` (against the ``serve`` fixture: no internet)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import replace
from pathlib import Path

import pytest

from tlcourse.library.data import BENCHMARKS, catalog
from tlcourse.library.data.store.download import Source

REPO = Path(__file__).resolve().parents[3]
FETCH = "python -m tlcourse data fetch fashion-mnist"
ENV = "env"  # key of isolated_data_roots: the $TLCOURSE_DATA folder


def test_catalog_lists_the_benchmarks(isolated_data_roots):
    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert set(BENCHMARKS) <= set(rows)
    assert "licence" in rows["svhn"]["source"] and "non-commercial" in rows["svhn"]["source"]
    assert rows["office31"]["status"] == "missing"
    assert rows["office31"]["location"] == str(isolated_data_roots[ENV] / "office31")


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


def test_cli_fetch_offline_fails_clearly_and_writes_nothing(serve, isolated_data_roots, monkeypatch, capsys, dead_url):
    from tlcourse.__main__ import main

    serve("mnist")
    dead = tuple(
        replace(r, sources=(Source(dead_url(r.filename), r.sources[0].known_hash),)) for r in BENCHMARKS["mnist"].files
    )
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


def test_data_list_calls_a_damaged_fashion_mnist_damaged(isolated_data_roots, debian_fashion_mnist):
    import shutil

    from tlcourse.library.data import catalog

    copy = isolated_data_roots["env"] / "fashion-mnist"
    shutil.copytree(debian_fashion_mnist, copy)
    name = "t10k-labels-idx1-ubyte.gz"
    (copy / name).write_bytes((copy / name).read_bytes()[:2000])
    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert rows["fashion-mnist"]["status"] == "damaged" and rows["fashion-mnist"]["location"] == str(copy)
