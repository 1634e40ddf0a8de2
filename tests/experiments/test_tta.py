"""`tlcourse.experiments.tta` (test-time adaptation) on a tiny budget: the result names expected.toml relies on."""

from __future__ import annotations

from tlcourse.experiments.tta import SHIFTS, SINGLE_IMAGE_METHODS, TTAConfig, run_test_time
from tlcourse.library.data import load_fashion_mnist
from tlcourse.library.train import evaluate


def test_test_time_results():
    config = TTAConfig(n_train=200, n_test=128, epochs=1, test_batch=64, n_single=8, ttt_steps=2)
    result = run_test_time(0, config, progress=False)
    assert {"source_only", "bn_adapt", "tent", "tent_episodic", "bn_adapt_noise"} <= set(result.results)
    assert {"source_only_bs1", "bn_adapt_bs1", "tent_bs1", "ttt_joint", "ttt", "ttt_online", "ttt_invert"} <= set(
        result.results
    )
    # Every one-image row is scored on the same n_single images: accuracies are multiples of 1 / 8.
    for method in SINGLE_IMAGE_METHODS:
        for shift in ("source", *SHIFTS):
            assert (8 * result.results[f"{method}_{shift}"]) % 1 == 0
    # Known answer: the source model in eval mode does not depend on the batch, so source_only_bs1 is its accuracy
    # on the seed's subsample of the test images, scored in one batch.
    subsample = load_fashion_mnist("test").take(config.n_test, seed=0).to_rgb().take(config.n_single, seed=0)
    assert result.results["source_only_bs1_source"] == evaluate(result.details["model"], subsample)
