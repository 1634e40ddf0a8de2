"""The helpers that nbgrader test cells call."""

import pytest
import torch

from tlcourse.classroom.grading import (
    assert_close,
    assert_matches_reference,
    assert_tensor_close,
    reference_blocked,
)
from tlcourse.library import metrics


def test_reference_blocked_blocks_every_alias_and_restores():
    from tlcourse.library.metrics import mmd2_unbiased as alias

    x, y = torch.randn(4, 2), torch.randn(5, 2)
    before = metrics.mmd2_unbiased(x, y, 1.0)
    with reference_blocked(metrics.mmd2_unbiased):
        with pytest.raises(RuntimeError, match="switched off"):
            alias(x, y, 1.0)
        with pytest.raises(RuntimeError, match="switched off"):
            metrics.mmd2_unbiased(x, y, bandwidth=1.0)
    assert torch.equal(metrics.mmd2_unbiased(x, y, 1.0), before)


def test_reference_blocked_restores_after_an_error():
    with pytest.raises(KeyError), reference_blocked(metrics.accuracy):
        raise KeyError("student code failed")
    assert metrics.accuracy(torch.tensor([1, 0]), torch.tensor([1, 1])) == 0.5


def test_assert_matches_reference_accepts_an_own_implementation():
    def own(x, y):
        return (x == y).float().mean().item()

    assert_matches_reference(own, metrics.accuracy, torch.tensor([1, 2, 3]), torch.tensor([1, 2, 0]))


def test_assert_matches_reference_rejects_a_wrong_one_and_a_copy():
    def wrong(x, y):
        return (x != y).float().mean().item()

    def calls_reference(x, y):
        return metrics.accuracy(x, y)

    args = torch.tensor([1, 2, 3]), torch.tensor([1, 2, 0])
    with pytest.raises(AssertionError, match="expected"):
        assert_matches_reference(wrong, metrics.accuracy, *args)
    with pytest.raises(RuntimeError, match="switched off"):
        assert_matches_reference(calls_reference, metrics.accuracy, *args)


def test_assert_matches_reference_explains_a_missing_return():
    with pytest.raises(AssertionError, match="return"):
        assert_matches_reference(lambda x, y: None, metrics.accuracy, torch.tensor([1]), torch.tensor([1]))


def test_assert_close():
    assert_close(0.5, 0.5001, atol=1e-3, what="x")
    with pytest.raises(AssertionError, match=r"expected 1\.0000"):
        assert_close(0.5, 1.0, atol=1e-3, what="x")
    with pytest.raises(AssertionError, match="finite"):
        assert_close(float("nan"), 1.0, atol=1e-3, what="x")


def test_assert_close_names_a_known_mistake():
    mistakes = {"You forgot the half.": 2.0, "You squared it twice.": 16.0}
    assert_close(1.0, 1.0, atol=1e-6, what="x", mistakes=mistakes)  # right: no hint needed
    with pytest.raises(AssertionError, match=r"expected 1\.0000 .*You forgot the half\.$") as caught:
        assert_close(2.0, 1.0, atol=1e-6, what="x", mistakes=mistakes)
    assert "squared" not in str(caught.value)
    with pytest.raises(AssertionError, match=r"\(within 1e-06\)\.$"):  # an unknown mistake: no hint
        assert_close(3.0, 1.0, atol=1e-6, what="x", mistakes=mistakes)


def test_assert_tensor_close():
    assert_tensor_close(torch.tensor([0.25, 0.75]), [0.25, 0.75], atol=1e-9, what="prior")
    mistakes = {"Normalise the rows.": [[1 / 3, 1.0]], "Wrong shape, never matched.": [1 / 3, 1.0]}
    with pytest.raises(AssertionError, match=r"expected \[\[0\.25, 0\.75\]\].*Normalise the rows\.$"):
        assert_tensor_close(torch.tensor([[1 / 3, 1.0]]), [[0.25, 0.75]], atol=1e-6, what="rows", mistakes=mistakes)
    with pytest.raises(AssertionError, match=r"got shape \(2,\), expected \(1, 2\)"):
        assert_tensor_close(torch.tensor([0.25, 0.75]), [[0.25, 0.75]], atol=1e-6, what="rows")
    with pytest.raises(AssertionError, match="expected a tensor"):
        assert_tensor_close([0.25, 0.75], [0.25, 0.75], atol=1e-6, what="rows")
