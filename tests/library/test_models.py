"""Models: shapes, the feature/head split, the architectures, the parameter count."""

import pytest
import torch

from tlcourse.library.models import ARCHITECTURES, FeatureClassifier, build_classifier, count_parameters


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
def test_classifier_shapes(arch, channels):
    model = build_classifier(arch, num_classes=7, in_channels=channels)
    x = torch.rand(5, channels, 28, 28)
    assert isinstance(model, FeatureClassifier)
    assert model.embed(x).shape == (5, model.num_features)
    assert model(x).shape == (5, 7)
    assert torch.allclose(model.head(model.features(x)), model(x))


def test_lenet_matches_the_dann_paper():
    model = build_classifier("lenet")
    assert model.num_features == 48 * 4 * 4
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (48, (5, 5))]
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [100, 100, 10]


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="lenet"):
        build_classifier("resnet9000")


def test_count_parameters_counts_every_scalar_or_only_the_trainable_ones():
    model = build_classifier("lenet", num_classes=4)
    total = sum(p.numel() for p in model.parameters())
    model.features.requires_grad_(False)
    assert count_parameters(model) == total
    assert count_parameters(model, trainable=True) == sum(p.numel() for p in model.head.parameters())
