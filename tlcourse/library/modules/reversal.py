"""The gradient reversal layer and DANN's two schedules (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016).

``R_lambda(x) = x`` on the way forward, ``dR/dx = -lambda I`` on the way back: placed between a feature
extractor and a domain classifier, one backward pass makes the classifier descend its loss while the
features ascend it. ``lambda`` follows `dann_lambda`; the learning rate, `annealed_lr`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GradientReversalFunction(torch.autograd.Function):
    """``R_lambda(x) = x`` forward, ``dR/dx = -lambda I`` backward (Ganin & Lempitsky 2015, eq. 9-10).

    ``lambda_`` is a Python float: it is a constant of the layer, not something to learn, so its
    gradient is ``None``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lambda_ = float(lambda_)
        # A new tensor (not `x` itself), so that autograd records this node in the graph.
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.lambda_ * grad_output, None


def gradient_reversal(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Apply the gradient reversal layer: returns ``x`` unchanged; gradients flowing back are times ``-lambda_``.

    Args:
        x: any tensor, e.g. features ``(N, d)``.
        lambda_: the trade-off between the label loss and the domain loss (``lambda >= 0``).
    """
    return GradientReversalFunction.apply(x, lambda_)


class GradientReversal(nn.Module):
    """The gradient reversal layer as a module, with a coefficient the training schedule sets.

    Example::

        grl = GradientReversal()
        grl.lambda_ = dann_lambda(progress)   # before each step
        domain_logits = discriminator(grl(features))
    """

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gradient_reversal(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_:.4g}"


def dann_lambda(p: float, gamma: float = 10.0) -> float:
    """The paper's schedule for the adaptation factor: ``lambda_p = 2 / (1 + exp(-gamma p)) - 1``.

    It rises from 0 at the start of training (``p = 0``) to almost 1 at the end (``p = 1``), so that the
    domain classifier's noisy early signal does not disturb the features while they are still random.

    Args:
        p: training progress, from 0 to 1.
        gamma: how fast lambda rises (the paper's 10).
    """
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def annealed_lr(p: float, lr0: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The paper's learning-rate annealing: ``mu_p = mu_0 / (1 + alpha p) ** beta``.

    With the paper's ``alpha = 10, beta = 0.75`` the rate falls to about 17% of ``mu_0`` at the end.
    """
    return lr0 / (1.0 + alpha * p) ** beta
