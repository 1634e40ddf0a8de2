"""Probe and judge: what crosses from the sandbox to the grader is data, and the judge is the instructor's."""

from __future__ import annotations

import ast
import io
import pickle
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from tlcourse.classroom import judging
from tlcourse.classroom.instructor import hidden_regions

REGION = """
from tlcourse.classroom.judging import hidden_test

SIDE_EFFECTS.append("top level ran")


def inputs():
    return [1.0, 2.0]


def square_probe():
    return {str(x): square(x) for x in inputs()}


def square_judge(got):
    for x in inputs():
        assert float(got[str(x)]) == x * x, f"square({x}) gave {float(got[str(x)])}"


checked = hidden_test("test_square", square_probe, square_judge)
"""


def test_probe_outputs_become_plain_arrays():
    data = judging.to_data({"loss": torch.tensor(0.5), "stats": {"acc": 1.0, "name": "x"}, "parts": [torch.ones(2)]})
    assert sorted(data) == ["loss", "parts/0", "stats/acc", "stats/name"]
    assert judging.loads(judging.dumps(data))["parts/0"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("value", [torch.nn.Linear(2, 2), print, object(), np.array([object()])])
def test_a_probe_never_hands_back_an_object(value):
    with pytest.raises(TypeError, match="data only"):
        judging.to_data({"x": value})


def test_a_pickle_is_refused(tmp_path):
    """A forged probe file that holds a pickle (code on load) is refused, unread."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "test_square.npz").write_bytes(buffer.getvalue())
    with pytest.raises(AssertionError, match="unreadable"):
        judging.read_probe(tmp_path, "test_square")
    (tmp_path / "test_square.npz").write_bytes(pickle.dumps({"1.0": 1.0}))
    with pytest.raises(AssertionError, match="unreadable"):
        judging.read_probe(tmp_path, "test_square")


def test_no_probe_file_fails(tmp_path):
    with pytest.raises(AssertionError, match="handed back nothing"):
        judging.read_probe(tmp_path, "test_square")


def test_the_judge_runs_without_the_probe_or_the_top_level():
    """Only imports and definitions run in the grader: not the probe, not the call, nothing else."""
    assert judging.judges(REGION)
    good = {"1.0": np.asarray(1.0), "2.0": np.asarray(4.0)}
    assert judging.judge_outputs(REGION, good) is None
    assert judging.judge_outputs(REGION, {**good, "2.0": np.asarray(5.0)}) == "AssertionError: square(2.0) gave 5.0"
    assert judging.judge_outputs(REGION, {}).startswith("KeyError")


def test_in_the_tutorial_both_halves_run_here(monkeypatch, tmp_path):
    monkeypatch.delenv(judging.PROBE_DIR_ENV, raising=False)
    namespace = {"square": lambda x: x * x, "SIDE_EFFECTS": []}
    exec(REGION, namespace)
    namespace["square"] = lambda x: x + x
    with pytest.raises(AssertionError, match=r"square\(1.0\) gave 2.0"):
        exec(REGION, namespace)
    monkeypatch.setenv(judging.PROBE_DIR_ENV, str(tmp_path))  # in the sandbox: hand back, judge nothing
    exec(REGION, namespace)
    assert judging.read_probe(tmp_path, "test_square")["1.0"] == 2.0


JUDGED_CHAPTERS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "notebooks").glob("0*"))


@pytest.mark.parametrize("chapter", JUDGED_CHAPTERS)
def test_every_hidden_region_is_judged_in_the_grader(chapter):
    """Each graded cell's hidden region hands its own grade id to hidden_test, and has a judge."""
    (path,) = (Path(__file__).resolve().parents[2] / "notebooks" / chapter).glob("*.ipynb")
    graded = [c for c in nbformat.read(path, as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded
    for cell in graded:
        region = "\n".join(hidden_regions(cell.source)[1])
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        assert judging.judges(region), f"{grade_id}: its hidden region does not call hidden_test"
        (call,) = [
            n
            for n in ast.walk(ast.parse(textwrap.dedent(region)))
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "hidden_test"
        ]
        assert ast.literal_eval(call.args[0]) == grade_id, f"{grade_id}: hidden_test is not given this cell's grade id"
        assert judging.judge_of(region) is not None, f"{grade_id}: no judge"


def test_without_judge_keeps_the_probe_and_cuts_the_judge():
    region = textwrap.dedent(
        """\
        from tlcourse.classroom.judging import hidden_test

        def inputs():
            return [1.0, 2.0]

        def probe():
            return {"x": inputs()}

        def judge(got):
            expected = [1.0, 2.0]  # SECRET
            assert got["x"].tolist() == expected

        checked = hidden_test("test_x", probe, judge)"""
    ).splitlines()
    indented = ["    " + line if line else line for line in region]  # inside a `try:`, as in chapter 3
    for lines, indent in ((region, ""), (indented, "    ")):
        kept = judging.without_judge(lines)
        text = "\n".join(kept)
        assert "SECRET" not in text and "def probe():" in text and "def inputs():" in text
        assert f"{indent}def judge(got):  # the grader judges what the probe hands back" in kept
        assert kept[-1] == lines[-1]  # the call stays, so the probe still runs
        assert judging.judge_of(textwrap.dedent(text)) is not None  # still a region the grader can read
    assert judging.without_judge(["x = 1"]) == ["x = 1"]  # no hidden_test call: nothing to cut
