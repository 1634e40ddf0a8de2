"""Label-shift estimators on synthetic data whose true posteriors and weights are known exactly."""

from __future__ import annotations

import pytest
import torch

from tlcourse.library.methods.label_shift import (
    Calibration,
    confusion_matrix,
    em_prior_adjustment,
    em_update,
    estimate_label_shift_bbse,
    fit_bcts,
    fit_temperature,
    importance_weighted_cross_entropy,
    reweight_posteriors,
    true_weights,
    weight_squared_error,
)

MEANS = torch.tensor([-2.0, 0.0, 2.0])  # three 1-D Gaussian classes, unit variance: they overlap


def gaussian_sample(prior: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(exact posteriors under a uniform source prior (n, 3), labels (n,))`` of n points drawn with ``prior``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(prior.float(), n, replacement=True, generator=g)
    x = MEANS[y] + torch.randn(n, generator=g)
    log_lik = -0.5 * (x[:, None] - MEANS[None]) ** 2
    return torch.softmax(log_lik.double(), dim=1), y


UNIFORM = torch.full((3,), 1 / 3, dtype=torch.float64)
SHIFTED = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)


def test_confusion_matrix_is_a_joint_distribution():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = torch.tensor([0, 1, 1, 1])
    c = confusion_matrix(probs, labels)
    # predictions 0, 1, 0, 1: (yhat=0, y=0) once, (yhat=0, y=1) once, (yhat=1, y=1) twice.
    assert torch.allclose(c, torch.tensor([[0.25, 0.25], [0.0, 0.5]], dtype=torch.float64))
    soft = confusion_matrix(probs, labels, soft=True)
    assert torch.isclose(soft.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(soft[:, 0], torch.tensor([0.9, 0.1], dtype=torch.float64) / 4)


def test_bbse_recovers_weights_from_an_exact_confusion_matrix():
    # Population quantities: conditional confusion P(yhat=i | y=j), a uniform source; mu = C_cond q.
    conditional = torch.tensor([[0.8, 0.1, 0.0], [0.15, 0.7, 0.2], [0.05, 0.2, 0.8]], dtype=torch.float64)
    q = SHIFTED
    # Source "probabilities" that reproduce the joint confusion exactly: one one-hot row per (i, j) cell.
    rows, labels = [], []
    for j in range(3):
        for i in range(3):
            count = round(1000 * conditional[i, j].item())
            rows += [torch.nn.functional.one_hot(torch.tensor(i), 3).double()] * count
            labels += [j] * count
    target_rows = []
    for i in range(3):
        target_rows += [torch.nn.functional.one_hot(torch.tensor(i), 3).double()] * round(
            10_000 * float(conditional[i] @ q)
        )
    w = estimate_label_shift_bbse(torch.stack(rows), torch.tensor(labels), torch.stack(target_rows))
    assert torch.allclose(w, q / UNIFORM, atol=1e-3), w


@pytest.mark.parametrize("soft", [False, True])
def test_bbse_recovers_weights_on_samples(soft):
    source_probs, source_y = gaussian_sample(UNIFORM, 30_000, seed=0)
    target_probs, _ = gaussian_sample(SHIFTED, 30_000, seed=1)
    w = estimate_label_shift_bbse(source_probs, source_y, target_probs, soft=soft)
    assert weight_squared_error(w, true_weights(SHIFTED, UNIFORM)) < 0.01, w


def test_em_recovers_the_prior_with_calibrated_posteriors_and_stays_on_the_simplex():
    target_probs, _ = gaussian_sample(SHIFTED, 30_000, seed=2)
    q, adjusted, iterations = em_prior_adjustment(target_probs, UNIFORM)
    assert iterations < 1000, "EM did not converge"
    assert torch.allclose(q, SHIFTED, atol=0.02), q
    assert (q >= 0).all() and torch.isclose(q.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(adjusted.sum(1), torch.ones(len(adjusted), dtype=torch.float64))


def test_each_em_step_keeps_the_prior_on_the_simplex_and_increases_the_likelihood():
    target_probs, _ = gaussian_sample(SHIFTED, 2_000, seed=3)
    q = UNIFORM.clone()

    def log_likelihood(prior):  # of the target sample under prior q, up to a constant
        return torch.log((target_probs * prior / UNIFORM).sum(1)).sum()

    for _ in range(20):
        new_q, _ = em_update(target_probs, UNIFORM, q)
        assert (new_q >= 0).all() and torch.isclose(new_q.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert log_likelihood(new_q) >= log_likelihood(q) - 1e-9
        q = new_q


def test_em_without_shift_stays_put():
    probs, _ = gaussian_sample(UNIFORM, 30_000, seed=4)
    q, _, _ = em_prior_adjustment(probs, UNIFORM)
    assert torch.allclose(q, UNIFORM, atol=0.02)


def test_reweighting_with_the_true_weights_gives_the_target_posterior():
    source_probs, _ = gaussian_sample(UNIFORM, 10, seed=5)
    w = true_weights(SHIFTED, UNIFORM)
    expected = source_probs * SHIFTED
    expected = expected / expected.sum(1, keepdim=True)
    assert torch.allclose(reweight_posteriors(source_probs, w), expected)
    # All-zero weights on an image's classes leave its posterior alone instead of dividing by zero.
    out = reweight_posteriors(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0.0, 1.0, 1.0]))
    assert torch.allclose(out, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))


def test_reweighting_improves_accuracy_under_shift():
    target_probs, target_y = gaussian_sample(SHIFTED, 20_000, seed=6)
    before = (target_probs.argmax(1) == target_y).double().mean()
    after = (reweight_posteriors(target_probs, true_weights(SHIFTED, UNIFORM)).argmax(1) == target_y).double().mean()
    assert after > before + 0.02


def test_temperature_scaling_undoes_a_known_temperature():
    probs, y = gaussian_sample(UNIFORM, 20_000, seed=7)
    logits = probs.log() * 3.0  # overconfident by a factor 3
    calibration = fit_temperature(logits, y)
    assert calibration.temperature == pytest.approx(3.0, rel=0.05)
    assert torch.allclose(calibration(logits), probs, atol=0.02)


def test_bcts_removes_a_class_bias():
    probs, y = gaussian_sample(UNIFORM, 20_000, seed=8)
    bias = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    logits = 2.0 * (probs.log() + bias)
    calibration = fit_bcts(logits, y)
    assert calibration.temperature == pytest.approx(2.0, rel=0.05)
    # The bias is defined up to a constant: compare centred biases.
    fitted = calibration.bias - calibration.bias.mean()
    assert torch.allclose(fitted, -(bias - bias.mean()), atol=0.1), fitted
    assert isinstance(calibration, Calibration)


def test_importance_weighted_cross_entropy_weights_each_class():
    logits = torch.zeros(2, 3)
    labels = torch.tensor([0, 2])
    loss = importance_weighted_cross_entropy(torch.tensor([2.0, 1.0, 0.0]))(logits, labels)
    # each image has CE log 3; weights 2 and 0 -> mean (2 log 3 + 0) / 2
    assert loss.item() == pytest.approx(torch.log(torch.tensor(3.0)).item())


def test_weight_squared_error_by_hand():
    assert weight_squared_error(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])) == pytest.approx(2.5)
