"""DAN and MCD: what each step moves, the source-only limit, and prediction through the shared API."""

import math

import pytest
import torch
from torch.nn import functional as F

from tlcourse.library.data import Domain
from tlcourse.library.methods import DAN, MCD, fresh_copy
from tlcourse.library.metrics import mk_mmd2_unbiased
from tlcourse.library.models import mlp_classifier
from tlcourse.library.modules import annealed_lr, classifier_discrepancy, dann_lambda, mk_mmd_linear
from tlcourse.library.train import evaluate, fit_method, seed_everything


def small_model(seed: int = 0):
    seed_everything(seed)
    return mlp_classifier(3 * 8 * 8, num_classes=4, hidden=16)


def tiny_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    source_x, source_y = torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)
    return source_x, source_y, torch.rand(16, 3, 8, 8, generator=g) + 0.5  # a brighter target


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def moved(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], p) for name, p in module.named_parameters())


# ------------------------------------------------------------------------------------------------ DAN
def test_dan_step_reports_its_terms_and_follows_the_schedules():
    method = DAN(small_model(), mmd_weight=0.5)
    before = snapshot(method.model)
    out = method.update(*tiny_batch(), progress=0.5)
    assert set(out) == {"class_loss", "mmd", "mmd_weight"}
    assert math.isfinite(out["mmd"])
    assert out["mmd_weight"] == pytest.approx(0.5 * dann_lambda(0.5))
    assert method.optimizer.param_groups[0]["lr"] == pytest.approx(annealed_lr(0.5, 1e-3))
    assert moved(before, method.model)


def test_dan_mmd_term_reaches_the_features_and_not_the_head():
    method = DAN(small_model())
    xs, _, xt = tiny_batch()
    fs, ft = method.model.features(xs), method.model.features(xt)
    mk_mmd_linear(fs, ft, [1.0, 2.0]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.features.parameters())
    assert all(p.grad is None for p in method.model.head.parameters())


def test_dan_with_weight_zero_is_source_only_training():
    xs, ys, xt = tiny_batch()
    dan = DAN(small_model(1), mmd_weight=0.0, anneal_lr=False)
    plain = small_model(1)
    dan.update(xs, ys, xt, progress=0.7)
    optimizer = torch.optim.Adam(plain.parameters(), lr=1e-3)
    F.cross_entropy(plain(xs), ys).backward()
    optimizer.step()
    for a, b in zip(dan.model.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_dan_takes_the_quadratic_estimate_and_checks_its_arguments():
    method = DAN(small_model(), estimate=mk_mmd2_unbiased, schedule_weight=False)
    out = method.update(*tiny_batch(), progress=0.0)
    assert out["mmd_weight"] == 1.0 and math.isfinite(out["mmd"])
    with pytest.raises(ValueError, match="mmd_weight"):
        DAN(small_model(), mmd_weight=-1)
    with pytest.raises(ValueError, match="bandwidth_multipliers"):
        DAN(small_model(), bandwidth_multipliers=())


# ------------------------------------------------------------------------------------------------ MCD
class RecordingMCD(MCD):
    """MCD that keeps a snapshot of the extractor and both heads around each of its optimizer steps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = []

    def take(self, loss, *optimizers):
        parts = (self.model.features, self.model.head, self.head2)
        before = [snapshot(part) for part in parts]
        super().take(loss, *optimizers)
        self.log.append(tuple(moved(b, part) for b, part in zip(before, parts)))


def test_mcd_steps_move_the_right_players():
    """A moves all three; B the two heads only; C (num_k times) the extractor only."""
    method = RecordingMCD(small_model(), num_k=3)
    out = method.update(*tiny_batch(), progress=0.3)
    assert set(out) == {"class_loss", "discrepancy_heads", "discrepancy_features"}
    # (extractor, head 1, head 2) moved?
    assert method.log == [(True, True, True), (False, True, True)] + [(True, False, False)] * 3


def test_mcd_heads_start_apart_and_predict_with_their_ensemble():
    method = MCD(small_model())
    assert moved(snapshot(method.model.head), method.head2)  # a fresh initialisation, not a copy
    x = tiny_batch()[0]
    features = method.model.features(x)
    logits1, logits2 = method.model.head(features), method.head2(features)
    assert classifier_discrepancy(logits1, logits2) > 0
    torch.testing.assert_close(method.predict(x), (logits1 + logits2) / 2)
    torch.testing.assert_close(method(x), method.predict(x))  # what `evaluate(method, ...)` calls
    with pytest.raises(ValueError, match="num_k"):
        MCD(small_model(), num_k=0)


def test_mcd_steps_one_at_a_time_are_its_update_and_its_heads_are_models():
    """`step_a`, `step_b`, `step_c` each move their own players (the toy panel of chapter 3 calls them
    alone), and `heads()` gives F1(G(x)) and F2(G(x)) as models that share G."""
    method = RecordingMCD(small_model())
    source_x, source_y, target_x = tiny_batch()
    method.step_a(source_x, source_y)
    method.step_b(source_x, source_y, target_x)
    method.step_c(target_x)
    assert method.log == [(True, True, True), (False, True, True), (True, False, False)]
    first, second = method.heads()
    features = method.model.features(target_x)
    torch.testing.assert_close(first(target_x), method.model.head(features))
    torch.testing.assert_close(second(target_x), method.head2(features))
    assert first[0] is second[0] is method.model.features


def test_fresh_copy_has_the_same_shape_and_new_values():
    head = small_model().head
    twin = fresh_copy(head)
    assert [p.shape for p in twin.parameters()] == [p.shape for p in head.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(twin.parameters(), head.parameters()))


def test_mcd_and_dan_train_and_evaluate_through_the_shared_loop():
    g = torch.Generator().manual_seed(0)
    source = Domain("source", torch.rand(32, 3, 8, 8, generator=g), torch.arange(32) % 4, ("a", "b", "c", "d"))
    target = torch.rand(32, 3, 8, 8, generator=g)
    for method in (MCD(small_model(), num_k=2), DAN(small_model())):
        cpu = torch.device("cpu")
        history = fit_method(method, source, target, epochs=1, batch_size=16, progress=False, device=cpu)
        assert len(history) == 1
        assert 0.0 <= evaluate(method, source) <= 1.0
