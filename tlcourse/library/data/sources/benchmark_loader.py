"""`load_benchmark(name, part)`: one entry point over the loaders of every full benchmark."""

from __future__ import annotations

from functools import partial

from ..domain import Domain
from ..store.benchmarks import get_benchmark
from ..store.image_folders import DOMAINS
from .digit_benchmarks import DIGIT_LOADERS
from .object_benchmarks import load_image_domain
from .text_reviews import (
    TextDomain,
    load_drug_reviews,
    load_imdb,
    load_polarity_reviews,
    load_polarity_sentences,
)

TEXT_LOADERS = {
    "movie-polarity": {"sentences": load_polarity_sentences, "reviews": load_polarity_reviews},
    "drug-reviews": {"all": load_drug_reviews},
    "imdb": {part: partial(load_imdb, part) for part in ("train", "test")},
}


def load_benchmark(name: str, part: str, **options) -> Domain | TextDomain:
    """One split or domain of a benchmark as a :class:`~tlcourse.library.data.domain.Domain`: the single entry
    point a ``--profile full`` experiment can map its domain names onto.

    Args:
        name: a key of :data:`~tlcourse.library.data.store.benchmarks.BENCHMARKS`.
        part: the split of a digit set (``"train"``, ``"test"``) or the domain of an image-folder set
            (``"amazon"``, ``"sketch"``, ...).
        options: passed on: ``size``, ``channels``, ``limit``, ``seed``, ``root`` for digits
            (:mod:`~tlcourse.library.data.sources.digit_benchmarks`); ``image_size``, ``limit``, ``seed``,
            ``root`` for Office-31 and PACS (:mod:`~tlcourse.library.data.sources.object_benchmarks`).
            The text corpora return a :class:`~tlcourse.library.data.sources.text_reviews.TextDomain`:
            ``load_benchmark("imdb", "train")``, ``("movie-polarity", "sentences" | "reviews")``,
            ``("drug-reviews", "all")``; their only option is ``root``.

    Example:
        ``load_benchmark("svhn", "train", size=28, channels=3, limit=20_000)``
    """
    get_benchmark(name)
    if name in DIGIT_LOADERS:
        return DIGIT_LOADERS[name](part, **options)
    if name in DOMAINS:
        return load_image_domain(name, part, **options)
    if name in TEXT_LOADERS:
        if part not in TEXT_LOADERS[name]:
            raise ValueError(f"{name}: part must be one of {tuple(TEXT_LOADERS[name])}, got {part!r}")
        return TEXT_LOADERS[name][part](**options)
    raise ValueError(f"{name!r} has no loader")  # every benchmark has one; kept for new entries
