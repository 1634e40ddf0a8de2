"""Check, before any work, that an output file or folder can be written (`check_writable_file`,
`check_writable_folder`).

A command that writes its result at the end (a JSON summary, executed notebooks, a grades CSV) calls
these first, so that a bad path costs a one-line error instead of the whole run. Nothing is created: the
nearest folder that exists is probed with a temporary file (removed at once), which also catches
read-only file systems, where permission bits alone would say yes. Missing folders below it are left to
the writer, which creates them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _nearest_existing(path: Path, option: str, fix: str) -> Path:
    """The nearest existing ancestor of ``path`` (which does not exist); a clear error if it is a file."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: {parent} is a file, not a folder; {fix}.")
    return parent


def _probe(folder: Path, path: Path, option: str, fix: str) -> None:
    """Raise a clear error unless a file can be created in ``folder`` (the probe is removed at once)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".tlcourse-write-check-")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(
            f"{option} {path}: cannot write in {folder} ({reason}); {fix}, or make {folder} writable."
        ) from None
    os.close(handle)
    os.unlink(probe)


def _name_max(path: Path) -> int:
    """The longest file name the file system under ``path`` takes (255 where it cannot be asked)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_writable_file(path: str | os.PathLike[str], option: str, example: str = "out.json") -> Path:
    """Check that ``path`` can be written as a file; return it as a Path. Raise a one-line ValueError if not.

    Refused: an existing folder, a path below a regular file, a folder that cannot be written to (read-only
    permissions or file system). A missing parent folder is fine when the nearest existing one is writable.
    ``option`` names the command-line option (``"--json"``) in the message; ``example`` is the file name
    its fix suggests when ``path`` is a folder.
    """
    path = Path(path)
    fix = f"give {option} another path"
    limit = _name_max(path)
    if len(path.name.encode()) > limit:
        raise ValueError(
            f"{option}: the file name {path.name[:40]}... is {len(path.name.encode())} bytes long, more than this "
            f"file system's {limit}; {fix}."
        )
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder, not a file; give a file path, e.g. {option} {path / example}.")
    folder = path.parent if path.exists() else _nearest_existing(path, option, fix)
    _probe(folder, path, option, fix)
    return path


def check_writable_folder(path: str | os.PathLike[str], option: str) -> Path:
    """Check that files can be written into the folder ``path`` (existing or to be created); return it as a Path.

    Refused, with a one-line ValueError: a path that is a file, a path below a regular file, a folder that
    cannot be written to. ``option`` names the command-line option (``"--output"``) in the message.
    """
    path = Path(path)
    fix = f"give {option} another folder"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder; {fix}.")
    folder = path if path.is_dir() else _nearest_existing(path, option, fix)
    _probe(folder, path, option, fix)
    return path
