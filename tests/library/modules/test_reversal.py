"""The gradient reversal layer (forward identity, backward times -lambda) and DANN's two schedules."""

import math

import pytest
import torch

from tlcourse.library.modules import (
    GradientReversal,
    GradientReversalFunction,
    annealed_lr,
    dann_lambda,
    gradient_reversal,
)


def test_reversal_is_the_identity_forward():
    x = torch.randn(4, 3)
    assert torch.equal(gradient_reversal(x, 0.7), x)


@pytest.mark.parametrize("lambda_", [0.0, 0.3, 1.0, 2.5])
def test_reversal_flips_and_scales_the_gradient(lambda_):
    x = torch.randn(5, 4, requires_grad=True)
    upstream = torch.randn(5, 4)
    gradient_reversal(x, lambda_).backward(upstream)
    assert torch.allclose(x.grad, -lambda_ * upstream)


def mirrored(reversal, lambda_):
    """``t -> R(t) - (1 + lambda) t.detach()``: its forward is ``-lambda t``, and its only gradient path
    is the reversal's backward. So gradcheck (finite differences of the forward against the backward)
    passes exactly when that backward is ``-lambda * grad`` and the forward is the identity."""
    return lambda t: reversal(t, lambda_) - (1 + lambda_) * t.detach()


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 1.0, 3.0])
def test_reversal_gradcheck(lambda_):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mirrored(gradient_reversal, lambda_), (x,))
    assert torch.autograd.gradcheck(mirrored(GradientReversalFunction.apply, lambda_), (x,))


def test_gradcheck_catches_a_wrong_reversal():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    no_flip = lambda t, lam: t * lam + (t - t * lam).detach()  # identity forward, +lambda backward  # noqa: E731
    assert not torch.autograd.gradcheck(mirrored(no_flip, 0.5), (x,), raise_exception=False)
    assert not torch.autograd.gradcheck(mirrored(lambda t, lam: t, 0.5), (x,), raise_exception=False)


def test_module_coefficient_is_settable():
    grl = GradientReversal(1.0)
    grl.lambda_ = 0.25
    x = torch.ones(2, requires_grad=True)
    grl(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2,), -0.25))
    assert "0.25" in repr(grl)


def test_dann_lambda_schedule():
    assert dann_lambda(0.0) == 0.0
    assert math.isclose(dann_lambda(0.5), 2 / (1 + math.exp(-5)) - 1)
    assert 0.999 < dann_lambda(1.0) < 1.0
    values = [dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values)


def test_annealed_lr():
    assert annealed_lr(0.0, 0.01) == 0.01
    assert math.isclose(annealed_lr(1.0, 0.01), 0.01 / 11**0.75)
    assert math.isclose(annealed_lr(0.3, 1.0, alpha=2, beta=1), 1 / 1.6)
