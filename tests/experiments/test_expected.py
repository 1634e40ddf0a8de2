"""`tlcourse.experiments.expected`: ranges and their messages, claimed gains checked on the difference of
one seed's two numbers, and the results page generated from expected.toml."""

from __future__ import annotations

import json

import pytest

from tlcourse.__main__ import main
from tlcourse.experiments import expected
from tlcourse.experiments.expected import check_result, expected_range, load_expected


def runs(gains, base=0.40):
    """Runs whose baseline moves from seed to seed while the method keeps its lead."""
    return [
        {"experiment": "dann", "seed": s, "results": {"source_only": base + 0.03 * s, "dann": base + 0.03 * s + g}}
        for s, g in enumerate(gains)
    ]


def test_paired_gains_separate_what_single_ranges_cannot():
    text = expected.calibration_toml("dann", runs([0.06, 0.08, 0.05, 0.07, 0.09]), "cmd")
    import tomllib

    entry = tomllib.loads(text)["dann"]
    single_dann, single_base = entry["ranges"]["dann"], entry["ranges"]["source_only"]
    assert single_dann[0] < single_base[1]  # the single ranges overlap...
    low, high = entry["gains"]["dann_over_source_only"]
    assert expected.GAIN_FLOOR <= low < 0.05 and high > 0.09  # ...the paired gain does not reach 0
    assert entry["gains_observed"]["dann_over_source_only"][0] == pytest.approx(0.07)


def test_gain_range_never_allows_a_tie():
    stats = expected.summarize_runs(expected.paired_gains("dann", runs([0.0, 0.02, -0.01, 0.01, 0.0])))
    low, _ = expected.gain_range(stats["dann_over_source_only"])
    assert low == expected.GAIN_FLOOR


def test_check_gain_passes_a_working_method_and_fails_a_broken_one(monkeypatch):
    entry = {
        "command": "cmd",
        "seeds": [0],
        "gains": {"dann_over_source_only": [0.02, 0.2]},
        "grading_gains": {"dann_over_source_only": [0.01, 0.3]},
    }
    monkeypatch.setattr(expected, "load_expected", lambda: {"dann": entry})
    assert expected.check_gain("dann", "dann", "source_only", 0.50, 0.40) == pytest.approx(0.10)
    with pytest.raises(AssertionError, match="claims that dann beats source_only"):
        expected.check_gain("dann", "dann", "source_only", 0.40, 0.40)  # a tie: DANN that does nothing
    with pytest.raises(AssertionError):
        expected.check_gain("dann", "dann", "source_only", 0.415, 0.40)
    assert expected.check_gain("dann", "dann", "source_only", 0.415, 0.40, grading=True) == pytest.approx(0.015)
    with pytest.raises(KeyError, match="entropy_min_over_source_only"):
        expected.check_gain("dann", "entropy_min", "source_only", 0.5, 0.4)


def test_every_claimed_gain_is_calibrated_and_excludes_a_tie():
    table = expected.load_expected()
    for experiment, claims in expected.CLAIMED_GAINS.items():
        for method, baseline in claims.items():
            key = expected.gain_key(method, baseline)
            low, high = table[experiment]["gains"][key]
            mean, _, lowest, _ = table[experiment]["gains_observed"][key]
            assert expected.GAIN_FLOOR <= low <= lowest and mean > 0 and high > low, (experiment, key)


def test_check_result_messages():
    low, high = expected_range("domain-shift", "source")
    assert check_result("domain-shift", "source", (low + high) / 2) == (low + high) / 2
    with pytest.raises(AssertionError, match="outside its expected range"):
        check_result("domain-shift", "source", high + 0.1)
    with pytest.raises(KeyError, match="known"):
        expected_range("domain-shift", "nonsense")


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

    page = Path(__file__).resolve().parents[2] / "RESULTS.md"
    assert page.read_text().startswith(results_markdown() + "\n"), (  # then the budgets (test_benchmark.py)
        "RESULTS.md is out of date with tlcourse/experiments/expected.toml: run "
        "`python -m tlcourse expected --markdown > RESULTS.md`"
    )


def test_a_corrupted_expected_file_is_named_with_its_line(tmp_path, monkeypatch):
    broken = tmp_path / "expected.toml"
    broken.write_text('[dann]\ncommand = "x\nseeds = [0, 1]\n')
    monkeypatch.setattr(expected, "EXPECTED_FILE", broken)
    with pytest.raises(ValueError, match=r"expected\.toml are not valid TOML \(.*line \d+.*\); restore it") as error:
        load_expected()
    assert str(broken) in str(error.value)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_expected_file_is_an_error(tmp_path, monkeypatch, text):
    empty = tmp_path / "expected.toml"
    empty.write_text(text)
    monkeypatch.setattr(expected, "EXPECTED_FILE", empty)
    with pytest.raises(ValueError, match="are empty"):
        load_expected()


def test_the_expected_file_is_read_again_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "expected.toml"
    path.write_text("[a.ranges]\nx = [0.0, 1.0]\n")
    monkeypatch.setattr(expected, "EXPECTED_FILE", path)
    assert expected_range("a", "x") == (0.0, 1.0)
    path.write_text("[a.ranges]\nx = [0.25, 0.75]\n")
    assert expected_range("a", "x") == (0.25, 0.75)


def write_runs(folder, *runs):
    paths = []
    for i, run in enumerate(runs):
        paths.append(folder / f"run-{i}.json")
        paths[-1].write_text(run if isinstance(run, str) else json.dumps(run))
    return paths


GOOD = {"experiment": "dann", "seed": 0, "results": {"dann": 0.5}, "seconds": 1.0}


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        (['{"experiment": "dann",'], r"run-0.json is not JSON \(.*line 1"),
        (["[1, 2]"], "run-0.json is not a `reproduce --json` output"),
        ([{"experiment": "dann", "seed": 0}], "run-0.json is not a `reproduce --json` output"),
        ([{**GOOD, "results": {"dann": "high"}}], "not a `reproduce --json` output"),
        ([GOOD, {**GOOD, "experiment": "tta", "seed": 1}], r"runs of one experiment, got \['dann', 'tta'\]"),
    ],
)
def test_read_runs_refuses_what_reproduce_did_not_write(tmp_path, runs, message):
    with pytest.raises(ValueError, match=message) as error:
        expected.read_runs(write_runs(tmp_path, *runs))
    assert "\n" not in str(error.value)


def test_read_runs_names_a_missing_file_and_reads_good_ones(tmp_path):
    with pytest.raises(ValueError, match=r"no file .*missing.json"):
        expected.read_runs([tmp_path / "missing.json"])
    assert expected.read_runs(write_runs(tmp_path, GOOD, {**GOOD, "seed": 1}))[1]["seed"] == 1


def test_ranges_are_clipped_to_what_each_quantity_can_be():
    spread = {"mean": 0.0, "sd": 0.5, "min": -0.4, "max": 0.9}  # pad 1.52 on each side
    assert expected.range_from_summary("kendall_tau_logme", spread) == [-1.0, 1.0]
    assert expected.range_from_summary("logme_good", spread) == [-1.92, 2.42]  # a log-evidence: unbounded
    assert expected.range_from_summary("hscore_good", {**spread, "min": 3.0, "max": 3.9}) == [1.48, 5.42]
    assert expected.range_from_summary("hscore_good", spread)[0] == 0.0  # an H-score is non-negative
    assert expected.range_from_summary("scratch", spread) == [0.0, 1.0]  # an accuracy
