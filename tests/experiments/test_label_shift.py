"""`tlcourse.experiments.label_shift` on a tiny budget: the result names the README and expected.toml rely on."""

from __future__ import annotations

from tlcourse.experiments.label_shift import LabelShiftConfig, run_label_shift


def test_label_shift_results():
    result = run_label_shift(
        0, LabelShiftConfig(n_train=400, n_val=200, n_target=200, draws=2, epochs=1, retrain_epochs=1), progress=False
    )
    needed = {"unadapted", "bbse", "em", "em_calibrated", "bbse_weight_mse", "em_calibrated_weight_mse", "iw_retrain"}
    assert needed <= set(result.results)
    assert all(0 <= result.results[k] <= 1 for k in ("unadapted", "bbse", "em", "em_calibrated", "oracle"))
    assert result.results["bbse_weight_mse"] >= 0
