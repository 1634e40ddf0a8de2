"""Small CNNs split into a feature extractor and a label predictor.

Every transfer method in the course needs to reach the features: fine-tuning freezes them, DANN puts a
domain classifier on them, alignment losses compare them across domains. So every classifier here is a
`FeatureClassifier`: ``logits = head(features(x))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class FeatureClassifier(nn.Module):
    """A classifier as two parts: ``features`` (images -> vectors) and ``head`` (vectors -> logits).

    Args:
        features: maps images ``(N, C, H, W)`` to feature vectors ``(N, num_features)``.
        head: maps feature vectors to class logits ``(N, num_classes)``.
        num_features: the feature size, so that new heads and domain classifiers can be built on top.
    """

    def __init__(self, features: nn.Module, head: nn.Module, num_features: int) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Feature vectors ``(N, num_features)`` of images ``x``."""
        return self.features(x)


def lenet_features(in_channels: int = 3) -> nn.Sequential:
    """The feature extractor of the DANN paper's MNIST network (Ganin et al., JMLR 2016, fig. 4).

    conv 5x5 x32 -> ReLU -> max-pool 2 -> conv 5x5 x48 -> ReLU -> max-pool 2. A 28x28 image gives
    48 x 4 x 4 = 768 features.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, kernel_size=5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 48, kernel_size=5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )


def lenet_head(num_features: int, num_classes: int) -> nn.Sequential:
    """The DANN paper's MNIST label predictor: fc 100 -> ReLU -> fc 100 -> ReLU -> fc num_classes."""
    return nn.Sequential(
        nn.Linear(num_features, 100),
        nn.ReLU(),
        nn.Linear(100, 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def bn_cnn_features(in_channels: int = 3, width: int = 32) -> nn.Sequential:
    """A small CNN with batch normalisation, for the methods that adapt batch-norm statistics.

    Three conv-BN-ReLU blocks (width, 2 width, 2 width channels), two max-pools, global average
    pooling: ``2 * width`` features for any image size.
    """

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, width),
        nn.MaxPool2d(2),
        *block(width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def linear_head(num_features: int, num_classes: int) -> nn.Linear:
    """A single linear layer: the head used for linear probes and batch-norm CNNs."""
    return nn.Linear(num_features, num_classes)


ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], Callable[[int, int], nn.Module]]] = {
    "lenet": (lenet_features, lenet_head),
    "bn_cnn": (bn_cnn_features, linear_head),
}


def build_classifier(
    arch: str = "lenet",
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 28,
) -> FeatureClassifier:
    """A fresh `FeatureClassifier` of a named architecture (see `ARCHITECTURES`).

    The parameters are drawn from torch's global generator: call `tlcourse.train.seed_everything`
    first for a reproducible model.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}.")
    make_features, make_head = ARCHITECTURES[arch]
    features = make_features(in_channels)
    with torch.no_grad():
        num_features = features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
    return FeatureClassifier(features, make_head(num_features, num_classes), num_features)
