"""Domain families for domain generalization: deterministic per seed, the documented domains."""

import pytest
import torch

from tlcourse.library.data import Domain, colour_by_label, rotated_family, spurious_colour_family, style_family


def fake_base(n: int = 120, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Domain("fake", x, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


# ------------------------------------------------------------------------------------------- data builders
@pytest.mark.parametrize("build", [rotated_family, style_family, spurious_colour_family])
def test_domain_builders_are_deterministic_per_seed(build):
    base = fake_base(120)
    n = 20
    a, b, c = build(base, n, seed=3), build(base, n, seed=3), build(base, n, seed=4)
    assert list(a) == list(b)
    for name in a:
        assert torch.equal(a[name].x, b[name].x) and torch.equal(a[name].y, b[name].y), name
    assert any(not torch.equal(a[name].x, c[name].x) for name in a), "another seed should give other domains"
    assert torch.equal(base.x, fake_base(120).x), "the base domain must not change"


def test_families_have_the_documented_domains_with_their_own_images():
    base = fake_base(120)
    rot = rotated_family(base, 20, seed=0)
    assert list(rot) == ["rot0", "rot15", "rot30", "rot45", "rot60", "rot75"]
    assert all(d.x.shape == (20, 3, 28, 28) and d.name == name for name, d in rot.items())
    style = style_family(base, 20, seed=0)
    assert list(style) == ["plain", "photo_blend", "colour", "invert", "noise"]
    # Disjoint images: no inverted image is the negative of a plain one.
    plain = style["plain"].x[:, 0].flatten(1)
    recovered = (1 - style["invert"].x[:, 0]).flatten(1)
    assert torch.cdist(plain, recovered).min() > 1e-3
    # rot0 is the plain image; rot15 turns other images.
    assert torch.equal(rot["rot0"].x[:, 0], rot["rot0"].x[:, 1])
    with pytest.raises(ValueError, match="need"):
        rotated_family(base, 30, seed=0)


def test_spurious_family_colour_agrees_with_the_label_as_documented():
    base = fake_base(4000)
    family = spurious_colour_family(base, 1300, seed=0)
    assert list(family) == ["train_90", "train_80", "test_10"]
    for name, expected in (("train_90", 0.9), ("train_80", 0.8), ("test_10", 0.1)):
        d = family[name]
        colour = d.x[:, 1].flatten(1).sum(1) > d.x[:, 0].flatten(1).sum(1)  # green = 1
        assert d.x[:, 2].abs().sum() == 0 and d.x.shape[1:] == (3, 14, 14)
        agreement = (colour.long() == d.y).float().mean().item()
        assert abs(agreement - expected) < 0.04, (name, agreement)
    # The shape (class >= 5) predicts the label 75% of the time: 25% label noise.
    one = colour_by_label(base, 0.5, seed=1, name="x")
    assert abs(((base.y >= 5).long() == one.y).float().mean().item() - 0.75) < 0.03
