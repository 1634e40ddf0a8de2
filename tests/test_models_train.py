"""Models: shapes and the feature/head split. Training loop: it learns, it is deterministic, it records."""

import pytest
import torch

from tlcourse.library.data import Domain
from tlcourse.library.models import ARCHITECTURES, FeatureClassifier, build_classifier
from tlcourse.library.train import (
    History,
    choose_device,
    evaluate,
    extract_features,
    fit,
    fit_method,
    predict,
    seed_everything,
)


def toy_domain(n=256, seed=0, num_classes=3) -> Domain:
    """Three classes told apart by which third of the image is bright: learnable in one epoch."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = 0.1 * torch.rand(n, 3, 28, 28, generator=g)
    for k in range(num_classes):
        x[y == k, :, :, 9 * k : 9 * k + 9] += 0.8
    return Domain("toy", x.clamp(0, 1), y, tuple(str(k) for k in range(num_classes)))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
def test_classifier_shapes(arch, channels):
    model = build_classifier(arch, num_classes=7, in_channels=channels)
    x = torch.rand(5, channels, 28, 28)
    assert isinstance(model, FeatureClassifier)
    assert model.embed(x).shape == (5, model.num_features)
    assert model(x).shape == (5, 7)
    assert torch.allclose(model.head(model.features(x)), model(x))


def test_lenet_matches_the_dann_paper():
    model = build_classifier("lenet")
    assert model.num_features == 48 * 4 * 4
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (48, (5, 5))]
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [100, 100, 10]


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="lenet"):
        build_classifier("resnet9000")


def test_fit_learns_and_records_history():
    seed_everything(0)
    train, val = toy_domain(seed=0), toy_domain(seed=1)
    model = build_classifier("lenet", num_classes=3)
    before = evaluate(model, val)
    history = fit(model, train, epochs=2, val=val, progress=False)
    assert isinstance(history, History) and len(history) == 2
    assert set(history.curves()) == {"loss", "train_acc", "val_acc"}
    assert history["loss"][1] < history["loss"][0]
    assert history.last["val_acc"] > 0.9 > before


def test_same_seed_same_numbers():
    def run():
        seed_everything(3)
        model = build_classifier("bn_cnn", num_classes=3)
        fit(model, toy_domain(64), epochs=1, batch_size=16, seed=3, progress=False)
        return predict(model, toy_domain(16, seed=5).x)

    assert torch.equal(run(), run())


def test_fit_rejects_a_fully_frozen_model():
    model = build_classifier("lenet", num_classes=3)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        fit(model, toy_domain(32), epochs=1, progress=False)


def test_fit_trains_only_the_given_parameters():
    model = build_classifier("lenet", num_classes=3)
    frozen = [p.detach().clone() for p in model.features.parameters()]
    fit(model, toy_domain(64), epochs=1, params=list(model.head.parameters()), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.features.parameters()))


def test_predict_keeps_training_mode_and_batches():
    model = build_classifier("bn_cnn", num_classes=3).train()
    x = torch.rand(10, 3, 28, 28)
    out = predict(model, x, batch_size=3)
    assert out.shape == (10, 3) and model.training
    assert torch.allclose(out, predict(model, x, batch_size=10), atol=1e-5)
    assert extract_features(model, x).shape == (10, model.num_features)


def test_device_choice_respects_the_environment(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    assert choose_device("cpu").type == "cpu"


def test_fit_method_feeds_unlabelled_target_batches_and_progress():
    from tlcourse.library.methods import SourceOnly

    class Recorder(SourceOnly):
        def update(self, source_x, source_y, target_x, progress):
            self.seen.append((len(source_x), len(target_x), progress))
            return super().update(source_x, source_y, target_x, progress)

    seed_everything(0)
    method = Recorder(build_classifier("lenet", num_classes=3))
    method.seen = []
    source, target = toy_domain(96, seed=0), toy_domain(40, seed=1)
    history = fit_method(method, source, target.x, epochs=2, batch_size=32, val=source, progress=False)
    assert [s[:2] for s in method.seen] == [(32, 32)] * 6
    progress = [s[2] for s in method.seen]
    assert progress == sorted(progress) and progress[0] == 0.0 and progress[-1] < 1.0
    assert len(history) == 2 and history.last["val_acc"] > 0.5 and "loss" in history.last


def test_fit_method_rejects_an_empty_target():
    from tlcourse.library.methods import SourceOnly

    with pytest.raises(ValueError, match="target"):
        fit_method(SourceOnly(build_classifier("lenet", num_classes=3)), toy_domain(32), torch.empty(0, 3, 28, 28),
                   progress=False)
