"""Data: domains, where their images come from, how they are shifted, and where datasets live on disk.

The public API of the data package; import from here. Its parts:

* `domain`: :class:`Domain`, the labelled set of images every task is made of;
* `sources/`: where images come from (Fashion-MNIST, the UCI digits, font digits, sample photos, and the
  full benchmarks' readers: digits, objects), and chapter 6's texts (:class:`TextDomain`: movie-review
  sentences and reviews, drug reviews, IMDB) and pretrained text resources (GloVe, the MiniLM encoder);
* `shifts/`: how a domain is shifted (image transforms, label priors, class sets, domain families);
* `store/`: where data lives (data roots, checked downloads, the benchmarks' registry);
* `catalog`: every dataset the course knows, for ``python -m tlcourse data list|check|fetch``.

Everything here works offline: Fashion-MNIST from a local copy (``python -m tlcourse data fetch
fashion-mnist`` gets one), the UCI digits and photos bundled with scikit-learn, and digits rendered from
matplotlib's fonts. The full benchmarks (MNIST, SVHN, USPS, MNIST-M, Syn Numbers, Office-31, PACS) need
a network once: ``python -m tlcourse data fetch NAME`` downloads and checks them, and ``load_mnist``,
``load_svhn``, ... ``load_office31``, ``load_pacs`` (or ``load_benchmark(name, part)``) return them as
the same ``Domain`` objects. Chapter 6's corpora are fetched the same way (``python -m tlcourse data fetch
movie-polarity``, ``drug-reviews``, ``imdb``) and load as :class:`TextDomain` objects
(``load_polarity_sentences``, ``load_polarity_reviews``, ``load_drug_reviews``, ``load_imdb``).
"""

import importlib

# Each public name and the module that defines it. Nothing is imported until a name is first used (PEP 562),
# so that `tlcourse.library.data.store`'s light tools (signals, data roots, writable folders) load without torch.
_WHERE = {
    "add_noise": "shifts.image_transforms",
    "BENCHMARKS": "store.benchmarks",
    "check_benchmark": "store.benchmarks",
    "check_dataset": "catalog",
    "check_fashion_mnist": "sources.fashion_mnist",
    "ChecksumError": "store.roots",
    "class_set_domain": "shifts.class_sets",
    "CLASS_SET_SPLITS": "shifts.class_sets",
    "colorize": "shifts.image_transforms",
    "colour_by_label": "shifts.domain_families",
    "counts_for_prior": "shifts.label_priors",
    "data_roots": "store.roots",
    "DataNotFoundError": "store.roots",
    "DATASETS": "catalog",
    "digit_fonts": "sources.font_digits",
    "dirichlet_prior": "shifts.label_priors",
    "Domain": "domain",
    "DOMAIN_SHIFTS": "shifts.image_transforms",
    "download_root": "store.roots",
    "fetch_benchmark": "store.benchmarks",
    "fetch_dataset": "catalog",
    "fetch_fashion_mnist": "sources.fashion_mnist",
    "find_benchmark": "store.benchmarks",
    "find_fashion_mnist": "sources.fashion_mnist",
    "glove_folder": "sources.pretrained_text",
    "invert": "shifts.image_transforms",
    "knock_out_prior": "shifts.label_priors",
    "list_datasets": "catalog",
    "load_benchmark": "sources.benchmark_loader",
    "load_drug_reviews": "sources.text_reviews",
    "load_fashion_mnist": "sources.fashion_mnist",
    "load_glove": "sources.pretrained_text",
    "load_imdb": "sources.text_reviews",
    "load_mnist": "sources.digit_benchmarks",
    "load_mnist_m": "sources.digit_benchmarks",
    "load_office31": "sources.object_benchmarks",
    "load_pacs": "sources.object_benchmarks",
    "load_polarity_reviews": "sources.text_reviews",
    "load_polarity_sentences": "sources.text_reviews",
    "load_svhn": "sources.digit_benchmarks",
    "load_syn_numbers": "sources.digit_benchmarks",
    "load_uci_digits": "sources.uci_digits",
    "load_usps": "sources.digit_benchmarks",
    "make_target": "shifts.image_transforms",
    "minilm_folder": "sources.pretrained_text",
    "one_class_prior": "shifts.label_priors",
    "photo_blend": "shifts.image_transforms",
    "random_contrasting_colours": "colours",
    "read_drug_reviews": "sources.text_reviews",
    "read_idx": "sources.fashion_mnist",
    "read_polarity_csv": "sources.text_reviews",
    "render_font_digits": "sources.font_digits",
    "resample_to_prior": "shifts.label_priors",
    "rotate": "shifts.image_transforms",
    "rotate_images": "shifts.image_transforms",
    "rotated_family": "shifts.domain_families",
    "ROTATIONS": "shifts.domain_families",
    "sample_photos": "sources.photos",
    "SENTIMENT_CLASSES": "sources.text_reviews",
    "sha256_file": "store.roots",
    "SPURIOUS_AGREEMENT": "shifts.domain_families",
    "spurious_colour_family": "shifts.domain_families",
    "style_family": "shifts.domain_families",
    "STYLES": "shifts.domain_families",
    "TEXT_CORPORA": "store.benchmarks",
    "TextDomain": "sources.text_reviews",
    "unverified_sums": "store.benchmarks",
    "UnverifiedDataError": "store.download",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # once is enough
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
