"""Label shift: estimate the target's class proportions from unlabelled images, then correct for them.

Under label shift ``p_t(x | y) = p_s(x | y)`` and only the class prior moves, from ``p`` (source) to
``q`` (target). Everything needed is then the vector of **importance weights** ``w_k = q_k / p_k``:

* the Bayes-optimal target posterior is the source one re-weighted,
  ``p_t(y | x) ∝ w_y p_s(y | x)`` (`reweight_posteriors`);
* training on the source with class weights ``w_y`` in the loss minimises the target risk
  (`importance_weighted_cross_entropy`).

Two estimators of ``w``, in the style of *abstention* (Alexandari et al., ICML 2020):

* **BBSE**, black-box shift estimation (Lipton, Wang & Smola, ICML 2018): with the joint confusion
  matrix ``C[i, j] = P_s(yhat = i, y = j)`` measured on labelled source validation data and the
  target's prediction rates ``mu[i] = P_t(yhat = i)``, label shift gives ``mu = C w``; solve it
  (`estimate_label_shift_bbse`). "Soft" BBSE uses predicted probabilities instead of hard labels.
* **EM** (Saerens, Latinne & Decaestecker, Neural Computation 2002): alternate re-weighting the
  posteriors with the current ``q`` and setting ``q`` to their mean (`em_prior_adjustment`). It
  needs *calibrated* posteriors: temperature scaling or bias-corrected temperature scaling (BCTS),
  fitted on source validation data (`fit_temperature`, `fit_bcts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F


def _check_probabilities(probs: Tensor, name: str) -> Tensor:
    if probs.ndim != 2:
        raise ValueError(f"{name} must have shape (N, K), got {tuple(probs.shape)}.")
    return probs.detach().to(torch.float64)


def confusion_matrix(source_probs: Tensor, source_labels: Tensor, soft: bool = False) -> Tensor:
    """Joint confusion matrix ``C[i, j] = P_s(yhat = i, y = j)``, float64 ``(K, K)`` summing to 1.

    Args:
        source_probs: predicted probabilities ``(N, K)`` on labelled *source validation* images.
        source_labels: their labels ``(N,)``.
        soft: count the predicted probabilities instead of the one-hot argmax (soft BBSE).
    """
    probs = _check_probabilities(source_probs, "source_probs")
    k = probs.shape[1]
    predicted = probs if soft else F.one_hot(probs.argmax(1), k).double()
    truth = F.one_hot(source_labels.long(), k).double()
    return predicted.T @ truth / len(probs)


def estimate_label_shift_bbse(
    source_probs: Tensor, source_labels: Tensor, target_probs: Tensor, soft: bool = False
) -> Tensor:
    """BBSE (Lipton et al., 2018): importance weights ``w = C^{-1} mu``, clipped at 0.

    ``C[i, j] = P_s(yhat = i, y = j)`` (source validation), ``mu[i] = P_t(yhat = i)`` (unlabelled
    target). Under label shift ``P_t(yhat = i) = sum_j P_s(yhat = i | y = j) q_j = sum_j C[i, j] w_j``.
    A least-squares solve keeps it defined when ``C`` is singular (a class never predicted).

    Returns:
        float64 ``(K,)`` weights ``w_k ≈ q_k / p_k``, non-negative.
    """
    c = confusion_matrix(source_probs, source_labels, soft=soft)
    target = _check_probabilities(target_probs, "target_probs")
    mu = target.mean(0) if soft else F.one_hot(target.argmax(1), c.shape[0]).double().mean(0)
    w = torch.linalg.lstsq(c, mu.unsqueeze(1)).solution.squeeze(1)
    return w.clamp_min(0.0)


def source_prior(labels: Tensor, num_classes: int) -> Tensor:
    """Class proportions ``p`` (float64 ``(K,)``) of a labelled source sample."""
    counts = torch.bincount(labels.long(), minlength=num_classes).double()
    return counts / counts.sum()


def em_update(probs: Tensor, source_prior: Tensor, target_prior: Tensor) -> tuple[Tensor, Tensor]:
    """One EM step of Saerens et al. (2002): returns ``(new target prior, adjusted posteriors)``.

    E-step: ``p_t(y | x_i) = p_s(y | x_i) q_y / p_y``, normalised over ``y``.
    M-step: ``q_new = (1/N) sum_i p_t(. | x_i)``.

    Args:
        probs: source-model posteriors on target images ``(N, K)``.
        source_prior, target_prior: ``p`` and the current ``q``, ``(K,)``.
    """
    adjusted = probs * (target_prior / source_prior)
    adjusted = adjusted / adjusted.sum(1, keepdim=True)
    return adjusted.mean(0), adjusted


def em_prior_adjustment(
    target_probs: Tensor, source_prior: Tensor, max_iter: int = 1000, tol: float = 1e-8
) -> tuple[Tensor, Tensor, int]:
    """EM estimate of the target prior (Saerens et al., 2002), starting from ``q = p``.

    Every iterate is a mean of probability vectors, so it stays on the simplex.

    Returns:
        ``(q, adjusted_posteriors, iterations)``: the prior float64 ``(K,)``, the re-weighted
        posteriors ``(N, K)``, and the number of steps until ``max |q_new - q| < tol``.
    """
    probs = _check_probabilities(target_probs, "target_probs")
    p = source_prior.double()
    q = p.clone()
    adjusted = probs
    for iteration in range(1, max_iter + 1):
        q_new, adjusted = em_update(probs, p, q)
        done = float((q_new - q).abs().max()) < tol
        q = q_new
        if done:
            return q, adjusted, iteration
    return q, adjusted, max_iter


def reweight_posteriors(probs: Tensor, weights: Tensor) -> Tensor:
    """The label-shift correction of a classifier: ``p_t(y | x) ∝ w_y p_s(y | x)``, ``(N, K)``."""
    adjusted = probs.double() * weights.double().clamp_min(0)
    total = adjusted.sum(1, keepdim=True)
    # An image whose every plausible class got weight 0 keeps its source posterior.
    return torch.where(total > 0, adjusted / total.clamp_min(1e-300), probs.double())


def weight_squared_error(estimated: Tensor, true: Tensor) -> float:
    """Mean squared error ``(1/K) sum_k (w_hat_k - w_k)^2`` between estimated and true weights."""
    return float(((estimated.double() - true.double()) ** 2).mean())


def importance_weighted_cross_entropy(weights: Tensor):
    """A loss for `tlcourse.library.train.fit`: cross-entropy with class ``y`` weighted by ``w_y``.

    Minimising it on source data minimises the expected target loss under label shift
    (importance-weighted empirical risk minimisation; Lipton et al., 2018, section 5).
    """
    w = weights.detach().float()

    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        per_image = F.cross_entropy(logits, labels, reduction="none")
        return (w.to(logits.device)[labels] * per_image).mean()

    return loss


# --------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Calibrated probabilities ``softmax(logits / T + b)``: temperature ``T > 0`` and class biases ``b``.

    ``b = 0`` is temperature scaling (Guo et al., 2017); a fitted ``b`` is bias-corrected temperature
    scaling (BCTS; Alexandari et al., 2020), which fixes the systematic per-class bias that EM is
    sensitive to.
    """

    temperature: float
    bias: Tensor

    def __call__(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.double() / self.temperature + self.bias.double(), dim=1)


def _fit_calibration(logits: Tensor, labels: Tensor, with_bias: bool, max_iter: int = 200) -> Calibration:
    logits, labels = logits.detach().double(), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    bias = torch.zeros(logits.shape[1], dtype=torch.float64, requires_grad=with_bias)
    params = [log_t, bias] if with_bias else [log_t]
    optimizer = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp() + bias, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return Calibration(float(log_t.detach().exp()), bias.detach().clone())


def fit_temperature(logits: Tensor, labels: Tensor) -> Calibration:
    """Temperature scaling: the ``T`` that minimises the NLL of held-out *source* ``(logits, labels)``."""
    return _fit_calibration(logits, labels, with_bias=False)


def fit_bcts(logits: Tensor, labels: Tensor) -> Calibration:
    """Bias-corrected temperature scaling: ``T`` and per-class biases ``b`` by NLL on source validation."""
    return _fit_calibration(logits, labels, with_bias=True)


def true_weights(target_prior: Tensor, source_prior: Tensor) -> Tensor:
    """The importance weights ``w = q / p`` of a known shift (0 where ``p = 0``)."""
    p, q = source_prior.double(), target_prior.double()
    return torch.where(p > 0, q / p.clamp_min(1e-300), torch.zeros_like(q))
