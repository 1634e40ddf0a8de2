"""Loaders for the full digit benchmarks: MNIST, SVHN, USPS, MNIST-M and Syn Numbers.

Each returns a :class:`~tlcourse.library.data.domain.Domain` like the offline data does, so a chapter switches
from ``load_fashion_mnist`` or ``render_font_digits`` to these by changing one call. By default every
digit set comes out as the course's 28x28 RGB: ``size`` resizes (antialiased bilinear), ``channels``
turns grayscale into RGB (repeated) or RGB into grayscale (ITU-R 601 luma). ``size=None`` and
``channels=None`` keep the native format.

Files are found in ``<root>/<name>/`` (see :func:`~tlcourse.library.data.store.benchmarks.find_benchmark`); fetch
them with ``python -m tlcourse data fetch NAME``. Loading does not hash the files (``data check NAME``
does); it checks shapes and labels and says to fetch again when a file is damaged.

The readers are small and ours: torchvision's MNIST, SVHN and USPS classes re-check their own MD5s
and insist on their own folder layout, so they cannot read a copy that tlcourse checked and placed.
The formats are the same: idx (MNIST), MATLAB v5 ``.mat`` via scipy (SVHN, as torchvision reads it),
LIBSVM text in bzip2 (USPS, as torchvision reads it), PNG folders (MNIST-M), saved tensors (Syn Numbers).
"""

from __future__ import annotations

import bz2
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..domain import Domain
from ..store.benchmarks import find_benchmark, get_benchmark
from .course_format import choose_subset, to_course_format
from .fashion_mnist import read_idx
from .uci_digits import DIGIT_CLASSES

SPLITS = ("train", "test")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _refetch(name: str) -> str:
    return f"Delete it and run   {get_benchmark(name).fetch_command}   to get a good copy."


def _domain(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    size: int | None,
    channels: int | None,
    limit: int | None,
    seed: int,
) -> Domain:
    keep = choose_subset(len(labels), limit, seed)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    return Domain(
        name=name, x=to_course_format(images, size, channels), y=labels.to(torch.int64), classes=DIGIT_CLASSES
    )


