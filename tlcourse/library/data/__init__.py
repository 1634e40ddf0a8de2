"""Data: domains, domain shifts, label-shift samplers, and where datasets live on disk.

Everything here works offline: Fashion-MNIST from a local copy (``python -m tlcourse data fetch
fashion-mnist`` gets one), the UCI digits and photos bundled with scikit-learn, and digits rendered from
matplotlib's fonts. The full benchmarks (MNIST, SVHN, USPS, MNIST-M, Syn Numbers, Office-31, PACS) need
a network once: ``python -m tlcourse data fetch NAME`` downloads and checks them, and ``load_mnist``,
``load_svhn``, ... ``load_office31``, ``load_pacs`` (or ``load_benchmark(name, part)``) return them as
the same ``Domain`` objects.
"""

from .benchmarks import BENCHMARKS, check_benchmark, fetch_benchmark, find_benchmark, load_benchmark
from .catalog import DATASETS, check_dataset, fetch_dataset, list_datasets
from .digits import load_uci_digits
from .digits_benchmarks import load_mnist, load_mnist_m, load_svhn, load_syn_numbers, load_usps
from .domain import Domain
from .domains import (
    DOMAIN_SHIFTS,
    add_noise,
    colorize,
    invert,
    make_target,
    photo_blend,
    random_contrasting_colours,
    rotate,
    rotate_images,
    sample_photos,
)
from .fashion_mnist import (
    check_fashion_mnist,
    fetch_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)
from .download import UnverifiedDataError
from .fonts import digit_fonts, render_font_digits
from .object_benchmarks import load_office31, load_pacs
from .roots import ChecksumError, DataNotFoundError, data_roots, download_root, sha256_file
from .shift import counts_for_prior, dirichlet_prior, knock_out_prior, one_class_prior, resample_to_prior

__all__ = [
    "BENCHMARKS", "DATASETS", "DOMAIN_SHIFTS", "ChecksumError", "DataNotFoundError", "Domain",
    "UnverifiedDataError", "check_benchmark", "fetch_benchmark", "find_benchmark", "load_benchmark",
    "load_mnist", "load_mnist_m", "load_office31", "load_pacs", "load_svhn", "load_syn_numbers", "load_usps",
    "add_noise", "check_dataset", "check_fashion_mnist", "colorize", "counts_for_prior", "data_roots",
    "digit_fonts", "dirichlet_prior", "download_root", "fetch_dataset", "fetch_fashion_mnist",
    "find_fashion_mnist", "invert", "knock_out_prior", "list_datasets", "load_fashion_mnist",
    "load_uci_digits", "make_target", "one_class_prior", "photo_blend", "random_contrasting_colours",
    "read_idx", "render_font_digits", "resample_to_prior", "rotate", "rotate_images", "sample_photos",
    "sha256_file",
]
