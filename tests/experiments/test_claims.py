"""`claim`: a sentence of a chapter about its own run, printed when it holds, an error when it stops holding."""

from __future__ import annotations

import pytest

from tlcourse.experiments import claim


def test_a_true_claim_prints_and_passes(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    claim("invert costs the most", 80 > 44, "80 vs 44 points")
    assert capsys.readouterr().out == "claim holds: invert costs the most (80 vs 44 points)\n"


def test_a_false_claim_fails_and_names_the_sentence(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    with pytest.raises(AssertionError, match=r"claim no longer holds: the photo blend costs the most \(44 vs 80\)"):
        claim("the photo blend costs the most", 44 > 80, "44 vs 80")


@pytest.mark.parametrize(("variable", "value"), [("NBGRADER_EXECUTION", "autograde"), ("TLCOURSE_PROFILE", "full")])
def test_a_false_claim_only_prints_while_grading_or_at_the_full_budget(capsys, monkeypatch, variable, value):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    monkeypatch.setenv(variable, value)
    claim("the photo blend costs the most", False)
    assert "NOT borne out" in capsys.readouterr().out
