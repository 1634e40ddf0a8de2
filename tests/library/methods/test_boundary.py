"""Boundary methods: a step of each (entropy minimisation, VADA, DIRT-T, FixMatch with and without DANN)."""

import math

import pytest
import torch

from tlcourse.library.methods import DIRTT, VADA, EntropyMinimization, FixMatch, FixMatchDANN
from tlcourse.library.models import build_classifier
from tlcourse.library.modules import colour_and_shift, confident_consistency_loss, entropy_loss
from tlcourse.library.train import seed_everything


def _batch():
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(8, 3, 28, 28, generator=g),
        torch.randint(0, 10, (8,), generator=g),
        torch.rand(8, 3, 28, 28, generator=g),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda m: EntropyMinimization(m, entropy_weight=1.0),
        lambda m: VADA(m, target_weight=1.0),
        lambda m: DIRTT(m, teacher_every=1),
        lambda m: FixMatchDANN(m, threshold=0.0),
        lambda m: FixMatch(m, threshold=0.0),
    ],
)
def test_each_method_takes_a_step(make):
    seed_everything(0)
    method = make(build_classifier("lenet"))
    before = [p.clone() for p in method.model.parameters()]
    out = method.update(*_batch(), progress=0.5)
    out2 = method.update(*_batch(), progress=0.6)
    assert all(math.isfinite(v) for v in {**out, **out2}.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, method.model.parameters()))


def test_entropy_term_moves_the_features():
    """With the class and domain terms switched off, target entropy alone still trains the feature extractor."""
    seed_everything(0)
    method = EntropyMinimization(build_classifier("lenet"), entropy_weight=1.0, lambda_max=0.0, schedule_entropy=False)
    xs, ys, xt = _batch()
    _, _, _, (_, target_logits) = method.adversarial_losses(xs, ys, xt, target_logits=True)
    entropy_loss(target_logits).backward()
    assert method.model.features[0].weight.grad.abs().sum() > 0


def test_dirtt_teacher_follows_the_student():
    seed_everything(0)
    method = DIRTT(build_classifier("lenet"), teacher_every=2)
    batch = _batch()
    method.update(*batch, progress=0.0)
    assert not torch.equal(method.teacher.head[0].weight, method.model.head[0].weight)
    method.update(*batch, progress=0.1)
    method.update(*batch, progress=0.2)  # the teacher was copied before this step
    assert all(not p.requires_grad for p in method.teacher.parameters())


def test_fixmatch_term_trains_the_features_without_labels():
    """With the class and domain terms off, the consistency term alone moves the feature extractor,
    and only once target predictions are confident enough."""
    seed_everything(0)
    method = FixMatchDANN(build_classifier("lenet_bn"), threshold=0.0, lambda_max=0.0)
    xs, ys, xt = _batch()
    _, _, _, (_, target_logits) = method.adversarial_losses(xs, ys, xt, target_logits=True)
    loss, rate = confident_consistency_loss(target_logits, method.model(method.augment(xt)), method.threshold)
    loss.backward()
    assert rate.item() == 1.0 and method.model.features[0].weight.grad.abs().sum() > 0
    stats = FixMatchDANN(build_classifier("lenet_bn"), threshold=1.0).update(xs, ys, xt, progress=0.5)
    assert stats["confident"] == 0.0 and stats["consistency"] == 0.0
    with pytest.raises(ValueError, match="probability"):
        FixMatchDANN(build_classifier("lenet_bn"), threshold=1.5)


def test_fixmatch_self_training_uses_augmented_labels_and_confident_targets():
    """`FixMatch` learns from the augmented source and, past the threshold, from the target's own predictions."""
    xs, ys, xt = _batch()
    seen = []

    def spy(x):
        seen.append(x)
        return colour_and_shift(x)

    seed_everything(0)
    stats = FixMatch(build_classifier("lenet_bn"), threshold=0.0, augment=spy).update(xs, ys, xt, progress=0.0)
    assert len(seen) == 2 and seen[0] is xs and seen[1] is xt  # the source batch and the target batch
    assert stats["confident"] == 1.0 and stats["consistency"] > 0
    seen.clear()
    stats = FixMatch(build_classifier("lenet_bn"), threshold=1.0, augment=spy, augment_source=False).update(
        xs, ys, xt, progress=0.0
    )
    assert len(seen) == 1 and seen[0] is xt  # only the target copy is augmented
    assert stats["confident"] == 0.0 and stats["consistency"] == 0.0 and stats["class_loss"] > 0
    with pytest.raises(ValueError, match="probability"):
        FixMatch(build_classifier("lenet_bn"), threshold=-0.1)
