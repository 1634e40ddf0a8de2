"""Class-set splits for partial, open-set and universal domain adaptation."""

from __future__ import annotations

import pytest
import torch

from tlcourse.library.data import CLASS_SET_SPLITS, Domain, class_set_domain


def toy_domain() -> Domain:
    y = torch.arange(10).repeat(3)
    return Domain("toy", torch.rand(len(y), 3, 28, 28), y, tuple(f"c{i}" for i in range(10)))


def test_class_set_domain_maps_private_target_classes_to_unknown():
    source_classes, target_classes = CLASS_SET_SPLITS["universal"]
    target = class_set_domain(toy_domain(), target_classes, source_classes)
    assert target.classes == ("c0", "c1", "c2", "c3", "c4", "c5", "c6", "unknown")
    assert set(target.y.tolist()) == {3, 4, 5, 6, 7}
    assert (target.y == 7).sum() == 9  # classes 7, 8, 9, three images each
    partial = class_set_domain(toy_domain(), *CLASS_SET_SPLITS["partial"][::-1])
    assert len(partial.classes) == 10 and set(partial.y.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError):
        class_set_domain(toy_domain(), [10], range(5))
