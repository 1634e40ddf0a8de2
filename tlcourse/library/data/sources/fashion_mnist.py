"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 real 28x28 grayscale photos of clothes, 10 classes.

The four files are looked up in ``<root>/fashion-mnist/`` for each root in :func:`data_roots`
(``$TLCOURSE_DATA``, the user cache, Debian's ``/usr/share/datasets``), as published (``.gz``) or
decompressed. :func:`fetch_fashion_mnist` downloads them from upstream, checked against the published
SHA-256 of each ``.gz``. :func:`check_fashion_mnist` checks any copy against the SHA-256 of the
*decompressed* payload, because Debian recompressed the files: its ``.gz`` bytes differ from upstream's
while the images are the same.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..domain import Domain
from ..store.download import Remote, published, staged_fetch
from ..store.roots import ENV_VAR, DataNotFoundError, data_roots, download_root

NAME = "fashion-mnist"
FETCH_COMMAND = "python -m tlcourse data fetch fashion-mnist"
UPSTREAM_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MIRROR_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class IdxFile:
    """One published file: where to get it and the SHA-256 sums it must have.

    Attributes:
        filename: the name as published, ending in ``.gz``.
        urls: download locations, tried in order (upstream first, then the mirror).
        gz_sha256: SHA-256 of the ``.gz`` as published upstream (checked on download).
        payload_sha256: SHA-256 of the decompressed idx bytes (checked for any copy, e.g. Debian's).
        payload_bytes: size of the decompressed idx file in bytes.
    """

    filename: str
    urls: tuple[str, ...]
    gz_sha256: str
    payload_sha256: str
    payload_bytes: int

    @property
    def plain_name(self) -> str:
        """The decompressed file name (``train-images-idx3-ubyte``)."""
        return self.filename.removesuffix(".gz")


def _published(filename: str, gz_sha256: str, payload_sha256: str, payload_bytes: int) -> IdxFile:
    return IdxFile(filename, (UPSTREAM_URL + filename, MIRROR_URL + filename), gz_sha256, payload_sha256, payload_bytes)


# Upstream .gz SHA-256 sums as TensorFlow Datasets records them for these URLs, with their sizes
# (tensorflow/datasets, tensorflow_datasets/url_checksums/fashion_mnist.txt); torchvision's prototype
# datasets pin the same four sums (torchvision/prototype/datasets/_builtin/mnist.py, FashionMNIST), and
# the upstream README's MD5s (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...) go with these files.
# (An earlier version of this table had sums of a third-party re-compressed copy, which upstream's files
# would have failed.) Payload sums measured on Debian's copy, whose .gz bytes differ (no file name in
# the gzip header: 24 bytes shorter) while the images are the same.
FILES: dict[str, IdxFile] = {
    "train-images": _published(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        47_040_016,
    ),
    "train-labels": _published(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60_008,
    ),
    "t10k-images": _published(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        7_840_016,
    ),
    "t10k-labels": _published(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10_008,
    ),
}
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images", "train-labels"),
    "test": ("t10k-images", "t10k-labels"),
}

# idx type codes (http://yann.lecun.com/exdb/mnist/): byte 3 of the magic number.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


# ---------------------------------------------------------------------------------------------- finding
def _file_in(folder: Path, file: IdxFile) -> Path | None:
    """The copy of ``file`` in ``folder``, compressed or not, or None."""
    for name in (file.filename, file.plain_name):
        if (folder / name).is_file():
            return folder / name
    return None


def _candidate_folders(root: Path | None) -> list[Path]:
    if root is not None:
        root = Path(root).expanduser()
        # Accept both a data root and the fashion-mnist folder itself.
        return [root / NAME, root]
    return [r / NAME for r in data_roots()]


