"""Where tlcourse looks for data on disk, and how it checks files.

Search order, first hit wins:

1. ``$TLCOURSE_DATA`` when it is set (a folder you choose, e.g. on a shared drive);
2. the user cache, ``pooch.os_cache("tlcourse")`` (``~/.cache/tlcourse`` on Linux, moved by
   ``$XDG_CACHE_HOME``);
3. Debian's ``/usr/share/datasets`` (``apt-get install dataset-fashion-mnist``).

Downloads go to ``$TLCOURSE_DATA`` when it is set, else to the user cache: never to the system folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pooch

ENV_VAR = "TLCOURSE_DATA"
# Module constant rather than a literal inside data_roots(), so tests can point it at an empty folder.
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")


class DataNotFoundError(FileNotFoundError):
    """A dataset is not on this machine (or could not be downloaded); the message says how to get it."""


class ChecksumError(ValueError):
    """A data file's SHA-256 does not match the published one: the file is corrupt or not the right one."""


def user_cache_root() -> Path:
    """The per-user cache folder for tlcourse data (follows ``$XDG_CACHE_HOME`` as pooch does)."""
    return Path(pooch.os_cache("tlcourse"))


def data_roots() -> list[Path]:
    """The folders searched for datasets, in order: ``$TLCOURSE_DATA``, the user cache, ``/usr/share/datasets``.

    A dataset named ``NAME`` lives in ``<root>/NAME/``. Folders need not exist.
    """
    roots: list[Path] = []
    env = _env_root()
    if env:
        roots.append(env)
    roots.append(user_cache_root())
    roots.append(SYSTEM_DATA_ROOT)
    return roots


def download_root() -> Path:
    """Where downloads go: ``$TLCOURSE_DATA`` if set, else the user cache."""
    return _env_root() or user_cache_root()


def _env_root() -> Path | None:
    """``$TLCOURSE_DATA`` as a folder, or None when unset; a clear error when it names something else."""
    env = os.environ.get(ENV_VAR)
    if not env:
        return None
    root = Path(env).expanduser()
    if root.exists() and not root.is_dir():
        raise DataNotFoundError(f"{ENV_VAR}={env} is not a folder: point {ENV_VAR} at a folder, or unset it.")
    return root


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes as stored (read in ``chunk_bytes`` chunks, so memory stays small)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
