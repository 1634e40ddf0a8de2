"""FixMatch's consistency loss (Sohn et al., NeurIPS 2020; for domain adaptation, AdaMatch, ICLR 2022).

    ``L = (1/N) sum_i 1[max_k p_ik >= tau] * CE(G(a(x_i)), argmax_k p_ik)``,  ``p = softmax(G(x))``

Where the network is confident on a clean unlabelled image, that prediction becomes a label for a
strongly augmented copy ``a(x)``. VAT asks for the same answer under the worst *small* perturbation;
this asks for it under a *large*, meaningful one, chosen from what we believe the label does not
depend on.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def confident_consistency_loss(
    clean_logits: torch.Tensor, augmented_logits: torch.Tensor, threshold: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's loss on unlabelled images: the clean prediction, where it is confident, labels the augmented copy.

    ``(1/N) sum_i 1[max_k p_ik >= threshold] * CE(augmented_logits_i, argmax_k p_ik)``, with
    ``p = softmax(clean_logits)`` a constant (no gradient flows into the pseudo-label).

    Args:
        clean_logits: ``(N, K)`` logits of the clean images.
        augmented_logits: ``(N, K)`` logits of their augmented copies, in the same order.
        threshold: the confidence a prediction needs to become a label (FixMatch's 0.95).

    Returns:
        ``(loss, mask_rate)``: the 0-dim loss (unconfident images count as 0, so it is 0 when none is
        confident) and the share of images that were confident enough.
    """
    if clean_logits.shape != augmented_logits.shape:
        raise ValueError(
            f"clean and augmented logits must match, got {tuple(clean_logits.shape)} "
            f"and {tuple(augmented_logits.shape)}"
        )
    confidence, pseudo_label = F.softmax(clean_logits.detach(), dim=1).max(dim=1)
    mask = (confidence >= threshold).float()
    loss = (F.cross_entropy(augmented_logits, pseudo_label, reduction="none") * mask).mean()
    return loss, mask.mean()
