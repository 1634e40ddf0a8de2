"""Domain classifiers and their labels."""

import torch

from tlcourse.library.modules import (
    DomainDiscriminator,
    domain_labels,
)


def test_domain_discriminator_shapes():
    d = DomainDiscriminator(768)
    assert d(torch.randn(7, 768)).shape == (7,)
    assert [m.out_features for m in d if isinstance(m, torch.nn.Linear)] == [100, 1]
    deep = DomainDiscriminator(16, hidden=(32, 8))
    assert [m.out_features for m in deep if isinstance(m, torch.nn.Linear)] == [32, 8, 1]
    assert torch.equal(domain_labels(2, 3), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))
