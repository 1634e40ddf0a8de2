"""`tlcourse.experiments` and its registry: every chapter registered by name, the rows' tables, one seed rule."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tlcourse.experiments as experiments
from tlcourse.experiments import experiment_names, register, registry, run_experiment, seed_row

#: The modules of the package that are not chapters.
NOT_CHAPTERS = {"__init__", "expected", "model_cache", "registry", "results"}


def test_registered():
    assert {"label-shift", "universal-da", "test-time"} <= set(experiment_names())


def test_every_cli_name_is_registered_and_dann_long_is_long():
    names = {
        "dann",
        "dann-font-digits",
        "dann-long",
        "domain-shift",
        "fine-tuning",
        "label-shift",
        "test-time",
        "text-transfer",
        "universal-da",
        "domain-generalization",
    }
    assert set(experiment_names()) == names
    assert set(experiment_names(include_long=False)) == names - {"dann-long"}


def test_chapters_are_every_module_but_the_shelf_s_own():
    """The explicit list of chapters misses no module of the package, and names no module that is not there."""
    modules = {p.stem for p in Path(experiments.__file__).parent.glob("*.py")} - NOT_CHAPTERS
    assert set(experiments.CHAPTERS) == modules
    experiment_names()
    assert all(f"tlcourse.experiments.{m}" in sys.modules for m in experiments.CHAPTERS)
    owners = {function.__module__.rsplit(".", 1)[1] for function in registry.EXPERIMENTS.values()}
    assert owners == set(experiments.CHAPTERS), "every chapter registers at least one experiment"


def test_unknown_name_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="domain-shift"):
        run_experiment("no-such-chapter")
    with pytest.raises(ValueError, match="without --task"):
        run_experiment("label-shift", task="photo-blend")
    with pytest.raises(ValueError, match="only the offline profile"):
        run_experiment("test-time", profile="full")


def test_register_refuses_a_second_function_under_one_name(monkeypatch):
    monkeypatch.setattr(registry, "EXPERIMENTS", {})
    first = register("twice")(lambda seed=0, progress=True: None)
    assert register("twice")(first) is first  # the same function again is fine (a module re-imported)
    with pytest.raises(ValueError, match="twice"):
        register("twice")(lambda seed=0, progress=True: None)


def test_seed_row_resets_every_global_generator():
    seed_row(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    torch.rand(100)  # a row that draws more than another must not shift the next row
    seed_row(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


# -------------------------------------------------------------------------------- the rows' tables
def test_dann_methods_table_covers_exactly_the_configured_rows():
    from tlcourse.experiments import dann

    assert dann.DANNConfig().methods == tuple(dann.METHODS)
    assert set(dann.LONG_METHODS) <= set(dann.METHODS)
    assert [name for name, factory in dann.METHODS.items() if factory is None] == [dann.ORACLE]
    assert set(dann.SECOND_PHASE) == set(dann.FIRST_PHASE)
    for row, first in dann.FIRST_PHASE.items():
        assert dann.METHODS[row] is dann.METHODS[first], f"{row} starts as {first}"


def test_fine_tuning_methods_table_covers_the_table_and_the_curve():
    from tlcourse.experiments import fine_tuning

    config = fine_tuning.FineTuningConfig()
    assert set(config.curve_methods) <= set(fine_tuning.METHODS)
    assert tuple(fine_tuning.METHODS) == (
        "scratch",
        "linear_probe",
        "partial_fine_tune",
        "full_fine_tune",
        "lp_ft",
        "l2_sp",
        "lwf",
    )


def test_domain_generalization_tables_cover_exactly_the_configured_rows():
    from tlcourse.experiments import domain_generalization as dg

    assert dg.DGConfig().methods == tuple(dg.MULTI_SOURCE_METHODS)
    assert tuple(dg.SINGLE_SOURCE_METHODS) == ("erm", "augment", "adversarial")
    assert tuple(dg.SPURIOUS_METHODS) == ("erm", "irm")
    with pytest.raises(ValueError, match="coral"):
        dg.make_method("vrex", None, 2, dg.DGConfig())
    with pytest.raises(ValueError, match="augment"):
        dg.single_source_method("vrex", None, dg.DGConfig(), 0)


def test_universal_and_tta_tables_cover_exactly_their_rows():
    from tlcourse.experiments import tta, universal_da

    assert set(universal_da.PARTIAL_ROWS) | set(universal_da.OPEN_ROWS) == set(universal_da.METHODS)
    assert tuple(tta.METHODS) == ("source_only", "bn_adapt", "tent", "tent_episodic")
    with pytest.raises(ValueError, match="ova"):
        universal_da.train_method("uan", None, None, universal_da.UniversalDAConfig(), 0, False)
