"""FixMatch's confident consistency loss."""

import math

import pytest
import torch

from tlcourse.library.modules import confident_consistency_loss


def test_consistency_loss_by_hand():
    """Only confident clean predictions label the augmented copy; the rest count as 0 in the mean."""
    clean = torch.log(torch.tensor([[0.97, 0.02, 0.01], [0.5, 0.3, 0.2], [0.01, 0.01, 0.98]]))
    augmented = torch.log(torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.25, 0.25, 0.5]]))
    loss, rate = confident_consistency_loss(clean, augmented, threshold=0.95)
    assert rate.item() == pytest.approx(2 / 3)
    assert loss.item() == pytest.approx((-math.log(0.6) - math.log(0.5)) / 3, rel=1e-5)
    none, zero_rate = confident_consistency_loss(clean, augmented, threshold=0.99)
    assert none.item() == 0.0 and zero_rate.item() == 0.0
    with pytest.raises(ValueError, match="must match"):
        confident_consistency_loss(clean, augmented[:2])


def test_consistency_gradient_reaches_the_augmented_pass_only():
    clean = torch.tensor([[5.0, 0.0]], requires_grad=True)
    augmented = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss, _ = confident_consistency_loss(clean, augmented, threshold=0.9)
    loss.backward()
    assert clean.grad is None  # the pseudo-label is a constant
    assert augmented.grad[0, 0] < 0 < augmented.grad[0, 1]  # pulled towards class 0, the clean prediction
