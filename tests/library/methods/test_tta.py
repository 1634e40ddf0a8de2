"""Test-time adaptation: batch-norm statistics and TENT on a tiny batch-norm CNN."""

from __future__ import annotations

import pytest
import torch

from tlcourse.library.methods.tta import Tent, batch_norm_layers, bn_adapted, predict_stream, tent_parameters
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
