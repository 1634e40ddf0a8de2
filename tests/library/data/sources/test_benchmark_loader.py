"""`load_benchmark`: every digit benchmark fetched, checked and loaded as a course domain."""

from __future__ import annotations

import os

import pytest
import torch

from tlcourse.library.data import Domain, check_benchmark, fetch_benchmark, load_benchmark

ENV = "env"  # key of isolated_data_roots: the $TLCOURSE_DATA folder


DIGITS = ["mnist", "svhn", "usps", "mnist-m", "syn-numbers"]


@pytest.mark.parametrize("name", DIGITS)
def test_digit_benchmark_fetches_checks_and_loads_as_course_domains(serve, isolated_data_roots, name):
    expected = serve(name)
    folder = fetch_benchmark(name, progress=False)
    assert folder == isolated_data_roots[ENV] / name
    assert os.listdir(isolated_data_roots[ENV]) == [name]  # no staging folder left
    assert all(check_benchmark(name).values())
    for split in ("train", "test"):
        d = load_benchmark(name, split)
        assert isinstance(d, Domain) and d.name == name
        assert d.x.shape == (len(expected["y"][split]), 3, 28, 28) and d.x.dtype == torch.float32
        assert float(d.x.min()) >= 0.0 and float(d.x.max()) <= 1.0
        assert d.y.tolist() == [int(v) for v in expected["y"][split]] and d.classes == tuple("0123456789")
