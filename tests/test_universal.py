"""Class-set splits, the H-score, PADA's class weights and OVANet's losses."""

from __future__ import annotations

import math

import pytest
import torch

from tlcourse.library.data import CLASS_SET_SPLITS, Domain, class_set_domain
from tlcourse.library.methods.universal import PADA, OVANet, open_entropy, ova_loss, predict_with_unknown
from tlcourse.library.metrics import h_score
from tlcourse.library.models import build_classifier


def toy_domain() -> Domain:
    y = torch.arange(10).repeat(3)
    return Domain("toy", torch.rand(len(y), 3, 28, 28), y, tuple(f"c{i}" for i in range(10)))


def test_h_score_by_hand():
    labels = torch.tensor([0, 1, 1, 2, 2, 2])  # 2 = unknown
    predictions = torch.tensor([0, 0, 1, 2, 2, 0])
    # known: 2 of 3 right; unknown: 2 of 3 rejected -> H = 2/3
    assert h_score(predictions, labels, unknown=2) == pytest.approx(2 / 3)
    predictions = torch.tensor([0, 1, 1, 2, 0, 0])  # known 3/3, unknown 1/3 -> 2 * 1 * 1/3 / (4/3) = 1/2
    assert h_score(predictions, labels, unknown=2) == pytest.approx(0.5)


def test_h_score_punishes_both_trivial_answers():
    labels = torch.tensor([0, 1, 2, 2])
    assert h_score(torch.tensor([2, 2, 2, 2]), labels, unknown=2) == 0.0  # all "unknown"
    assert h_score(torch.tensor([0, 1, 0, 1]), labels, unknown=2) == 0.0  # never "unknown"
    with pytest.raises(ValueError, match="unknown"):
        h_score(torch.tensor([0, 1]), torch.tensor([0, 1]), unknown=2)


def test_class_set_domain_maps_private_target_classes_to_unknown():
    source_classes, target_classes = CLASS_SET_SPLITS["universal"]
    target = class_set_domain(toy_domain(), target_classes, source_classes)
    assert target.classes == ("c0", "c1", "c2", "c3", "c4", "c5", "c6", "unknown")
    assert set(target.y.tolist()) == {3, 4, 5, 6, 7}
    assert (target.y == 7).sum() == 9  # classes 7, 8, 9, three images each
    partial = class_set_domain(toy_domain(), *CLASS_SET_SPLITS["partial"][::-1])
    assert len(partial.classes) == 10 and set(partial.y.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError):
        class_set_domain(toy_domain(), [10], range(5))


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
    losses = method.update(torch.rand(8, 3, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.rand(8, 3, 28, 28), 0.0)
    assert set(losses) == {"class_loss", "ova_loss", "open_entropy"}
    predicted = method.predict_open(torch.rand(5, 3, 28, 28))
    assert predicted.shape == (5,) and ((predicted >= 0) & (predicted <= 3)).all()
