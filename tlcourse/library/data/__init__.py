"""Data: domains, where their images come from, how they are shifted, and where datasets live on disk.

The public API of the data package; import from here. Its parts:

* `domain`: :class:`Domain`, the labelled set of images every task is made of;
* `sources/`: where images come from (Fashion-MNIST, the UCI digits, font digits, sample photos, and the
  full benchmarks' readers: digits, objects);
* `shifts/`: how a domain is shifted (image transforms, label priors, class sets, domain families);
* `store/`: where data lives (data roots, checked downloads, the benchmarks' registry);
* `catalog`: every dataset the course knows, for ``python -m tlcourse data list|check|fetch``.

Everything here works offline: Fashion-MNIST from a local copy (``python -m tlcourse data fetch
fashion-mnist`` gets one), the UCI digits and photos bundled with scikit-learn, and digits rendered from
matplotlib's fonts. The full benchmarks (MNIST, SVHN, USPS, MNIST-M, Syn Numbers, Office-31, PACS) need
a network once: ``python -m tlcourse data fetch NAME`` downloads and checks them, and ``load_mnist``,
``load_svhn``, ... ``load_office31``, ``load_pacs`` (or ``load_benchmark(name, part)``) return them as
the same ``Domain`` objects.
"""

from .catalog import DATASETS, check_dataset, fetch_dataset, list_datasets
from .colours import random_contrasting_colours
from .domain import Domain
from .shifts.class_sets import CLASS_SET_SPLITS, class_set_domain
from .shifts.domain_families import (
    ROTATIONS,
    SPURIOUS_AGREEMENT,
    STYLES,
    colour_by_label,
    rotated_family,
    spurious_colour_family,
    style_family,
)
from .shifts.image_transforms import (
    DOMAIN_SHIFTS,
    add_noise,
    colorize,
    invert,
    make_target,
    photo_blend,
    rotate,
    rotate_images,
)
from .shifts.label_priors import counts_for_prior, dirichlet_prior, knock_out_prior, one_class_prior, resample_to_prior
from .sources.benchmark_loader import load_benchmark
from .sources.digit_benchmarks import load_mnist, load_mnist_m, load_svhn, load_syn_numbers, load_usps
from .sources.fashion_mnist import (
    check_fashion_mnist,
    fetch_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)
from .sources.font_digits import digit_fonts, render_font_digits
from .sources.object_benchmarks import load_office31, load_pacs
from .sources.photos import sample_photos
from .sources.uci_digits import load_uci_digits
from .store.benchmarks import BENCHMARKS, check_benchmark, fetch_benchmark, find_benchmark, unverified_sums
from .store.download import UnverifiedDataError
from .store.roots import ChecksumError, DataNotFoundError, data_roots, download_root, sha256_file

__all__ = [
    "BENCHMARKS",
    "CLASS_SET_SPLITS",
    "DATASETS",
    "DOMAIN_SHIFTS",
    "ROTATIONS",
    "SPURIOUS_AGREEMENT",
    "STYLES",
    "ChecksumError",
    "DataNotFoundError",
    "Domain",
    "UnverifiedDataError",
    "add_noise",
    "check_benchmark",
    "check_dataset",
    "check_fashion_mnist",
    "class_set_domain",
    "colorize",
    "colour_by_label",
    "counts_for_prior",
    "data_roots",
    "digit_fonts",
    "dirichlet_prior",
    "download_root",
    "fetch_benchmark",
    "fetch_dataset",
    "fetch_fashion_mnist",
    "find_benchmark",
    "find_fashion_mnist",
    "invert",
    "knock_out_prior",
    "list_datasets",
    "load_benchmark",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_m",
    "load_office31",
    "load_pacs",
    "load_svhn",
    "load_syn_numbers",
    "load_uci_digits",
    "load_usps",
    "make_target",
    "one_class_prior",
    "photo_blend",
    "random_contrasting_colours",
    "read_idx",
    "render_font_digits",
    "resample_to_prior",
    "rotate",
    "rotate_images",
    "rotated_family",
    "sample_photos",
    "sha256_file",
    "spurious_colour_family",
    "style_family",
    "unverified_sums",
]
