"""Test-time adaptation: batch-norm statistics and TENT on a tiny batch-norm CNN; test-time training (TTT)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tlcourse.library.methods.tta import (
    TTT,
    Tent,
    TTTAdapter,
    all_rotations,
    batch_norm_layers,
    bn_adapted,
    predict_stream,
    rotate_batch,
    tent_parameters,
)
from tlcourse.library.models import build_classifier
from tlcourse.library.modules import entropy


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_classifier("bn_cnn", num_classes=4, image_size=8)
    with torch.no_grad():  # running statistics of a "source" whose images are dark
        model.train()
        for _ in range(5):
            model(torch.rand(16, 3, 8, 8) * 0.2)
    return model.eval()


def test_bn_adaptation_normalises_with_the_batch_statistics_and_leaves_the_source_model_alone():
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = bn_adapted(model)
    x = torch.rand(32, 3, 8, 8) * 0.5 + 0.5  # a brighter target
    first_bn = batch_norm_layers(adapted)[0]
    pre = adapted.features[0](x)  # the first conv's output, what the first batch norm sees
    out = first_bn(pre)
    # Batch statistics: each channel of the output has mean 0 over the batch (times gamma, plus beta).
    assert torch.allclose(out.mean((0, 2, 3)), first_bn.bias, atol=1e-5)
    # The source model still uses its running statistics and was not changed.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.allclose(model(x), adapted(x))


def test_bn_adaptation_needs_batch_norm():
    with pytest.raises(ValueError, match="bn_cnn"):
        bn_adapted(build_classifier("lenet"))


def test_tent_updates_only_the_batch_norm_affine_parameters():
    model = small_model()
    tent = Tent(model, lr=1e-2)
    affine = {id(p) for p in tent_parameters(tent.model)}
    trainable = [p for p in tent.model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == affine
    before = {n: p.clone() for n, p in tent.model.named_parameters()}
    tent(torch.rand(16, 3, 8, 8))
    for name, p in tent.model.named_parameters():
        changed = not torch.equal(before[name], p)
        assert changed == (id(p) in affine), f"{name}: changed={changed}"
    # The source model is untouched.
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), small_model().state_dict().values()))


def test_tent_lowers_the_entropy_of_the_batch():
    model = small_model()
    tent = Tent(model, lr=5e-2, steps=10)
    x = torch.rand(32, 3, 8, 8)
    start = entropy(bn_adapted(model)(x)).mean()
    after = entropy(tent(x)).mean()
    assert after < start - 1e-3


def test_episodic_tent_resets_and_online_tent_accumulates():
    model = small_model()
    x1, x2 = torch.rand(16, 3, 8, 8), torch.rand(16, 3, 8, 8)
    episodic = Tent(model, lr=1e-2, episodic=True)
    episodic(x1)
    out_episodic = episodic(x2)
    fresh = Tent(model, lr=1e-2)
    assert torch.allclose(out_episodic, fresh(x2), atol=1e-6), "episodic TENT must forget the previous batch"
    online = Tent(model, lr=1e-2)
    online(x1)
    assert not torch.allclose(online(x2), out_episodic, atol=1e-6), "online TENT must carry its adaptation over"


def test_predict_stream_keeps_order_and_size():
    model = small_model()
    x = torch.rand(10, 3, 8, 8)
    out = predict_stream(bn_adapted(model), x, batch_size=4)
    assert out.shape == (10, 4)
    assert torch.allclose(out[:4], bn_adapted(model)(x[:4]), atol=1e-6)


# ------------------------------------------------------------------------------ test-time training
def test_rotate_batch_turns_exactly_and_four_turns_are_the_identity():
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    # A quarter turn counter-clockwise: the right column becomes the top row.
    assert torch.equal(rotate_batch(image, 1), torch.tensor([[[[2.0, 4.0], [1.0, 3.0]]]]))
    assert torch.equal(rotate_batch(image, 2), torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]]))
    x = torch.rand(5, 3, 6, 6)
    y = x
    for _ in range(4):
        y = rotate_batch(y, 1)
    assert torch.equal(y, x)
    turns = torch.tensor([0, 1, 2, 3, 1])
    per_image = rotate_batch(x, turns)
    for i, k in enumerate(turns.tolist()):
        assert torch.equal(per_image[i], rotate_batch(x[i : i + 1], k)[0])
    with pytest.raises(ValueError, match="square"):
        rotate_batch(torch.rand(2, 3, 4, 6), 1)


def test_all_rotations_are_labelled_with_their_quarter_turns():
    x = torch.rand(3, 1, 4, 4)
    images, labels = all_rotations(x)
    assert images.shape == (12, 1, 4, 4)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for k in range(4):
        assert torch.equal(images[3 * k : 3 * (k + 1)], rotate_batch(x, k))


def trained_ttt() -> TTT:
    torch.manual_seed(0)
    method = TTT(build_classifier("bn_cnn", num_classes=4, image_size=8), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        method.update(torch.rand(16, 3, 8, 8, generator=g), torch.randint(4, (16,), generator=g), None, step / 3)
    return method.eval()


def test_joint_training_moves_the_extractor_the_head_and_the_rotation_head():
    torch.manual_seed(0)
    method = TTT(build_classifier("bn_cnn", num_classes=4, image_size=8))
    before = {name: p.detach().clone() for name, p in method.named_parameters()}
    out = method.update(torch.rand(8, 3, 8, 8), torch.randint(4, (8,)), torch.rand(8, 3, 8, 8), 0.0)
    assert set(out) == {"class_loss", "rotation_loss"}
    for part in ("model.features", "model.head", "rotation_head"):
        assert any(not torch.equal(before[n], p) for n, p in method.named_parameters() if n.startswith(part)), part


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_offline_ttt_adapts_the_extractor_only_and_starts_every_image_from_the_trained_weights():
    method = trained_ttt()
    trained = state(method)
    ttt = method.adapter(lr=0.5, steps=2)
    head, rotation_head, features = state(ttt.model.head), state(ttt.rotation_head), state(ttt.model.features)
    x = torch.rand(3, 3, 8, 8)
    logits = ttt(x)
    assert logits.shape == (3, 4)
    assert same(state(ttt.model.features), features), "offline TTT must leave the trained extractor after each image"
    assert same(state(ttt.model.head), head) and same(state(ttt.rotation_head), rotation_head)
    assert same(state(method), trained), "the adapter works on copies"
    # The test-time steps changed the prediction, and each image's logits are those of a fresh adapter.
    assert not torch.allclose(logits, method.predict(x), atol=1e-6)
    fresh = method.adapter(lr=0.5, steps=2)
    torch.testing.assert_close(logits[2:], fresh(x[2:]))


def test_online_ttt_keeps_its_updates_and_leaves_the_heads_alone():
    method = trained_ttt()
    ttt = method.adapter(lr=0.5, steps=1, online=True)
    head, rotation_head, features = state(ttt.model.head), state(ttt.rotation_head), state(ttt.model.features)
    x = torch.rand(3, 3, 8, 8)
    logits = ttt(x)
    assert not same(state(ttt.model.features), features)
    assert same(state(ttt.model.head), head) and same(state(ttt.rotation_head), rotation_head)
    offline = method.adapter(lr=0.5, steps=1)(x)
    torch.testing.assert_close(logits[0], offline[0])  # the first image starts from the trained weights in both
    assert not torch.allclose(logits[1:], offline[1:], atol=1e-6)


def test_a_test_time_step_lowers_the_image_s_rotation_loss():
    method = trained_ttt()
    ttt = method.adapter(lr=0.1, steps=5, online=True)
    image = torch.rand(1, 3, 8, 8)
    rotated, turns = all_rotations(image)

    def rotation_loss():
        with torch.no_grad():
            return F.cross_entropy(ttt.rotation_head(ttt.model.features(rotated)), turns).item()

    ttt.eval()
    start = rotation_loss()
    ttt(image)
    assert rotation_loss() < start
    with pytest.raises(ValueError, match="steps"):
        TTTAdapter(method.model, method.rotation_head, steps=0)
