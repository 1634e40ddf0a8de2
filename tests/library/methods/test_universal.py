"""PADA's class weights and OVANet's losses."""

from __future__ import annotations

import math

import pytest
import torch

from tlcourse.library.methods.universal import PADA, OVANet, open_entropy, ova_loss, predict_with_unknown
from tlcourse.library.models import build_classifier


def test_predict_with_unknown_rejects_unconfident_images():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    assert predict_with_unknown(logits, threshold=0.5).tolist() == [0, 3]


def test_ova_loss_and_open_entropy_by_hand():
    # Two classes; every binary classifier at 50/50: loss = -log .5 (own) - log .5 (hardest negative).
    logits = torch.zeros(4, 2, 2)
    assert ova_loss(logits, torch.tensor([0, 1, 0, 1])).item() == pytest.approx(2 * math.log(2), rel=1e-5)
    assert open_entropy(logits).item() == pytest.approx(math.log(2), rel=1e-5)
    confident = torch.zeros(1, 2, 2)
    confident[0, 1, 0], confident[0, 0, 1] = 20.0, 20.0  # "is class 0" and "is not class 1"
    assert ova_loss(confident, torch.tensor([0])).item() < 1e-6


def test_pada_down_weights_classes_the_target_never_shows():
    torch.manual_seed(0)
    model = build_classifier("lenet", num_classes=4)
    pada = PADA(model, num_classes=4, momentum=0.5)
    xs, ys = torch.rand(16, 3, 28, 28), torch.arange(4).repeat(4)
    # Target images are copies of the class-0 and class-1 source images: classes 2 and 3 are absent.
    xt = xs[ys < 2].repeat(2, 1, 1, 1)
    for step in range(40):
        pada.update(xs, ys, xt, step / 40)
    gamma = pada.class_weights / pada.class_weights.max()
    assert gamma[:2].min() > gamma[2:].max(), gamma


def test_ovanet_update_and_open_prediction_shapes():
    torch.manual_seed(0)
    method = OVANet(build_classifier("lenet", num_classes=3), num_classes=3)
    losses = method.update(
        torch.rand(8, 3, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.rand(8, 3, 28, 28), 0.0
    )
    assert set(losses) == {"class_loss", "ova_loss", "open_entropy"}
    predicted = method.predict_open(torch.rand(5, 3, 28, 28))
    assert predicted.shape == (5,) and ((predicted >= 0) & (predicted <= 3)).all()
