"""The digit benchmarks' readers and loaders (MNIST, SVHN, USPS, MNIST-M, Syn Numbers) on tiny fake files
in the real formats (the ``serve`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse.library.data import check_benchmark, fetch_benchmark, load_mnist, load_svhn, load_usps


def test_native_formats_keep_the_pixels(serve):
    mnist, svhn, usps = serve("mnist"), serve("svhn"), serve("usps")
    for name in ("mnist", "svhn", "usps"):
        fetch_benchmark(name, progress=False)
    d = load_mnist("train", size=None, channels=None)
    np.testing.assert_allclose(d.x[:, 0].numpy() * 255, mnist["x"]["train"], atol=1e-3)
    d = load_svhn("test", size=None, channels=None)
    assert d.x.shape == (5, 3, 32, 32)
    np.testing.assert_allclose(d.x.permute(2, 3, 1, 0).numpy() * 255, svhn["x"]["test"], atol=1e-3)
    assert d.y.tolist() == [5, 6, 7, 8, 9]
    d = load_usps("train", size=None, channels=None)
    assert d.x.shape == (9, 1, 16, 16)
    np.testing.assert_allclose(d.x[:, 0].numpy() * 255, usps["x"]["train"], atol=0.51)  # rounding of -1..1
    gray = load_svhn("train", size=None, channels=1)
    luma = np.tensordot([0.299, 0.587, 0.114], svhn["x"]["train"].astype(np.float64) / 255, axes=(0, 2))
    np.testing.assert_allclose(gray.x[:, 0].permute(1, 2, 0).numpy(), luma, atol=1e-5)


def test_limit_takes_the_same_seeded_subset(serve):
    serve("svhn")
    fetch_benchmark("svhn", progress=False)
    full = load_svhn("train")
    a, b = load_svhn("train", limit=4, seed=3), load_svhn("train", limit=4, seed=3)
    assert len(a) == 4 and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    positions = [int((full.x == a.x[i]).flatten(1).all(1).nonzero()) for i in range(4)]
    assert full.y[positions].tolist() == a.y.tolist()
    with pytest.raises(ValueError, match="positive"):
        load_svhn("train", limit=0)


def test_damaged_files_are_reported_at_load(serve):
    serve("usps")
    folder = fetch_benchmark("usps", progress=False)
    data = (folder / "usps.bz2").read_bytes()
    (folder / "usps.bz2").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated or corrupt.*data fetch usps"):
        load_usps("train")
    assert check_benchmark("usps")["usps.bz2"] is False
