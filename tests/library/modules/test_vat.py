"""Virtual adversarial training: the loss and its power-iteration direction."""

import pytest
import torch

from tlcourse.library.models import build_classifier
from tlcourse.library.modules import virtual_adversarial_loss
from tlcourse.library.train import seed_everything


def test_virtual_adversarial_loss_is_positive_and_differentiable():
    seed_everything(0)
    model = build_classifier("lenet")
    x = torch.rand(6, 3, 28, 28)
    loss = virtual_adversarial_loss(model, x, radius=2.0)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert virtual_adversarial_loss(model, x, radius=0.0).item() == pytest.approx(0.0, abs=1e-7)


def test_adversarial_direction_beats_a_random_one():
    """The power iteration finds a direction that changes the prediction more than a random one."""
    seed_everything(0)
    model = build_classifier("lenet")
    x = torch.rand(16, 3, 28, 28)
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
        d = torch.randn_like(x)
        d = 2.0 * d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        random_kl = torch.nn.functional.kl_div(torch.log_softmax(model(x + d), 1), p, reduction="batchmean")
    assert virtual_adversarial_loss(model, x, radius=2.0).item() > random_kl.item()
