"""The command line: ``reproduce`` (the JSON contract, clear errors), ``expected`` and ``data``."""

import json

import pytest

from tlcourse.__main__ import main
from tlcourse.experiments import domain_shift as ds
from tlcourse.experiments import experiment_names
from tlcourse.experiments.expected import expected_ranges, load_expected

TINY = ds.DomainShiftConfig(n_train=300, n_test=100, epochs=1, n_distance=40)


@pytest.fixture
def tiny_domain_shift(monkeypatch):
    """Make `reproduce domain-shift` run on a few hundred images, to test the plumbing in seconds."""
    from tlcourse import experiments
    from tlcourse.experiments import registry

    experiments.experiment_names()  # fill the registry before patching it
    monkeypatch.setitem(
        registry.EXPERIMENTS,
        "domain-shift",
        lambda seed=0, progress=True: ds.run_domain_shift(seed, TINY, progress=False),
    )


def test_reproduce_writes_the_json_contract(tiny_domain_shift, tmp_path, capsys):
    path = tmp_path / "out" / "ds.json"
    assert main(["reproduce", "domain-shift", "--seed", "3", "--json", str(path), "--quiet"]) == 0
    data = json.loads(path.read_text())
    assert set(data) == {"experiment", "seed", "results", "seconds"}
    assert data["experiment"] == "domain-shift" and data["seed"] == 3 and data["seconds"] > 0
    names = {"source", "photo_blend", "rotate", "colour", "invert", "noise", "label_shift", "concept_shift"}
    assert names <= set(data["results"])
    assert all(0.0 <= data["results"][n] <= 1.0 for n in names)
    assert {f"pad_{n}" for n in ds.COVARIATE_SHIFTS} <= set(data["results"])
    printed = capsys.readouterr().out
    assert "photo_blend" in printed and "accuracy %" in printed and str(path) in printed
    assert not list(path.parent.glob("*.tmp")), "a temporary file was left behind"


def test_unknown_experiment_is_a_clear_error(capsys):
    assert main(["reproduce", "no-such-chapter"]) == 2
    assert "domain-shift" in capsys.readouterr().err


def test_expected_json_lists_ranges(capsys):
    assert main(["expected", "--json"]) == 0
    ranges = json.loads(capsys.readouterr().out)
    assert ranges == expected_ranges()
    for experiment, results in ranges.items():
        assert experiment in experiment_names()
        for name, (low, high) in results.items():
            assert low < high, f"{experiment}.{name}: empty range"
    for entry in load_expected().values():
        assert entry["command"].startswith("python -m tlcourse reproduce") and len(entry["seeds"]) >= 5


def test_data_list_and_bad_names(capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["data", "check"]) == 2
    assert main(["data", "fetch", "no-such-data"]) == 2
    assert "fashion-mnist" in capsys.readouterr().err


def test_task_option_is_refused_by_single_task_experiments(capsys):
    assert main(["reproduce", "domain-shift", "--task", "photo-blend"]) == 2
    assert "without --task" in capsys.readouterr().err