def _not_found_message(searched: list[Path], partial: dict[Path, int], unreadable: dict[Path, str]) -> str:
    lines = [
        f"Fashion-MNIST is not on this machine. Looked for its four files "
        f"({', '.join(f.filename for f in FILES.values())}) in:"
    ]
    for folder in searched:
        note = f"  (only {partial[folder]} of {len(FILES)} files there)" if folder in partial else ""
        if folder in unreadable:
            note = f"  (cannot be read: {unreadable[folder]}; fix its permissions, or point {ENV_VAR} elsewhere)"
        lines.append(f"  {folder}{note}")
    lines += [
        f"Fix: run   {FETCH_COMMAND}   (or `make data`) to download and check it.",
        "Offline machine: `sudo apt-get install dataset-fashion-mnist`, or copy the files into "
        "$TLCOURSE_DATA/fashion-mnist/ (set TLCOURSE_DATA to any folder).",
    ]
    return "\n".join(lines)


def find_fashion_mnist(root: Path | None = None) -> Path:
    """The folder that holds all four Fashion-MNIST files.

    Args:
        root: a data root (or the ``fashion-mnist`` folder itself) to look in; by default every folder
            of :func:`data_roots` is tried in order.

    Raises:
        DataNotFoundError: no folder holds all four files; the message lists the folders searched (and
            any that could not be read, which are skipped) and the command that fetches the data.
    """
    searched = _candidate_folders(root)
    partial: dict[Path, int] = {}
    unreadable: dict[Path, str] = {}
    for folder in searched:
        try:
            present = sum(_file_in(folder, f) is not None for f in FILES.values())
        except OSError as err:  # a folder we may not look into: try the next one, and say so if none has it
            unreadable[folder] = err.strerror or type(err).__name__
            continue
        if present == len(FILES):
            return folder
        if present:
            partial[folder] = present
    raise DataNotFoundError(_not_found_message(searched, partial, unreadable))


# --------------------------------------------------------------------------------------------- fetching
OFFLINE_HINT = (
    "Offline machine: `sudo apt-get install dataset-fashion-mnist`, or copy the four files into "
    "$TLCOURSE_DATA/fashion-mnist/ (set TLCOURSE_DATA to any folder)."
)


def _remote(file: IdxFile) -> Remote:
    return published(file.filename, f"sha256:{file.gz_sha256}", *file.urls)


def fetch_fashion_mnist(root: Path | None = None, progress: bool = True) -> Path:
    """Return the Fashion-MNIST folder, downloading the four files first if they are not found.

    A copy that is found is first checked (`check_fashion_mnist`): a truncated or wrong one is not
    returned but replaced by a download (into the download root, which is searched first). Files
    download into a hidden staging folder next to the target and move into ``<root>/fashion-mnist/``
    only after all four matched their published SHA-256; on any failure the staging folder (and any
    folder this call created) is removed, so no partial file is ever left.

    Args:
        root: the data root to look in and download to; by default every root of :func:`data_roots` is
            searched and downloads go to :func:`download_root`.
        progress: show a progress bar per file.

    Raises:
        ChecksumError: a downloaded file had the wrong SHA-256 (it was deleted).
        DataNotFoundError: the files could not be downloaded (no network); nothing was written.
        PermissionError: the root is not writable.
    """
    damaged = ""
    try:
        found = find_fashion_mnist(root)
    except DataNotFoundError:
        pass
    else:
        # Four files are not yet a dataset: a truncated or wrong copy must not be called ready.
        bad = [name for name, ok in check_fashion_mnist(found).items() if not ok]
        if not bad:
            return found
        damaged = f"The copy in {found} is damaged ({', '.join(bad)} failed the SHA-256 check of its contents). "
    base = Path(root).expanduser() if root is not None else download_root()
    if damaged:
        print(f"{damaged}Downloading a good copy into {base / NAME} ...", file=sys.stderr)
    try:
        return staged_fetch(
            NAME,
            [_remote(f) for f in FILES.values()],
            base,
            progress=progress,
            fetch_command=FETCH_COMMAND,
            offline_hint=OFFLINE_HINT,
        )
    except DataNotFoundError as err:
        if not damaged:
            raise
        raise DataNotFoundError(f"{damaged}Delete it, then get a good copy.\n{err}") from err


