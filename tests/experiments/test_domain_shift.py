"""`tlcourse.experiments.domain_shift` on a tiny budget, and once at full size (slow)."""

import pytest

from tlcourse.experiments import ExperimentResult, run_experiment
from tlcourse.experiments import domain_shift as ds
from tlcourse.experiments.expected import expected_ranges

TINY = ds.DomainShiftConfig(n_train=300, n_test=100, epochs=1, n_distance=40)


def test_same_seed_same_results():
    a = ds.run_domain_shift(seed=1, config=TINY, progress=False).results
    b = ds.run_domain_shift(seed=1, config=TINY, progress=False).results
    assert a == b


@pytest.mark.slow
def test_domain_shift_lands_in_its_expected_ranges():
    """The full-size chapter experiment, as the notebook runs it, on one seed."""
    result = run_experiment("domain-shift", seed=0, progress=False)
    assert isinstance(result, ExperimentResult)
    for name, (low, high) in expected_ranges()["domain-shift"].items():
        assert low <= result.results[name] <= high, f"{name} = {result.results[name]:.4f} not in [{low}, {high}]"
    assert result.results["source"] - result.results["photo_blend"] >= 0.30
