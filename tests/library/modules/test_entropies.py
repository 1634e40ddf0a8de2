"""The entropy of predictions: by hand, its extremes, its gradient."""

import math

import pytest
import torch

from tlcourse.library.modules import entropy, entropy_loss


def test_entropy_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.9, 0.05, 0.05]]))
    by_hand = [-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), -(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05))]
    assert math.isclose(entropy_loss(logits).item(), sum(by_hand) / 2, rel_tol=1e-6)


def test_entropy_uniform_and_one_hot():
    assert math.isclose(entropy_loss(torch.zeros(4, 10)).item(), math.log(10), rel_tol=1e-6)
    one_hot = torch.full((3, 5), -1e4)
    one_hot[torch.arange(3), torch.tensor([0, 2, 4])] = 1e4
    value = entropy_loss(one_hot)
    assert value.ndim == 0 and torch.isfinite(value) and value.item() < 1e-6


def test_entropy_gradient_sharpens_predictions():
    logits = torch.tensor([[1.0, 0.5, 0.0]], requires_grad=True)
    entropy_loss(logits).backward()
    # Descending the entropy raises the top logit relative to the others.
    assert logits.grad[0, 0] < 0 < logits.grad[0, 2]


def test_entropy_of_each_row_by_hand():
    assert entropy(torch.zeros(1, 4)).item() == pytest.approx(math.log(4))
    assert entropy(torch.tensor([[100.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_entropy_loss_is_the_mean_entropy_of_the_rows():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(entropy_loss(logits), entropy(logits).mean())
