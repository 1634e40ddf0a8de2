"""The discrepancy between two classifiers' predictions, the quantity Maximum Classifier Discrepancy plays with.

MCD (Saito et al., CVPR 2018) trains two label predictors on one feature extractor. Where both are
right on the source but disagree on a target image, that image lies outside the source's support as
the features see it; the heads are trained to find such images (maximise the disagreement), the
features to remove them (minimise it).
"""

from __future__ import annotations

import torch


def classifier_discrepancy(p1_logits: torch.Tensor, p2_logits: torch.Tensor) -> torch.Tensor:
    """The mean absolute difference of two classifiers' class probabilities (Saito et al., CVPR 2018):

        ``d(p1, p2) = (1 / N) sum_i (1 / K) sum_k |p1_k(x_i) - p2_k(x_i)|``,  ``p = softmax(logits)``

    0 when the two heads predict the same distribution on every image; at most ``2 / K`` (two one-hot
    predictions on different classes). Symmetric in its arguments and differentiable in both.

    Args:
        p1_logits: ``(N, K)`` logits of the first head; p2_logits: ``(N, K)`` of the second.

    Returns:
        0-dim tensor.
    """
    if p1_logits.shape != p2_logits.shape or p1_logits.ndim != 2:
        raise ValueError(
            f"classifier_discrepancy needs two (N, K) logit matrices of the same shape, got "
            f"{tuple(p1_logits.shape)} and {tuple(p2_logits.shape)}."
        )
    return (p1_logits.softmax(dim=1) - p2_logits.softmax(dim=1)).abs().mean()
