"""Domain classifiers: the third player of domain-adversarial training (Ganin et al., JMLR 2016).

A domain classifier reads features and tells which domain they came from; behind a gradient reversal
(`tlcourse.library.modules.reversal`) it teaches the feature extractor to hide the domain.
`DomainDiscriminator` separates source from target (one logit), `MultiDomainDiscriminator` K source
domains (K logits, DomainBed's DANN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DomainDiscriminator(nn.Sequential):
    """The domain classifier ``G_d``: features ``(N, d)`` -> one logit ``(N,)`` for "this is a source image".

    The default is the DANN paper's MNIST domain classifier (JMLR 2016, fig. 4): fc 100 -> ReLU -> fc 1.
    ``hidden=(1024, 1024)`` gives the paper's deeper classifier for SVHN and the Office images.
    """

    def __init__(self, num_features: int, hidden: Sequence[int] = (100,)) -> None:
        layers: list[nn.Module] = []
        width = num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        super().__init__(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return super().forward(features).squeeze(1)


class MultiDomainDiscriminator(nn.Sequential):
    """A K-way domain classifier: features ``(N, d)`` -> domain logits ``(N, K)`` (fc -> ReLU -> fc)."""

    def __init__(self, num_features: int, num_domains: int, hidden: int = 100) -> None:
        super().__init__(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_domains))


def domain_labels(n_source: int, n_target: int, device: torch.device | None = None) -> torch.Tensor:
    """Domain labels for ``[source; target]``: 1 for a source image, 0 for a target image, float ``(n_s + n_t,)``."""
    return torch.cat([torch.ones(n_source, device=device), torch.zeros(n_target, device=device)])