# ------------------------------------------------------------------------------------------------ MNIST
def read_mnist(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 1, 28, 28)`` and int64 labels ``(N,)`` from the idx files in ``folder``."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or (len(y) and int(y.max()) > 9):
        raise ValueError(
            f"{folder}: the {split} idx files are not MNIST (shapes {x.shape}, {y.shape}). " + _refetch("mnist")
        )
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def load_mnist(
    split: str = "train",
    *,
    size: int | None = 28,
    channels: int | None = 3,
    root: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> Domain:
    """MNIST (60,000 train / 10,000 test) as a :class:`Domain` named ``"mnist"``.

    Args:
        split: ``"train"`` or ``"test"``.
        size, channels: output format (see :func:`to_course_format`); native is 28x28, 1 channel.
        root: a data root or the ``mnist`` folder; by default all data roots are searched.
        limit: keep a seeded random subset of this many images (chosen before conversion, to save memory).
        seed: seed of that subset.
    """
    _check_split(split)
    x, y = read_mnist(find_benchmark("mnist", root), split)
    return _domain("mnist", x, y, size, channels, limit, seed)


# ------------------------------------------------------------------------------------------------- SVHN
def read_svhn(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 3, 32, 32)`` and labels in 0..9 from an SVHN ``*_32x32.mat`` file.

    The file stores ``X`` as ``(32, 32, 3, N)`` and ``y`` as ``(N, 1)`` with the digit 0 labelled 10.
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
        x, y = mat["X"], mat["y"]
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a readable SVHN .mat file ({err}). " + _refetch("svhn")) from err
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise ValueError(f"{path}: X {x.shape} and y {y.shape} are not SVHN's shapes. " + _refetch("svhn"))
    labels = torch.from_numpy(y.reshape(-1).astype(np.int64) % 10)  # 10 means the digit 0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))).to(torch.uint8), labels


def load_svhn(
    split: str = "train",
    *,
    size: int | None = 28,
    channels: int | None = 3,
    root: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> Domain:
    """SVHN cropped digits (73,257 train / 26,032 test) as a :class:`Domain` named ``"svhn"``.

    Native format 32x32 RGB; by default resized to 28x28. Other arguments as :func:`load_mnist`.
    """
    _check_split(split)
    x, y = read_svhn(find_benchmark("svhn", root) / f"{split}_32x32.mat")
    return _domain("svhn", x, y, size, channels, limit, seed)


# ------------------------------------------------------------------------------------------------- USPS
def read_usps(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 1, 16, 16)`` and labels in 0..9 from LIBSVM's ``usps.bz2`` / ``usps.t.bz2``.

    Each line is ``label index:value ...`` with values in [-1, 1] (mapped to 0..255) and labels 1..10
    for the digits 0..9 (torchvision reads them the same way). Indices a line leaves out are 0.
    """
    try:
        with bz2.open(path, "rt") as f:
            lines = [line.split() for line in f if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: the bzip2 stream is truncated or corrupt ({err}). " + _refetch("usps")) from err
    pixels = np.zeros((len(lines), 256), dtype=np.float32)
    labels = np.empty(len(lines), dtype=np.int64)
    try:
        for i, (label, *features) in enumerate(lines):
            labels[i] = int(float(label)) - 1
            for feature in features:
                index, value = feature.split(":")
                pixels[i, int(index) - 1] = float(value)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: line {i + 1} is not LIBSVM's USPS format ({err}). " + _refetch("usps")) from err
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{path}: labels must be 1..10, found {labels.min() + 1}..{labels.max() + 1}. " + _refetch("usps")
        )
    images = np.clip(np.rint((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 1, 16, 16)
    return torch.from_numpy(images), torch.from_numpy(labels)


def load_usps(
    split: str = "train",
    *,
    size: int | None = 28,
    channels: int | None = 3,
    root: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> Domain:
    """USPS (7,291 train / 2,007 test) as a :class:`Domain` named ``"usps"``.

    Native format 16x16 grayscale; by default resized to 28x28 RGB. Other arguments as :func:`load_mnist`.
    """
    _check_split(split)
    filename = "usps.bz2" if split == "train" else "usps.t.bz2"
    x, y = read_usps(find_benchmark("usps", root) / filename)
    return _domain("usps", x, y, size, channels, limit, seed)


# ---------------------------------------------------------------------------------------------- MNIST-M
def _read_png_folder(folder: Path, listing: Sequence[tuple[str, int]], name: str) -> torch.Tensor:
    from PIL import Image

    images = None
    for i, (filename, _) in enumerate(listing):
        try:
            with Image.open(folder / filename) as im:
                pixels = np.asarray(im.convert("RGB"))
        except OSError as err:
            raise ValueError(f"{folder / filename}: unreadable image ({err}). " + _refetch(name)) from err
        if images is None:
            images = np.empty((len(listing), *pixels.shape), dtype=np.uint8)
        if pixels.shape != images.shape[1:]:
            raise ValueError(
                f"{folder / filename}: size {pixels.shape} differs from {images.shape[1:]}. " + _refetch(name)
            )
        images[i] = pixels
    if images is None:
        raise ValueError(f"{folder}: no images listed. " + _refetch(name))
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def read_mnist_m(
    folder: Path, split: str, limit: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 3, 28, 28)`` and labels from Ganin's layout: ``mnist_m/mnist_m_<split>/*.png``
    with ``mnist_m/mnist_m_<split>_labels.txt`` (lines ``00000000.png 5``). With ``limit``, only a seeded
    random subset of the PNGs is decoded."""
    base = folder / "mnist_m"
    labels_file = base / f"mnist_m_{split}_labels.txt"
    try:
        listing = [
            (parts[0], int(parts[1]))
            for parts in (line.split() for line in labels_file.read_text().splitlines())
            if parts
        ]
    except (OSError, ValueError, IndexError) as err:
        raise ValueError(f"{labels_file}: unreadable label file ({err}). " + _refetch("mnist-m")) from err
    keep = choose_subset(len(listing), limit, seed)
    if keep is not None:
        listing = [listing[i] for i in keep.tolist()]
    labels = torch.tensor([label for _, label in listing], dtype=torch.int64)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise ValueError(f"{labels_file}: labels must lie in 0..9. " + _refetch("mnist-m"))
    return _read_png_folder(base / f"mnist_m_{split}", listing, "mnist-m"), labels


def load_mnist_m(
    split: str = "train",
    *,
    size: int | None = 28,
    channels: int | None = 3,
    root: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> Domain:
    """Ganin's MNIST-M (59,001 train / 9,001 test) as a :class:`Domain` named ``"mnist-m"``.

    Native format 28x28 RGB. Decoding the 59,001 PNGs takes a few seconds; ``limit`` decodes only a
    seeded subset. Other arguments as :func:`load_mnist`.
    """
    _check_split(split)
    x, y = read_mnist_m(find_benchmark("mnist-m", root), split, limit, seed)
    return _domain("mnist-m", x, y, size, channels, None, seed)


# ------------------------------------------------------------------------------------------ Syn Numbers
def read_syn_numbers(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 3, 32, 32)`` and labels from a saved ``(images (N, 32, 32, 3), labels)`` pair.

    Loaded with ``torch.load(weights_only=True)``: plain tensors only, no pickled code runs.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = data
        images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        raise ValueError(
            f"{path}: not a readable Syn Numbers tensor file ({type(err).__name__}: {err}). " + _refetch("syn-numbers")
        ) from err
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or labels.shape != (len(images),):
        raise ValueError(
            f"{path}: shapes {tuple(images.shape)} and {tuple(labels.shape)} are not Syn "
            "Numbers' (N, 32, 32, 3) and (N,). " + _refetch("syn-numbers")
        )
    # Labels are 0..9; % 10 also accepts the SVHN-style 10-for-zero of some repackagings.
    return images.to(torch.uint8).permute(0, 3, 1, 2), labels.to(torch.int64).remainder(10)


def load_syn_numbers(
    split: str = "train",
    *,
    size: int | None = 28,
    channels: int | None = 3,
    root: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> Domain:
    """Syn Numbers / SynDigits (479,400 train / 9,553 test) as a :class:`Domain` named ``"syn-numbers"``.

    Native format 32x32 RGB. The full train split is 5.9 GB as float32 at 32x32 (4.5 GB at 28x28): pass
    ``limit`` to keep a seeded subset (chosen before conversion). Other arguments as :func:`load_mnist`.
    """
    _check_split(split)
    x, y = read_syn_numbers(find_benchmark("syn-numbers", root) / f"synth_{split}.pt")
    return _domain("syn-numbers", x, y, size, channels, limit, seed)


# --------------------------------------------------------------------------------------- one entry point
DIGIT_LOADERS = {
    "mnist": load_mnist,
    "svhn": load_svhn,
    "usps": load_usps,
    "mnist-m": load_mnist_m,
    "syn-numbers": load_syn_numbers,
}
