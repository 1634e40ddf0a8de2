"""Shared fixtures. Data fixtures: an isolated set of data roots, and the Debian copy of Fashion-MNIST."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# nbgrader runs the `alembic` command of its own environment: put this interpreter's bin folder first
# on PATH, so the tests work from `.venv/bin/python -m pytest` without an activated environment.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture
def isolated_data_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point every data root ($TLCOURSE_DATA, user cache, system folder) at empty folders under tmp_path."""
    from tlcourse.library.data import roots

    paths = {"env": tmp_path / "env-root", "xdg": tmp_path / "xdg-cache", "system": tmp_path / "system"}
    monkeypatch.setenv("TLCOURSE_DATA", str(paths["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(paths["xdg"]))
    monkeypatch.setattr(roots, "SYSTEM_DATA_ROOT", paths["system"])
    return paths


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def debian_fashion_mnist() -> Path:
    """Debian's copy of Fashion-MNIST; the test is skipped where the package is not installed."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if not all((DEBIAN_FASHION_MNIST / n).is_file() for n in names):
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed (no {DEBIAN_FASHION_MNIST}); "
                    "`sudo apt-get install dataset-fashion-mnist` enables this test")
    return DEBIAN_FASHION_MNIST
