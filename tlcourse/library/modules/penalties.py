"""Penalties that ask features or classifiers to be the same across domains.

* `coral_loss`: Deep CORAL (Sun & Saenko, ECCV-W 2016): the distance between two domains' feature
  covariances, ``||C_S - C_T||_F^2 / (4 d^2)``.
* `irm_penalty`: IRMv1 (Arjovsky et al., 2019): ``|| d/dw CE(w * logits, y) at w = 1 ||^2``, zero when
  the classifier is already optimal on top of the features for this domain.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL's distance between the feature covariances of two samples (Sun & Saenko, 2016, eq. 1):

        ``L = ||C_S - C_T||_F^2 / (4 d^2)``,  with  ``C = (X - mean(X))^T (X - mean(X)) / (n - 1)``

    the unbiased covariance of each sample's ``d`` features.

    Args:
        source: ``(n_s, d)`` features, n_s >= 2; target: ``(n_t, d)`` features, n_t >= 2.

    Returns:
        0-dim tensor, differentiable in both inputs; 0 for identical samples.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"coral_loss needs two (n, d) feature matrices with the same d, got "
            f"{tuple(source.shape)} and {tuple(target.shape)}."
        )
    if len(source) < 2 or len(target) < 2:
        raise ValueError(f"coral_loss needs at least 2 samples per set, got {len(source)} and {len(target)}.")
    d = source.shape[1]

    def covariance(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0, keepdim=True)
        return centred.T @ centred / (len(x) - 1)

    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)


def irm_penalty(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """IRMv1's penalty for one domain: ``|| d/dw CE(w * logits, y) at w = 1 ||^2`` (Arjovsky et al., eq. 4).

    It is zero when scaling the classifier would not lower this domain's risk: the classifier is then
    optimal on top of the features for this domain.
    """
    scale = torch.ones((), device=logits.device, requires_grad=True)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits * scale, y), [scale], create_graph=True)
    return grad.pow(2)
