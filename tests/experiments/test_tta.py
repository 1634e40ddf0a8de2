"""`tlcourse.experiments.tta` (test-time adaptation) on a tiny budget: the result names expected.toml relies on."""

from __future__ import annotations

from tlcourse.experiments.tta import TTAConfig, run_test_time


def test_test_time_results():
    result = run_test_time(0, TTAConfig(n_train=200, n_test=128, epochs=1, test_batch=64), progress=False)
    assert {"source_only", "bn_adapt", "tent", "tent_episodic", "bn_adapt_noise"} <= set(result.results)
