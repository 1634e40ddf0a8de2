"""Virtual adversarial training (VAT; Miyato et al., TPAMI 2018): smoothness where the data are.

    ``VAT(x) = KL(p(y|x) || p(y|x + r_adv))``,  ``r_adv = argmax_{||r|| <= eps} KL(p(y|x) || p(y|x + r))``

No label is needed ("virtual" adversarial): the loss makes the classifier locally Lipschitz around
every image, labelled or not, so that confident predictions cannot come from a boundary that merely
skirts the points (VADA and DIRT-T, Shu et al., ICLR 2018).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def unit_directions(d: torch.Tensor) -> torch.Tensor:
    """Each sample of ``d (N, ...)`` scaled to unit L2 norm."""
    norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
    return d / norm.view(-1, *([1] * (d.dim() - 1)))


def virtual_adversarial_loss(
    model: nn.Module, x: torch.Tensor, *, radius: float = 1.0, xi: float = 0.1, power_iterations: int = 1
) -> torch.Tensor:
    """Virtual adversarial training (Miyato et al., TPAMI 2018): ``E_x[ KL(p(y|x) || p(y|x + r_adv)) ]``.

    ``r_adv`` is the perturbation of L2 norm ``radius`` that changes the prediction most, found by
    ``power_iterations`` steps of the power method on the KL's Hessian, started from a random direction
    (torch's global generator) and probed at distance ``xi``. The clean prediction is a constant (no
    gradient), as in the paper.

    Args:
        model: maps images ``(N, C, H, W)`` to logits ``(N, K)``.
        x: the images (labels are not needed: "virtual" adversarial).
        radius: ``epsilon``, the L2 norm of the perturbation, in pixel units (images in [0, 1]).
        xi: the probe distance. The paper's 1e-6 is meant for float64: in float32 the KL at that
            distance (about xi^2) drowns in rounding, and the power step returns noise.
    """
    with torch.no_grad():
        p_clean = F.softmax(model(x), dim=1)
    d = unit_directions(torch.randn_like(x))
    for _ in range(power_iterations):
        d.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(x + xi * d), dim=1), p_clean, reduction="batchmean")
        (grad,) = torch.autograd.grad(kl, d)
        d = unit_directions(grad.detach())
    return F.kl_div(F.log_softmax(model(x + radius * d), dim=1), p_clean, reduction="batchmean")
