"""The training loops: they learn, are deterministic, record, select; and the domain-generalization protocol."""

import copy
from unittest import mock

import pytest
import torch

from tlcourse.library.data import Domain
from tlcourse.library.methods import ERM
from tlcourse.library.models import build_classifier
from tlcourse.library.train import (
    History,
    choose_device,
    evaluate,
    extract_features,
    fit,
    fit_domains,
    fit_method,
    for_inference,
    leave_one_domain_out,
    predict,
    run_epochs,
    seed_everything,
    split_domains,
)


def toy_domain(n=256, seed=0, num_classes=3) -> Domain:
    """Three classes told apart by which third of the image is bright: learnable in one epoch."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = 0.1 * torch.rand(n, 3, 28, 28, generator=g)
    for k in range(num_classes):
        x[y == k, :, :, 9 * k : 9 * k + 9] += 0.8
    return Domain("toy", x.clamp(0, 1), y, tuple(str(k) for k in range(num_classes)))


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


@pytest.mark.parametrize("arch,channels", [("lenet", 1), ("lenet", 3), ("bn_cnn", 3)])
def test_predict_in_channels_last_gives_the_models_own_outputs_and_leaves_it_as_it_was(arch, channels):
    torch.manual_seed(0)
    model = build_classifier(arch, num_classes=5, in_channels=channels).eval()
    x = torch.rand(300, channels, 28, 28)
    with torch.no_grad():
        own = model(x)
    fast = for_inference(model)
    assert fast is not model and next(fast.parameters()).is_contiguous(memory_format=torch.channels_last)
    out = predict(model, x)
    assert torch.allclose(out, own, atol=1e-5, rtol=0) and out.is_contiguous()
    assert torch.equal(out.argmax(1), own.argmax(1))
    assert all(p.is_contiguous() for p in model.parameters()), "predict changed the trained model's memory format"
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28 * channels, 5))
    assert for_inference(mlp) is mlp  # nothing to gain without convolutions


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
        fit_method(
            SourceOnly(build_classifier("lenet", num_classes=3)),
            toy_domain(32),
            torch.empty(0, 3, 28, 28),
            progress=False,
        )


# ------------------------------------------------------------------- fit_domains and leave-one-domain-out
def fake_base(n: int = 120, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Domain("fake", x, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


# ---------------------------------------------------------------------------------------------- loops
def test_leave_one_domain_out_never_trains_on_the_held_out_domain():
    domains = {name: fake_base(10, seed=i) for i, name in enumerate("abcd")}
    calls = []

    def train_and_test(training, held_out):
        calls.append((list(training), held_out))
        return float(len(training))

    results = leave_one_domain_out(domains, train_and_test)
    assert list(results) == list("abcd") and set(results.values()) == {3.0}
    for (training, held_out), name in zip(calls, "abcd"):
        assert held_out is domains[name]
        assert training == [n for n in "abcd" if n != name]
    with pytest.raises(ValueError, match="at least two"):
        leave_one_domain_out({"a": domains["a"]}, train_and_test)


def test_fit_domains_select_needs_a_validation_set():
    with pytest.raises(ValueError, match="val="):
        fit_domains(ERM(build_classifier()), [fake_base(16).to_rgb()], select=True, progress=False)


def test_split_domains_pools_validation_parts():
    domains = {n: fake_base(20, seed=i) for i, n in enumerate("ab")}
    train, val = split_domains(domains, 0.25, seed=0)
    assert [len(d) for d in train.values()] == [15, 15] and len(val) == 10


# ----------------------------------------------------------------------------------- the shared epoch loop
def test_fit_takes_tensors_of_any_shape_and_draws_the_batches_it_documents():
    g = torch.Generator().manual_seed(0)
    features, labels = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 3)
    by_hand = copy.deepcopy(head)
    history = fit(
        head, (features, labels), epochs=2, lr=1e-2, batch_size=16, seed=3, progress=False, device=torch.device("cpu")
    )
    assert len(history) == 2 and 0 <= history["train_acc"][-1] <= 1
    # The same run written out: randperm(n, generator).split(batch_size) each epoch, Adam, cross-entropy.
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(3)
    for _ in range(2):
        for idx in torch.randperm(50, generator=generator).split(16):
            loss = torch.nn.functional.cross_entropy(by_hand(features[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(head.parameters(), by_hand.parameters()))


def test_run_epochs_keeps_the_later_of_tied_best_epochs_and_stops_early():
    model = torch.nn.Linear(2, 2)
    val = toy_domain(8)
    accuracies = iter([0.5, 0.7, 0.7, 0.6, 0.4, 0.9])
    states = []

    def train_epoch():
        with torch.no_grad():
            model.weight.add_(1.0)
        states.append(model.weight.detach().clone())
        return {"loss": 1.0}

    with mock.patch("tlcourse.library.train.evaluate", lambda *args, **kwargs: next(accuracies)):
        history = run_epochs(model, train_epoch, epochs=6, val=val, early_stopping=2, progress=False)
    assert len(history) == 5 and history.best_epoch == 3  # 0.7 twice: the later; stopped after two worse epochs
    assert torch.equal(model.weight, states[2])
    with pytest.raises(ValueError, match="validation"):
        run_epochs(model, train_epoch, epochs=1, select=True)


def test_history_best_is_the_later_of_tied_epochs_and_needs_every_epoch():
    history = History()
    for acc in (0.5, 0.7, 0.6, 0.7):
        history.append(val_acc=acc)
    assert history.best("val_acc") == 3
    history.append(loss=1.0)  # an epoch without val_acc
    with pytest.raises(KeyError, match="val_acc"):
        history.best("val_acc")
