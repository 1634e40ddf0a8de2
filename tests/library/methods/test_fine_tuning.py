"""Fine-tuning: freezing, L2-SP, distillation, LwF, the ResNet adapter, the training loop's early stopping
and regularizer hooks, and the chapter experiment on a tiny budget."""

import copy
import math

import pytest
import torch
from torch import nn

from tlcourse.library.data import Domain
from tlcourse.library.methods.fine_tuning import (
    distillation_loss,
    feature_blocks,
    freeze,
    freeze_blocks,
    frozen_copy,
    l2_sp_penalty,
    lwf_loss,
    new_head,
    pretrained_parameters,
    trainable_parameters,
    unfreeze,
)
from tlcourse.library.models import FeatureClassifier, build_classifier, count_parameters
from tlcourse.library.train import evaluate, fit, seed_everything


def toy_domain(n=128, seed=0, num_classes=3, channels=3) -> Domain:
    """Classes told apart by which third of the image is bright."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = 0.1 * torch.rand(n, channels, 28, 28, generator=g)
    for k in range(num_classes):
        x[y == k, :, :, 9 * k : 9 * k + 9] += 0.8
    return Domain("toy", x.clamp(0, 1), y, tuple(str(k) for k in range(num_classes)))


def requires_grad_pattern(model: nn.Module) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


# ------------------------------------------------------------------------------------------- freezing
def test_freeze_unfreeze_and_counting():
    model = build_classifier("lenet", num_classes=4)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model, trainable=True) == total
    assert freeze(model.features) is model.features
    assert count_parameters(model, trainable=True) == sum(p.numel() for p in model.head.parameters())
    assert all(not p.requires_grad for p in model.features.parameters())
    assert {id(p) for p in trainable_parameters(model)} == {id(p) for p in model.head.parameters()}
    unfreeze(model)
    assert count_parameters(model, trainable=True) == total


@pytest.mark.parametrize("arch, sizes", [("lenet", [2, 2]), ("bn_cnn", [3, 3, 3])])
def test_feature_blocks_group_a_layer_with_its_batch_norm(arch, sizes):
    model = build_classifier(arch, num_classes=3)
    blocks = feature_blocks(model)
    assert [len(list(b.parameters())) for b in blocks] == sizes  # conv w+b; conv w + BN w+b
    for block in blocks:
        assert isinstance(next(iter(block.children())), nn.Conv2d)
    # The blocks hold the model's own modules: every feature parameter is in exactly one block.
    in_blocks = [id(p) for b in blocks for p in b.parameters()]
    assert sorted(in_blocks) == sorted(id(p) for p in model.features.parameters())


@pytest.mark.parametrize("arch", ["lenet", "bn_cnn"])
def test_freeze_blocks_sets_exactly_the_first_k_blocks(arch):
    model = build_classifier(arch, num_classes=3)
    blocks = feature_blocks(model)
    for k in range(len(blocks) + 1):
        freeze(model)  # whatever was frozen before must not matter
        assert freeze_blocks(model, k) is model
        frozen = {id(p) for b in blocks[:k] for p in b.parameters()}
        for p in model.parameters():
            assert p.requires_grad == (id(p) not in frozen)
    with pytest.raises(ValueError, match=f"\\[0, {len(blocks)}\\]"):
        freeze_blocks(model, len(blocks) + 1)
    with pytest.raises(ValueError):
        freeze_blocks(model, -1)


def test_an_optimizer_step_leaves_frozen_blocks_unchanged():
    seed_everything(0)
    model = build_classifier("lenet", num_classes=3)
    freeze_blocks(model, 1)
    conv1, conv2 = feature_blocks(model)
    before1 = [p.detach().clone() for p in conv1.parameters()]
    before2 = [p.detach().clone() for p in conv2.parameters()]
    fit(model, toy_domain(64), epochs=1, batch_size=16, progress=False)  # Adam over the trainable parameters
    assert all(torch.equal(a, b) for a, b in zip(before1, conv1.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before2, conv2.parameters()))


def test_new_head_shares_the_features_and_has_the_new_classes():
    source = build_classifier("lenet", num_classes=5)
    target = new_head(source, 7)
    assert target.features is source.features and isinstance(target.head, nn.Linear)
    assert target(torch.rand(2, 3, 28, 28)).shape == (2, 7)
    assert target.head.in_features == source.num_features


# ----------------------------------------------------------------------------------------------- L2-SP
def tiny_model() -> FeatureClassifier:
    """features: y = W x with W = [[1, 2]]; head: z = v y + c with v = 3, c = -1."""
    features, head = nn.Linear(2, 1, bias=False), nn.Linear(1, 1)
    with torch.no_grad():
        features.weight.copy_(torch.tensor([[1.0, 2.0]]))
        head.weight.fill_(3.0)
        head.bias.fill_(-1.0)
    return FeatureClassifier(features, head, 1)


def test_l2_sp_known_answer():
    model = tiny_model()
    reference = {"features.weight": torch.tensor([[0.0, 4.0]])}
    # alpha/2 * ((1-0)^2 + (2-4)^2) + beta/2 * (3^2 + (-1)^2) = 0.5 * 0.1 * 5 + 0.5 * 0.01 * 10
    value = l2_sp_penalty(model, reference, alpha=0.1, beta=0.01)
    assert value.ndim == 0
    assert math.isclose(value.item(), 0.25 + 0.05, rel_tol=1e-6)


def test_l2_sp_is_zero_at_the_pretrained_weights_and_pulls_back_to_them():
    seed_everything(0)
    model = new_head(build_classifier("lenet", num_classes=5), 3)
    reference = pretrained_parameters(model)
    assert set(reference) == {f"features.{n}" for n, _ in model.features.named_parameters()}
    assert l2_sp_penalty(model, reference, alpha=1.0, beta=0.0).item() == 0.0
    head_only = l2_sp_penalty(model, reference, alpha=1.0, beta=0.5).item()
    assert math.isclose(head_only, 0.25 * sum(p.pow(2).sum().item() for p in model.head.parameters()), rel_tol=1e-5)

    with torch.no_grad():  # move the features away; the gradient must point back: grad = alpha (w - w0)
        for p in model.features.parameters():
            p.add_(0.1 * torch.randn_like(p))
    penalty = l2_sp_penalty(model, reference, alpha=2.0, beta=0.0)
    penalty.backward()
    for name, p in model.features.named_parameters():
        assert torch.allclose(p.grad, 2.0 * (p.detach() - reference[f"features.{name}"]), atol=1e-6)
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(0.1 * p.grad)
    assert l2_sp_penalty(model, reference, alpha=2.0, beta=0.0).item() < penalty.item()


def test_l2_sp_is_not_plain_weight_decay_and_rejects_unknown_names():
    model = tiny_model()
    at_zero = {"features.weight": torch.zeros(1, 2)}
    decay = 0.5 * sum(p.pow(2).sum() for p in model.parameters()).item()
    assert math.isclose(l2_sp_penalty(model, at_zero, alpha=1.0, beta=1.0).item(), decay, rel_tol=1e-6)
    assert l2_sp_penalty(model, {"features.weight": torch.tensor([[1.0, 2.0]])}, 1.0, 1.0).item() < decay
    with pytest.raises(KeyError, match="pretrained_parameters"):
        l2_sp_penalty(model, {"features.nope": torch.zeros(1)}, 1.0, 1.0)


# ------------------------------------------------------------------------------------- distillation
def test_distillation_is_zero_for_equal_logits_and_never_negative():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    assert distillation_loss(logits, logits.clone(), temperature=3.0).abs().item() < 1e-6
    other = torch.randn(6, 4, generator=g)
    assert distillation_loss(other, logits, temperature=2.0).item() > 0


def test_distillation_known_answer():
    # Teacher (0, 0): p = (1/2, 1/2). Student (0, ln 3): q = (1/4, 3/4). KL(p || q) = 1/2 ln 2 + 1/2 ln(2/3).
    student, teacher = torch.tensor([[0.0, math.log(3.0)]]), torch.zeros(1, 2)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert math.isclose(distillation_loss(student, teacher, temperature=1.0).item(), kl, rel_tol=1e-5)
    # With T = 2 the logits are halved and the KL is scaled by T^2 = 4.
    student_half = torch.tensor([[0.0, 0.5 * math.log(3.0)]])
    q = torch.softmax(student_half, 1)[0]
    kl_half = 0.5 * math.log(0.5 / q[0].item()) + 0.5 * math.log(0.5 / q[1].item())
    assert math.isclose(distillation_loss(student, teacher, temperature=2.0).item(), 4 * kl_half, rel_tol=1e-5)


def test_distillation_scales_with_t_squared_and_leaves_the_teacher_alone():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(5, 3, generator=g, requires_grad=True)
    for temperature in (0.5, 2.0, 5.0):
        scaled = distillation_loss(s / temperature, t / temperature, temperature=1.0)
        assert torch.allclose(distillation_loss(s, t, temperature), temperature**2 * scaled, rtol=1e-5)
    distillation_loss(s, t, 4.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None
    with pytest.raises(ValueError, match="positive"):
        distillation_loss(s, t, 0.0)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(s, t[:, :2], 1.0)


def test_lwf_loss_is_zero_before_fine_tuning_and_grows_when_features_move():
    seed_everything(0)
    source = build_classifier("lenet", num_classes=5)
    teacher = frozen_copy(source)
    assert all(not p.requires_grad for p in teacher.parameters()) and not teacher.training
    model = new_head(copy.deepcopy(source), 3)
    old_head = copy.deepcopy(source.head)
    x = torch.rand(8, 3, 28, 28)
    assert lwf_loss(model, old_head, x, teacher(x)).abs().item() < 1e-6
    with torch.no_grad():
        for p in model.features.parameters():
            p.add_(0.2 * torch.randn_like(p))
    moved = lwf_loss(model, old_head, x, teacher(x), temperature=2.0)
    assert moved.item() > 0
    moved.backward()
    assert all(p.grad is not None for p in model.features.parameters())


# ----------------------------------------------------------------- the training loop's two additions
def test_fit_adds_the_regularizer_of_images_and_logits():
    data = toy_domain(32)
    seen = []

    def head_norm(model):
        return sum(p.pow(2).sum() for p in model.head.parameters())

    def train(with_regularizer):
        seed_everything(0)
        model = build_classifier("lenet", num_classes=3)

        def regularizer(x, logits):
            seen.append((x.shape, logits.shape))
            return 100.0 * head_norm(model)

        fit(
            model,
            data,
            epochs=2,
            lr=0.01,
            batch_size=16,
            regularizer=regularizer if with_regularizer else None,
            progress=False,
        )
        return head_norm(model).item()

    without, with_ = train(False), train(True)
    assert seen == [(torch.Size([16, 3, 28, 28]), torch.Size([16, 3]))] * 4
    assert with_ < 0.8 * without, "a strong weight penalty on the head must shrink it"


def test_fit_early_stopping_keeps_the_best_epoch():
    seed_everything(0)
    train, val = toy_domain(60, seed=0), toy_domain(40, seed=1)
    # A learning rate this large makes the validation accuracy go up and down.
    model = build_classifier("lenet", num_classes=3)
    history = fit(model, train, epochs=12, lr=0.02, batch_size=8, val=val, early_stopping=3, progress=False)
    accs = history["val_acc"]
    best = history.best_epoch
    assert best is not None and accs[best - 1] == max(accs)
    assert best == max(i + 1 for i, a in enumerate(accs) if a == max(accs))  # the later of tied epochs
    assert len(history) == 12 or len(history) == best + 3
    assert evaluate(model, val) == pytest.approx(accs[best - 1])  # the best epoch's parameters are back
    with pytest.raises(ValueError, match="val"):
        fit(model, train, epochs=1, early_stopping=2, progress=False)
