"""`reproduce domain-generalization` on a tiny budget: the results it promises, and honest selection."""

import dataclasses

import pytest

from tlcourse.experiments import domain_generalization as dg

TINY = dataclasses.replace(
    dg.DGConfig(),
    n_per_domain=40,
    epochs=2,
    batch_size=8,
    n_spurious=64,
    spurious_steps=8,
    spurious_batch=32,
    irm_anneal=2,
    n_single=60,
    single_epochs=1,
    single_batch=16,
    adversarial_steps=1,
)


@pytest.fixture(scope="module")
def tiny_run():
    return dg.run_domain_generalization(seed=0, config=TINY, progress=False)


def test_results_have_one_entry_per_method_and_the_single_source_pair(tiny_run):
    results = tiny_run.results
    for method in dg.MULTI_SOURCE_METHODS:
        assert {method, f"oracle_{method}", f"{method}_style", f"{method}_rotated"} <= set(results)
    assert {"single_source_erm", "single_source_augment", "colored_erm", "colored_irm"} <= set(results)
    assert set(dg.NOTEBOOK_RESULTS) <= set(results)
    assert all(0.0 <= v <= 1.0 for v in results.values())
    assert tiny_run.to_json()["experiment"] == "domain-generalization"


def test_every_domain_is_held_out_once_and_oracle_is_labelled(tiny_run):
    multi = tiny_run.details["multi_source"]
    assert list(multi["style"]["erm"]) == ["plain", "photo_blend", "colour", "invert", "noise"]
    assert list(multi["rotated"]["erm"]) == ["rot0", "rot15", "rot30", "rot45", "rot60", "rot75"]
    assert any("oracle" in name and "not a result" in name for _, row in tiny_run.table for name in row)


def test_single_source_is_tested_only_on_unseen_domains():
    families = dg.make_families(0, TINY)
    unseen = dg.unseen_domains(families)
    assert "plain" not in unseen and "rot0" not in unseen and len(unseen) == 9
    source = dg.single_source_domain(0, TINY)
    style_images = families["style"]["plain"].x[:, 0].flatten(1)
    assert (source.x[:, 0].flatten(1)[:, None, :] - style_images[None]).abs().amax(-1).min() > 0, (
        "the one source must not share images with the style family"
    )


def test_same_seed_same_results(tiny_run):
    again = dg.run_domain_generalization(seed=0, config=TINY, progress=False)
    assert again.results == tiny_run.results
