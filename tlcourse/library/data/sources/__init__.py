"""Where images come from: each module reads or makes one kind of data (as `Domain` objects; the photos as tensors).

Offline: `fashion_mnist` (a local copy), `uci_digits` (bundled with scikit-learn), `font_digits` (rendered
from matplotlib's fonts), `photos` (scikit-learn's two sample photos). Full benchmarks, fetched once:
`digit_benchmarks` (MNIST, SVHN, USPS, MNIST-M, Syn Numbers), `object_benchmarks` (Office-31, PACS) and
`benchmark_loader` (one entry point over both); `course_format` converts their images to the course's format.
"""
