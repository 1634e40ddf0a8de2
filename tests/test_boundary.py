"""Boundary methods: the entropy loss, virtual adversarial training, and a step of each method."""

import math

import pytest
import torch

from tlcourse.library.methods import DIRTT, VADA, EntropyMinimization, entropy_loss, virtual_adversarial_loss
from tlcourse.library.methods.boundary import FixMatch, FixMatchDANN, colour_and_shift, confident_consistency_loss
from tlcourse.library.models import build_classifier
from tlcourse.library.train import seed_everything


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


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 3, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g), torch.rand(8, 3, 28, 28, generator=g)


@pytest.mark.parametrize("make", [
    lambda m: EntropyMinimization(m, entropy_weight=1.0),
    lambda m: VADA(m, target_weight=1.0),
    lambda m: DIRTT(m, teacher_every=1),
    lambda m: FixMatchDANN(m, threshold=0.0),
    lambda m: FixMatch(m, threshold=0.0),
])
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


def test_consistency_loss_by_hand():
    """Only confident clean predictions label the augmented copy; the rest count as 0 in the mean."""
    clean = torch.log(torch.tensor([[0.97, 0.02, 0.01], [0.5, 0.3, 0.2], [0.01, 0.01, 0.98]]))
    augmented = torch.log(torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.25, 0.25, 0.5]]))
    loss, rate = confident_consistency_loss(clean, augmented, threshold=0.95)
    assert rate.item() == pytest.approx(2 / 3)
    assert loss.item() == pytest.approx((-math.log(0.6) - math.log(0.5)) / 3, rel=1e-5)
    none, zero_rate = confident_consistency_loss(clean, augmented, threshold=0.99)
    assert none.item() == 0.0 and zero_rate.item() == 0.0
    with pytest.raises(ValueError, match="must match"):
        confident_consistency_loss(clean, augmented[:2])


def test_consistency_gradient_reaches_the_augmented_pass_only():
    clean = torch.tensor([[5.0, 0.0]], requires_grad=True)
    augmented = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss, _ = confident_consistency_loss(clean, augmented, threshold=0.9)
    loss.backward()
    assert clean.grad is None  # the pseudo-label is a constant
    assert augmented.grad[0, 0] < 0 < augmented.grad[0, 1]  # pulled towards class 0, the clean prediction


def test_colour_and_shift_keeps_shape_and_range_and_changes_images():
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    seed_everything(0)
    out = colour_and_shift(x)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.allclose(out, x)
    assert colour_and_shift(x[:, :1]).shape == (5, 3, 28, 28)  # grey images come out in colour
    seed_everything(0)
    assert torch.equal(colour_and_shift(x), out)  # the global seed decides it


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
        xs, ys, xt, progress=0.0)
    assert len(seen) == 1 and seen[0] is xt  # only the target copy is augmented
    assert stats["confident"] == 0.0 and stats["consistency"] == 0.0 and stats["class_loss"] > 0
    with pytest.raises(ValueError, match="probability"):
        FixMatch(build_classifier("lenet_bn"), threshold=-0.1)
