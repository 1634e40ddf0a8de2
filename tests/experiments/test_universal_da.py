"""`tlcourse.experiments.universal_da` on a tiny budget: the result names expected.toml relies on."""

from __future__ import annotations

import pytest

from tlcourse.experiments.universal_da import UniversalDAConfig, run_universal_da


@pytest.mark.slow
def test_universal_da_results():
    result = run_universal_da(0, UniversalDAConfig(n_train=300, n_test=300, epochs=1), progress=False)
    needed = {
        "source_only_hscore",
        "dann_hscore",
        "ova_hscore",
        "partial_source_only",
        "partial_dann",
        "partial_pada",
        "open_set_ova_hscore",
    }
    assert needed <= set(result.results)
    assert all(0 <= v <= 1 for v in result.results.values())
