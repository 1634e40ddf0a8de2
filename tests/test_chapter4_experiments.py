"""The chapter-4 experiments on tiny budgets: the result names the README and expected.toml rely on."""

from __future__ import annotations

import pytest

from tlcourse.experiments import experiment_names
from tlcourse.experiments.label_shift import LabelShiftConfig, run_label_shift
from tlcourse.experiments.test_time import TestTimeConfig, run_test_time
from tlcourse.experiments.universal_da import UniversalDAConfig, run_universal_da


def test_registered():
    assert {"label-shift", "universal-da", "test-time"} <= set(experiment_names())


def test_label_shift_results():
    result = run_label_shift(0, LabelShiftConfig(n_train=400, n_val=200, n_target=200, draws=2, epochs=1,
                                                 retrain_epochs=1), progress=False)
    needed = {"unadapted", "bbse", "em", "em_calibrated", "bbse_weight_mse", "em_calibrated_weight_mse", "iw_retrain"}
    assert needed <= set(result.results)
    assert all(0 <= result.results[k] <= 1 for k in ("unadapted", "bbse", "em", "em_calibrated", "oracle"))
    assert result.results["bbse_weight_mse"] >= 0


def test_test_time_results():
    result = run_test_time(0, TestTimeConfig(n_train=200, n_test=128, epochs=1, test_batch=64), progress=False)
    assert {"source_only", "bn_adapt", "tent", "tent_episodic", "bn_adapt_noise"} <= set(result.results)


@pytest.mark.slow
def test_universal_da_results():
    result = run_universal_da(0, UniversalDAConfig(n_train=300, n_test=300, epochs=1), progress=False)
    needed = {"source_only_hscore", "dann_hscore", "ova_hscore", "partial_source_only", "partial_dann", "partial_pada",
              "open_set_ova_hscore"}
    assert needed <= set(result.results)
    assert all(0 <= v <= 1 for v in result.results.values())
