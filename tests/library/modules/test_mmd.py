"""DAN's linear-time multi-kernel MMD: exact zeros, unbiasedness against a closed form, gradients, scales."""

import math

import pytest
import torch

from tlcourse.library.metrics import mmd2_unbiased
from tlcourse.library.modules import mk_mmd_linear, pairwise_gaussian, scaled_bandwidths


def gaussian_mmd2(shift: float, spread: float, sigma: float, d: int) -> float:
    """The population MMD^2 between N(0, spread^2 I_d) and N(shift e_1, spread^2 I_d), Gaussian kernel sigma.

    ``x - x'`` is N(0, 2 spread^2 I), so ``E k(x, x') = c = (sigma^2 / (sigma^2 + 2 spread^2))^(d/2)`` and
    ``E k(x, y) = c exp(-shift^2 / (2 (sigma^2 + 2 spread^2)))``: ``MMD^2 = 2 c (1 - exp(...))``.
    """
    c = (sigma**2 / (sigma**2 + 2 * spread**2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(shift**2) / (2 * (sigma**2 + 2 * spread**2))))


def test_pairwise_gaussian_known_answer():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Row 0: squared distance 1; sigma 1 gives exp(-1/2), sigma 2 gives exp(-1/8). Row 1: distance 0.
    expected = torch.tensor([(math.exp(-0.5) + math.exp(-0.125)) / 2, 1.0])
    torch.testing.assert_close(pairwise_gaussian(a, b, [1.0, 2.0]), expected)


def test_linear_mmd_is_exactly_zero_for_identical_paired_samples_and_positive_for_a_shift():
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    assert mk_mmd_linear(x, x.clone(), [0.5, 1.0, 2.0]).item() == 0.0
    assert mk_mmd_linear(x, x + 2.0, [0.5, 1.0, 2.0]).item() > 0.1


def test_linear_mmd_is_unbiased_and_agrees_with_the_quadratic_estimate_in_expectation():
    """Averaged over many batches, both estimates match the closed-form MMD^2 (and 0 without a shift)."""
    g = torch.Generator().manual_seed(0)
    sigma, d, n, draws = 1.0, 2, 64, 300
    shift = torch.tensor([1.0, 0.0])
    linear, quadratic, null = [], [], []
    for _ in range(draws):
        x, y, z = (torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(3))
        linear.append(mk_mmd_linear(x, y + shift, [sigma]).item())
        quadratic.append(mmd2_unbiased(x, y + shift, sigma).item())
        null.append(mk_mmd_linear(x, z, [sigma]).item())
    truth = gaussian_mmd2(1.0, 1.0, sigma, d)

    def mean_and_error(values):
        t = torch.tensor(values)
        return t.mean().item(), t.std().item() / math.sqrt(len(values))

    for values in (linear, quadratic):
        mean, error = mean_and_error(values)
        assert abs(mean - truth) < 4 * error, (mean, truth, error)
    mean, error = mean_and_error(null)
    assert abs(mean) < 4 * error
    # The price of linear time: a larger variance than the quadratic estimate's on the same batches.
    assert torch.tensor(linear).std() > 2 * torch.tensor(quadratic).std()


def test_gradients_reach_both_samples():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: mk_mmd_linear(a, b, [0.5, 2.0]), (s, t))
    mk_mmd_linear(s, t + 1, [1.0]).backward()
    assert s.grad.abs().sum() > 0 and t.grad.abs().sum() > 0


def test_scaled_bandwidths_make_the_loss_blind_to_the_features_scale():
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g) + 0.5
    # Root mean squared distance over all pairs of the pooled sample, by brute force.
    z = torch.cat([s, t]).double()
    rms = torch.cdist(z, z).pow(2).mean().sqrt().item()
    assert scaled_bandwidths(s, t, [1.0, 2.0]) == pytest.approx([rms, 2 * rms])
    loss = mk_mmd_linear(s, t, scaled_bandwidths(s, t, [0.5, 1.0]))
    scaled = mk_mmd_linear(10 * s, 10 * t, scaled_bandwidths(10 * s, 10 * t, [0.5, 1.0]))
    assert scaled.item() == pytest.approx(loss.item(), rel=1e-4)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="one d"):
        mk_mmd_linear(torch.zeros(4, 3), torch.zeros(4, 2), [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        mk_mmd_linear(torch.zeros(1, 3), torch.zeros(4, 3), [1.0])
    with pytest.raises(ValueError, match="positive"):
        mk_mmd_linear(torch.zeros(4, 3), torch.zeros(4, 3), [0.0])
