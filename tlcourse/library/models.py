"""Small CNNs split into a feature extractor and a label predictor.

Every transfer method in the course needs to reach the features: fine-tuning freezes them, DANN puts a
domain classifier on them, alignment losses compare them across domains. So every classifier here is a
`FeatureClassifier`: ``logits = head(features(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def count_parameters(module: nn.Module, *, trainable: bool = False) -> int:
    """Number of scalars in ``module``'s parameters (its size).

    With ``trainable``, only those that require gradients.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


class InstanceStandardize(nn.Module):
    """Standardise each image, channel by channel, to mean 0 and standard deviation 1 over its pixels.

    ``(x - mean_hw(x)) / sqrt(var_hw(x) + eps)`` for every image and channel of ``x (N, C, H, W)``; no
    parameters. It removes each image's own brightness and contrast per channel, one of the things that
    tell a grey source image from a colour photo blend; VADA and DIRT-T (Shu et al., ICLR 2018)
    instance-normalise their inputs for MNIST -> MNIST-M in the same way. A constant image maps to 0.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)


def lenet_features(in_channels: int = 3, widths: tuple[int, int] = (32, 48), batch_norm: bool = False) -> nn.Sequential:
    """The feature extractor of the DANN paper's MNIST network (Ganin et al., JMLR 2016, fig. 4).

    conv 5x5 x32 -> ReLU -> max-pool 2 -> conv 5x5 x48 -> ReLU -> max-pool 2. A 28x28 image gives
    48 x 4 x 4 = 768 features. ``batch_norm`` puts a batch norm after each convolution (`lenet_bn_features`).
    """
    layers: list[nn.Module] = []
    for c_in, c_out in zip((in_channels, widths[0]), widths):
        layers.append(nn.Conv2d(c_in, c_out, kernel_size=5))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten())


def small_lenet_features(in_channels: int = 3) -> nn.Sequential:
    """LeNet at half width (16 and 32 channels): about 2.5 times cheaper, for chapters that train many models.

    conv 5x5 x16 -> ReLU -> max-pool 2 -> conv 5x5 x32 -> ReLU -> max-pool 2: 512 features of a 28x28 image.
    """
    return lenet_features(in_channels, widths=(16, 32))


def lenet_bn_features(in_channels: int = 3) -> nn.Sequential:
    """`lenet_features` with batch normalisation after each convolution (768 features of a 28x28 image).

    conv 5x5 x32 -> BN -> ReLU -> max-pool 2 -> conv 5x5 x48 -> BN -> ReLU -> max-pool 2. With the
    methods that send each domain through the network in its own batch (`tlcourse.library.methods.adversarial.DANN`),
    every batch is normalised with its own domain's statistics while training, as in Shu et al.'s
    VADA / DIRT-T networks.
    """
    return lenet_features(in_channels, batch_norm=True)


def lenet_head(num_features: int, num_classes: int, batch_norm: bool = False) -> nn.Sequential:
    """The DANN paper's MNIST label predictor: fc 100 -> ReLU -> fc 100 -> ReLU -> fc num_classes
    (``batch_norm``: a batch norm before each ReLU, `lenet_bn_head`)."""
    layers: list[nn.Module] = []
    for width in (num_features, 100):
        layers.append(nn.Linear(width, 100))
        if batch_norm:
            layers.append(nn.BatchNorm1d(100))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.Linear(100, num_classes))


def lenet_bn_head(num_features: int, num_classes: int) -> nn.Sequential:
    """`lenet_head` with batch normalisation: fc 100 -> BN -> ReLU -> fc 100 -> BN -> ReLU -> fc num_classes."""
    return lenet_head(num_features, num_classes, batch_norm=True)


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
    "lenet_bn": (lenet_bn_features, lenet_bn_head),
    "bn_cnn": (bn_cnn_features, linear_head),
    "small_lenet": (small_lenet_features, lenet_head),
}


def mlp_classifier(in_features: int, num_classes: int, hidden: int = 256) -> FeatureClassifier:
    """A multilayer perceptron on flattened images, as in the IRM paper's ColoredMNIST experiments.

    ``features``: flatten -> fc ``hidden`` -> ReLU -> fc ``hidden`` -> ReLU; ``head``: fc ``num_classes``.
    """
    features = nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )
    return FeatureClassifier(features, nn.Linear(hidden, num_classes), hidden)


def build_classifier(
    arch: str = "lenet",
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 28,
    input_norm: str | None = None,
) -> FeatureClassifier:
    """A fresh `FeatureClassifier` of a named architecture (see `ARCHITECTURES`).

    The parameters are drawn from torch's global generator: call `tlcourse.library.train.seed_everything`
    first for a reproducible model.

    Args:
        input_norm: ``None`` (images go in as they are) or ``"instance"``: the feature extractor starts
            with `InstanceStandardize`, so that every method built on the features sees standardised
            images (and VAT's perturbations are measured in pixel units before it).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}.")
    if input_norm not in (None, "instance"):
        raise ValueError(f"input_norm must be None or 'instance', got {input_norm!r}.")
    make_features, make_head = ARCHITECTURES[arch]
    features = make_features(in_channels)
    if input_norm == "instance":
        features = nn.Sequential(InstanceStandardize(), *features)
    with torch.no_grad():
        num_features = features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
    return FeatureClassifier(features, make_head(num_features, num_classes), num_features)


# ------------------------------------------------------------------------------ torchvision's ResNet-18
#: torchvision's ImageNet weights for ResNet-18 (``ResNet18_Weights.IMAGENET1K_V1``), as torch hub caches them.
RESNET18_WEIGHTS_FILE = "resnet18-f37072fd.pth"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImageNetNormalize(nn.Module):
    """Standardise images in [0, 1] with ImageNet's channel statistics; grayscale is repeated to RGB."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std


def cached_resnet18_weights() -> Path:
    """Where torch hub keeps torchvision's ImageNet ResNet-18 weights: ``<torch.hub.get_dir()>/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_WEIGHTS_FILE


def resnet_classifier(num_classes: int, weights: str | None = None) -> FeatureClassifier:
    """torchvision's ResNet-18 as a `FeatureClassifier`: 512 features, a new linear head.

    ``features`` is ImageNet normalisation, then five blocks (stem, layer1 .. layer4), global average
    pooling and flattening; images of any size from 28x28 up, grayscale or RGB.

    Args:
        num_classes: outputs of the new head.
        weights: ``None`` for random weights, or ``"cached"`` for the ImageNet weights from the local
            torch hub cache (`cached_resnet18_weights`). Nothing is ever downloaded.

    Raises:
        FileNotFoundError: ``"cached"`` was asked for and the file is not in the cache; the message
            names the file and how to put it there.
    """
    from torchvision.models import resnet18  # torchvision is slow to import

    if weights not in (None, "cached"):
        raise ValueError(f"weights must be None or 'cached', got {weights!r}.")
    net = resnet18(weights=None)
    if weights == "cached":
        path = cached_resnet18_weights()
        if not path.is_file():
            raise FileNotFoundError(
                f"No cached ImageNet weights for ResNet-18: {path} does not exist. On a machine with internet, "
                "`python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')\"` puts them "
                "there (or copy the file into that folder; TORCH_HOME moves it). Use weights=None for random weights."
            )
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    features = nn.Sequential(
        ImageNetNormalize(),
        nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return FeatureClassifier(features, nn.Linear(net.fc.in_features, num_classes), net.fc.in_features)