# --------------------------------------------------------------------------------------------- checking
def _payload_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the decompressed bytes (``.gz`` detected by its magic number)."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_fashion_mnist(path: Path | None = None) -> dict[str, bool]:
    """Verify each file's decompressed payload against its known SHA-256 and size.

    Args:
        path: the ``fashion-mnist`` folder; by default the one :func:`find_fashion_mnist` finds.

    Returns:
        ``{filename: ok}`` for the four published file names; a missing or unreadable file is ``False``.
    """
    folder = find_fashion_mnist() if path is None else Path(path).expanduser()
    result: dict[str, bool] = {}
    for file in FILES.values():
        found = _file_in(folder, file)
        try:
            ok = found is not None and _payload_digest(found) == (file.payload_sha256, file.payload_bytes)
        except (OSError, EOFError, zlib.error):  # truncated or corrupt gzip stream
            ok = False
        result[file.filename] = ok
    return result


# ---------------------------------------------------------------------------------------------- reading
def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (the MNIST format), gzipped or plain.

    Returns:
        The array with the shape and dtype stored in the header, e.g. uint8 ``(60000, 28, 28)`` for
        ``train-images-idx3-ubyte.gz`` and uint8 ``(60000,)`` for the labels. The array is read-only.

    Raises:
        ValueError: the file is not an idx file, or is truncated or corrupt (the message says to fetch
            it again).
    """
    path = Path(path)
    fix = f"Delete it and run   {FETCH_COMMAND}   to get a good copy."
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as f:
            data = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: the gzip stream is truncated or corrupt ({err}). {fix}") from err
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise ValueError(f"{path}: not an idx file (magic number {data[:4].hex() or 'missing'}). {fix}")
    dtype = np.dtype(_IDX_DTYPES[data[2]]).newbyteorder(">")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated idx header ({len(data)} bytes). {fix}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: an idx file of shape {shape} has {expected} bytes, this one has {len(data)} "
            f"({'truncated' if len(data) < expected else 'trailing bytes'}). {fix}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


@functools.lru_cache(maxsize=4)
def _decoded(images: Path, labels: Path, stamp: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and labels (N,), read once per process (``stamp`` notices a new file).

    Private: callers get converted copies, so nobody can change the cached tensors in place.
    """
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8 or y.shape != (len(x),):
        raise ValueError(
            f"{images} and {labels} are not Fashion-MNIST (shapes {x.shape} and {y.shape}); "
            f"run   {FETCH_COMMAND}   to get the real files."
        )
    if len(y) and int(y.max()) >= len(CLASSES):
        raise ValueError(f"{labels}: labels must lie in [0, 10), found {int(y.max())}.")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def load_fashion_mnist(split: str = "train", root: Path | None = None) -> Domain:
    """Fashion-MNIST as a :class:`Domain` named ``"fashion-mnist"``.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        root: a data root (or the ``fashion-mnist`` folder); by default :func:`find_fashion_mnist` searches.

    Returns:
        A domain with float32 images ``(N, 1, 28, 28)`` in [0, 1], int64 labels ``(N,)`` and the 10
        class names. The decoded files are cached per process (about 55 MB of uint8), and every call
        returns fresh tensors, so changing them in place never changes what the next call returns.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    folder = find_fashion_mnist(root)
    images, labels = (_file_in(folder, FILES[key]) for key in SPLITS[split])
    assert images is not None and labels is not None  # find_fashion_mnist checked
    stamp = tuple(int(v) for p in (images, labels) for v in (p.stat().st_mtime_ns, p.stat().st_size))
    x8, y8 = _decoded(images.resolve(), labels.resolve(), stamp)
    x = x8.to(torch.float32).div_(255.0).unsqueeze(1)  # new tensors: the cache stays as it was
    y = y8.to(torch.int64, copy=True)
    return Domain(name=NAME, x=x, y=y, classes=CLASSES)
