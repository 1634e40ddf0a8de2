"""Cross-domain penalties: Deep CORAL's covariance distance and IRMv1's penalty."""

import pytest
import torch

from tlcourse.library.modules import coral_loss, irm_penalty


# ------------------------------------------------------------------------------------------------ CORAL
def test_coral_is_zero_for_identical_features():
    f = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert coral_loss(f, f.clone()).item() == pytest.approx(0.0, abs=1e-10)
    # A shift of the mean alone does not change the covariance either.
    assert coral_loss(f, f + 3.0).item() == pytest.approx(0.0, abs=1e-8)


def test_coral_matches_a_hand_computed_case():
    # source covariance [[2, 0], [0, 0]], target [[0, 0], [0, 2]] (unbiased, n - 1 = 1):
    # ||C_s - C_t||_F^2 = 4 + 4 = 8, divided by 4 d^2 = 16.
    source = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    assert coral_loss(source, target).item() == pytest.approx(0.5)


def test_coral_is_differentiable_and_checks_shapes():
    a = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(coral_loss, (a, b))
    with pytest.raises(ValueError, match="same d"):
        coral_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        coral_loss(torch.randn(1, 3), torch.randn(4, 3))


# ------------------------------------------------------------------------------------------------ IRM
def test_irm_penalty_is_the_squared_derivative_of_the_risk_in_the_scale():
    logits = torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randint(2, (30,), generator=torch.Generator().manual_seed(1))
    eps = 1e-6

    def risk(w):
        return torch.nn.functional.cross_entropy(logits * w, y).item()

    numeric = (risk(1 + eps) - risk(1 - eps)) / (2 * eps)
    assert irm_penalty(logits, y).item() == pytest.approx(numeric**2, rel=1e-5)
