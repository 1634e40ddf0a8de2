"""MCD's classifier discrepancy: known answers, symmetry, gradients, shapes."""

import math

import pytest
import torch

from tlcourse.library.modules import classifier_discrepancy


def test_identical_heads_do_not_disagree():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    assert classifier_discrepancy(logits, logits.clone()).item() == 0.0
    # Softmax ignores a constant added to every logit of an image: the same prediction, no discrepancy.
    assert classifier_discrepancy(logits, logits + 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_a_hand_computed_case():
    # Image 1: p1 = (1/2, 1/2), p2 = (e/(1+e), 1/(1+e)): |difference| = e/(1+e) - 1/2 on each class.
    # Image 2: the same predictions on both heads. Mean over 2 images x 2 classes.
    p1 = torch.tensor([[0.0, 0.0], [2.0, -1.0]])
    p2 = torch.tensor([[1.0, 0.0], [2.0, -1.0]])
    gap = math.e / (1 + math.e) - 0.5
    assert classifier_discrepancy(p1, p2).item() == pytest.approx(2 * gap / 4, rel=1e-6)
    # Two confident heads on different classes: |1 - 0| + |0 - 1| over K = 2 classes, the maximum 2 / K.
    confident = torch.tensor([[50.0, -50.0]])
    assert classifier_discrepancy(confident, -confident).item() == pytest.approx(1.0)


def test_symmetric_and_differentiable():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert classifier_discrepancy(a, b).item() == classifier_discrepancy(b, a).item()
    assert torch.autograd.gradcheck(classifier_discrepancy, (a, b))
    classifier_discrepancy(a, b).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        classifier_discrepancy(torch.zeros(3, 4), torch.zeros(3, 5))
