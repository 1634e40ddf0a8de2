"""Colour randomisation: `random_colour_domain` and `colour_and_shift`, with an explicit generator or the global one."""

import torch

from tlcourse.library.data import Domain
from tlcourse.library.modules import colour_and_shift, random_colour_domain
from tlcourse.library.train import seed_everything


def test_colour_and_shift_keeps_shape_and_range_and_changes_images():
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    seed_everything(0)
    out = colour_and_shift(x)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.allclose(out, x)
    assert colour_and_shift(x[:, :1]).shape == (5, 3, 28, 28)  # grey images come out in colour
    seed_everything(0)
    assert torch.equal(colour_and_shift(x), out)  # the global seed decides it


def fake_base(n: int = 120, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Domain("fake", x, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


# ------------------------------------------------------------------------------------------ augmentations
def test_random_colour_domain_paints_each_image_with_its_own_colours():
    x = fake_base(16).to_rgb().x
    out = random_colour_domain(x, torch.Generator().manual_seed(0))
    again = random_colour_domain(x, torch.Generator().manual_seed(0))
    assert out.shape == (16, 3, 28, 28) and torch.equal(out, again)
    assert out.min() >= 0 and out.max() <= 1
    g = torch.Generator().manual_seed(0)
    fg, bg = torch.rand(16, 3, 1, 1, generator=g), torch.rand(16, 3, 1, 1, generator=g)
    assert torch.allclose(out, bg + (fg - bg) * x.mean(1, keepdim=True))
    assert not torch.allclose(out[0, :, 0, 0], out[1, :, 0, 0]), "every image needs its own colours"


def test_colour_and_shift_draws_from_the_generator_it_is_given():
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    once = colour_and_shift(x, generator=torch.Generator().manual_seed(5))
    twice = colour_and_shift(x, generator=torch.Generator().manual_seed(5))
    other = colour_and_shift(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(once, twice), "the same seeded generator must give the same images"
    assert not torch.equal(once, other), "another seed must give other images"
    # generator=None is torch's global generator: the numbers of the global seed, as before the argument existed.
    torch.manual_seed(5)
    assert torch.equal(colour_and_shift(x), colour_and_shift(x, generator=torch.Generator().manual_seed(5)))
