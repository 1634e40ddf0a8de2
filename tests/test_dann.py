"""DANN: the gradient reversal layer, the schedules, the domain classifier and one training step."""

import math

import pytest
import torch
from torch.nn import functional as F

from tlcourse.library.methods import DANN, DomainDiscriminator, GradientReversal, annealed_lr, dann_lambda, gradient_reversal
from tlcourse.library.methods.dann import GradientReversalFunction, domain_labels
from tlcourse.library.models import build_classifier
from tlcourse.library.train import seed_everything


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


def test_domain_discriminator_shapes():
    d = DomainDiscriminator(768)
    assert d(torch.randn(7, 768)).shape == (7,)
    assert [m.out_features for m in d if isinstance(m, torch.nn.Linear)] == [100, 1]
    deep = DomainDiscriminator(16, hidden=(32, 8))
    assert [m.out_features for m in deep if isinstance(m, torch.nn.Linear)] == [32, 8, 1]
    assert torch.equal(domain_labels(2, 3), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))


def _tiny_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(8, 3, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g), torch.rand(8, 3, 28, 28, generator=g)


def test_adversarial_term_reaches_the_feature_extractor():
    """With the class loss out of the way, the domain loss alone moves the features, reversed."""
    seed_everything(0)
    method = DANN(build_classifier("lenet"), lambda_max=1.0, schedule_lambda=False)
    xs, ys, xt = _tiny_batch()
    method.grl.lambda_ = 1.0
    _, domain_loss, _, _ = method.adversarial_losses(xs, ys, xt)
    domain_loss.backward()
    grad_through_grl = [p.grad.clone() for p in method.model.features.parameters()]
    assert any(g.abs().sum() > 0 for g in grad_through_grl), "the domain loss sent no gradient into the features"

    # The same loss without the reversal gives exactly the opposite gradient on the feature extractor.
    method.zero_grad()
    features = method.model.features(torch.cat([xs, xt]))
    F.binary_cross_entropy_with_logits(method.discriminator(features), domain_labels(8, 8)).backward()
    for reversed_, plain in zip(grad_through_grl, (p.grad for p in method.model.features.parameters())):
        assert torch.allclose(reversed_, -plain, atol=1e-6)


def test_dann_step_changes_features_and_discriminator():
    seed_everything(0)
    method = DANN(build_classifier("lenet"))
    xs, ys, xt = _tiny_batch()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    out = method.update(xs, ys, xt, progress=0.5)
    assert set(out) >= {"class_loss", "domain_loss", "domain_acc", "lambda"}
    assert math.isclose(out["lambda"], dann_lambda(0.5))
    assert math.isclose(method.optimizer.param_groups[0]["lr"], annealed_lr(0.5, 1e-3))
    after = method.state_dict()
    assert not torch.equal(before["discriminator.0.weight"], after["discriminator.0.weight"])
    assert not torch.equal(before["model.features.0.weight"], after["model.features.0.weight"])


def test_lambda_zero_is_source_only_for_the_features():
    """With lambda = 0 the domain classifier still learns, but the features get only the class gradient."""
    xs, ys, xt = _tiny_batch()
    seed_everything(1)
    dann = DANN(build_classifier("lenet"), lambda_max=0.0, anneal_lr=False)
    seed_everything(1)
    plain = build_classifier("lenet")
    dann.update(xs, ys, xt, progress=0.7)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    F.cross_entropy(plain(xs), ys).backward()
    opt.step()
    for a, b in zip(dann.model.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="lambda_max"):
        DANN(build_classifier("lenet"), lambda_max=-1)
    with pytest.raises(ValueError, match="optimizer"):
        DANN(build_classifier("lenet"), optimizer="rmsprop")
