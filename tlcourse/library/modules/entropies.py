"""The Shannon entropy of a classifier's predictions: how unsure it is.

    ``H(p) = - sum_k p_k log p_k``,  ``p = softmax(logits)``, in nats

Minimising it on unlabelled target images pushes the decision boundary out of dense target regions
(entropy minimisation, Grandvalet & Bengio, NeurIPS 2004; VADA and DIRT-T, Shu et al., ICLR 2018) or
adapts a model at test time (TENT, Wang et al., ICLR 2021).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of the softmax of each row, ``(N,)`` in nats; differentiable.

    Args:
        logits: class scores ``(N, K)``.

    Returns:
        ``(N,)``: 0 for a one-hot prediction, ``log K`` for a uniform one.
    """
    log_p = F.log_softmax(logits, dim=1)  # stable where p is tiny: p log p -> 0
    return -(log_p.exp() * log_p).sum(1)


def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean `entropy` over the batch, ``(1/N) sum_i H(p_i)``: a 0-dim tensor to minimise.

    Args:
        logits: class scores ``(N, K)``.

    Returns:
        a 0-dim tensor, 0 for one-hot predictions, ``log K`` for uniform ones; differentiable.
    """
    return entropy(logits).mean()
