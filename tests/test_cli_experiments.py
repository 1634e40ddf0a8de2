"""The command line and the chapter experiments: JSON contract, tables, and the expected ranges."""

import json

import pytest

from tlcourse.__main__ import main
from tlcourse.experiments.expected import check_result, expected_range, expected_ranges, load_expected
from tlcourse.experiments import ExperimentResult, experiment_names, format_table, run_experiment
from tlcourse.experiments import domain_shift as ds

TINY = ds.DomainShiftConfig(n_train=300, n_test=100, epochs=1, n_distance=40)


@pytest.fixture
def tiny_domain_shift(monkeypatch):
    """Make `reproduce domain-shift` run on a few hundred images, to test the plumbing in seconds."""
    from tlcourse import experiments

    experiments.experiment_names()  # fill the registry before patching it
    monkeypatch.setitem(experiments._REGISTRY, "domain-shift",
                        lambda seed=0, progress=True: ds.run_domain_shift(seed, TINY, progress=False))


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


def test_same_seed_same_results():
    a = ds.run_domain_shift(seed=1, config=TINY, progress=False).results
    b = ds.run_domain_shift(seed=1, config=TINY, progress=False).results
    assert a == b


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


def test_check_result_messages():
    low, high = expected_range("domain-shift", "source")
    assert check_result("domain-shift", "source", (low + high) / 2) == (low + high) / 2
    with pytest.raises(AssertionError, match="outside its expected range"):
        check_result("domain-shift", "source", high + 0.1)
    with pytest.raises(KeyError, match="known"):
        expected_range("domain-shift", "nonsense")


def test_format_table_aligns_columns():
    text = format_table([("a", {"x": 1.0, "y": "-"}), ("longer", {"x": 22.5})], title="t")
    lines = text.splitlines()
    assert lines[0] == "t" and len({len(line) for line in lines[1:]}) == 1
    assert "22.5" in text


def test_format_table_gives_each_column_one_format():
    rows = [("scratch", {"acc %": 52.7, "gap %": 0, "parameters": 126_830, "MMD²": 0.0835, "paper %": 57.49}),
            ("lwf", {"acc %": 58.0, "gap %": 13.55, "parameters": 3845, "MMD²": 0.002643, "paper %": 81.49}),
            ("oracle", {"acc %": 100 * 0.43299999833106995, "gap %": "", "parameters": "-"})]
    cells = {line.split()[0]: line.split()[1:] for line in format_table(rows).splitlines()[2:]}
    assert cells["scratch"] == ["52.7", "0.00", "126,830", "0.0835", "57.49"]
    assert cells["lwf"] == ["58.0", "13.55", "3,845", "0.0026", "81.49"]  # not "0" above "13.55"
    assert cells["oracle"] == ["43.3", "-"]  # float32 noise is not precision; blanks stay blank
    pad = format_table([("a", {"PAD": 1.768}), ("b", {"PAD": -0.224})]).splitlines()[2:]
    assert [line.split()[1] for line in pad] == ["1.768", "-0.224"]


def test_data_list_and_bad_names(capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["data", "check"]) == 2
    assert main(["data", "fetch", "no-such-data"]) == 2
    assert "fashion-mnist" in capsys.readouterr().err


@pytest.mark.slow
def test_domain_shift_lands_in_its_expected_ranges():
    """The full-size chapter experiment, as the notebook runs it, on one seed."""
    result = run_experiment("domain-shift", seed=0, progress=False)
    assert isinstance(result, ExperimentResult)
    for name, (low, high) in expected_ranges()["domain-shift"].items():
        assert low <= result.results[name] <= high, f"{name} = {result.results[name]:.4f} not in [{low}, {high}]"
    assert result.results["source"] - result.results["photo_blend"] >= 0.30


def test_grading_ranges_apply_only_while_autograding(monkeypatch):
    from tlcourse.experiments import expected

    data = {"exp": {"ranges": {"acc": [0.8, 0.9]}, "grading_ranges": {"acc": [0.5, 0.7]}}}
    monkeypatch.setattr(expected, "load_expected", lambda: data)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert expected.expected_range("exp", "acc") == (0.8, 0.9)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert expected.autograding() and expected.expected_range("exp", "acc") == (0.5, 0.7)
    assert expected.expected_range("exp", "acc", grading=False) == (0.8, 0.9)
    with pytest.raises(AssertionError):
        expected.check_result("exp", "acc", 0.85)


def test_results_page_shows_every_calibrated_result(capsys):
    assert main(["expected", "--markdown"]) == 0
    page = capsys.readouterr().out
    for experiment, entry in load_expected().items():
        if not entry.get("observed"):
            continue
        assert f"## `{experiment}`" in page
        for name in entry["observed"]:
            assert f"| `{name}` |" in page, f"{experiment}.{name} is missing from the results page"
    mean, sd = load_expected()["domain-shift"]["observed"]["source"][:2]
    assert f"| `source` | {100 * mean:.1f} ± {100 * sd:.1f} |" in page


def test_results_page_in_the_repository_is_up_to_date():
    from pathlib import Path

    from tlcourse.experiments.expected import results_markdown

    page = Path(__file__).resolve().parents[1] / "RESULTS.md"
    assert page.read_text() == results_markdown() + "\n", (
        "RESULTS.md is out of date with tlcourse/experiments/expected.toml: run "
        "`python -m tlcourse expected --markdown > RESULTS.md`")
