"""DANN: its losses (`dann_losses`), one training step, the adversarial term's reach, and its arguments."""

import math

import pytest
import torch
from torch.nn import functional as F

from tlcourse.library.methods import DANN, dann_losses
from tlcourse.library.models import build_classifier
from tlcourse.library.modules import (
    annealed_lr,
    dann_lambda,
    domain_labels,
)
from tlcourse.library.train import seed_everything


def _tiny_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(8, 3, 28, 28, generator=g),
        torch.randint(0, 10, (8,), generator=g),
        torch.rand(8, 3, 28, 28, generator=g),
    )


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


def _losses_and_gradients(method, compute):
    """What ``compute()`` returns, and the gradients the backward pass of class + domain loss leaves on ``method``."""
    method.zero_grad(set_to_none=True)
    out = compute()
    (out["class_loss"] + out["domain_loss"]).backward()
    return out, {name: p.grad.clone() for name, p in method.named_parameters() if p.grad is not None}


def test_adversarial_losses_are_dann_losses_with_the_methods_networks_and_lambda():
    """`DANN.adversarial_losses` is `dann_losses` on its model, discriminator and reversal's lambda: same values,
    same gradients, and the target logits are the head on `dann_losses`'s target features."""
    seed_everything(0)
    method = DANN(build_classifier("lenet_bn"))
    xs, ys, xt = _tiny_batch()
    method.grl.lambda_ = 0.7

    def through_the_method():
        class_loss, domain_loss, stats, (source_logits, target_logits) = method.adversarial_losses(
            xs, ys, xt, target_logits=True
        )
        return {
            "class_loss": class_loss,
            "domain_loss": domain_loss,
            "source_logits": source_logits,
            "target_logits": target_logits,
            **stats,
        }

    mine, mine_grads = _losses_and_gradients(method, through_the_method)
    theirs, their_grads = _losses_and_gradients(
        method, lambda: dann_losses(method.model, method.discriminator, xs, ys, xt, 0.7)
    )
    assert set(theirs) == {"class_loss", "domain_loss", "domain_acc", "source_logits", "target_features"}
    assert isinstance(theirs["domain_acc"], float) and mine["domain_acc"] == theirs["domain_acc"]
    for key in ("class_loss", "domain_loss", "source_logits"):
        assert torch.equal(mine[key], theirs[key]), key
    assert theirs["target_features"].shape == (8, method.model.num_features)
    assert torch.equal(mine["target_logits"], method.model.head(theirs["target_features"]))
    assert mine_grads.keys() == their_grads.keys() and any(name.startswith("discriminator.") for name in mine_grads)
    for name, grad in mine_grads.items():
        assert torch.equal(grad, their_grads[name]), name
    # Plain DANN leaves the target's predictions out.
    assert method.adversarial_losses(xs, ys, xt)[3][1] is None


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


def test_adam_betas_are_dann_s_to_choose_and_the_same_as_a_fresh_adam():
    """``betas`` reaches Adam; a step with them equals a step of an Adam built with them from the start."""
    xs, ys, xt = _tiny_batch()
    seed_everything(0)
    method = DANN(build_classifier("lenet"), betas=(0.5, 0.999))
    assert {tuple(g["betas"]) for g in method.optimizer.param_groups} == {(0.5, 0.999)}
    seed_everything(0)
    twin = DANN(build_classifier("lenet"))
    assert {tuple(g["betas"]) for g in twin.optimizer.param_groups} == {(0.9, 0.999)}  # the default: Adam's
    twin.optimizer = torch.optim.Adam([p for p in twin.parameters() if p.requires_grad], lr=1e-3, betas=(0.5, 0.999))
    for m in (method, twin):
        for step in range(3):
            m.update(xs, ys, xt, progress=step / 3)
    for a, b in zip(method.parameters(), twin.parameters()):
        assert torch.equal(a, b)
