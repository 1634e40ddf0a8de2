"""`tlcourse.experiments.results`: the printed tables, and the JSON summary written safely."""

import json

import pytest

from tlcourse.experiments import format_table
from tlcourse.experiments.results import ExperimentResult


def test_format_table_aligns_columns():
    text = format_table([("a", {"x": 1.0, "y": "-"}), ("longer", {"x": 22.5})], title="t")
    lines = text.splitlines()
    assert lines[0] == "t" and len({len(line) for line in lines[1:]}) == 1
    assert "22.5" in text


def test_format_table_gives_each_column_one_format():
    rows = [
        ("scratch", {"acc %": 52.7, "gap %": 0, "parameters": 126_830, "MMD²": 0.0835, "paper %": 57.49}),
        ("lwf", {"acc %": 58.0, "gap %": 13.55, "parameters": 3845, "MMD²": 0.002643, "paper %": 81.49}),
        ("oracle", {"acc %": 100 * 0.43299999833106995, "gap %": "", "parameters": "-"}),
    ]
    cells = {line.split()[0]: line.split()[1:] for line in format_table(rows).splitlines()[2:]}
    assert cells["scratch"] == ["52.7", "0.00", "126,830", "0.0835", "57.49"]
    assert cells["lwf"] == ["58.0", "13.55", "3,845", "0.0026", "81.49"]  # not "0" above "13.55"
    assert cells["oracle"] == ["43.3", "-"]  # float32 noise is not precision; blanks stay blank
    pad = format_table([("a", {"PAD": 1.768}), ("b", {"PAD": -0.224})]).splitlines()[2:]
    assert [line.split()[1] for line in pad] == ["1.768", "-0.224"]


def test_save_refuses_a_folder_and_leaves_no_tmp(tmp_path):
    result = ExperimentResult("dann", 3, {"dann": 0.5}, 1.0)
    (tmp_path / "runs").mkdir()
    with pytest.raises(ValueError, match=r"--json .*runs is a folder.*runs/dann-3.json"):
        result.save(tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and not list((tmp_path / "runs").iterdir())
    result.save(tmp_path / "new" / "dann-3.json")  # a missing folder is created
    assert json.loads((tmp_path / "new" / "dann-3.json").read_text())["seed"] == 3
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["dann-3.json"]
