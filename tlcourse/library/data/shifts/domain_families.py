"""Many source domains for domain generalization, built from Fashion-MNIST with seeded transforms.

Three families, each a ``{name: Domain}`` dict in a fixed order:

* :func:`rotated_family`: the same kind of images turned by 0, 15, 30, 45, 60 and 75 degrees, as in
  DomainBed's RotatedMNIST (Gulrajani & Lopez-Paz, 2021). Each domain gets its own images.
* :func:`style_family`: plain, photo-blend, colour, inverted and noisy images (chapter 1's shifts),
  again each with its own images.
* :func:`spurious_colour_family`: a ColoredMNIST (Arjovsky et al., 2019) analogue. The label is binary
  (classes 0-4 against 5-9) with 25% label noise, and each image is painted red or green. The colour
  agrees with the label in 90% and 80% of the images of the two training domains, but only in 10% of the
  test domain: a shortcut that works in training and fails at test time.

Every builder is deterministic for a given ``seed`` (it uses its own generators, never the global ones),
and never modifies the base domain it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..domain import Domain
from .image_transforms import add_noise, colorize, invert, photo_blend, rotate

ROTATIONS: tuple[int, ...] = (0, 15, 30, 45, 60, 75)
STYLES: tuple[str, ...] = ("plain", "photo_blend", "colour", "invert", "noise")
#: Colour-label agreement of the spurious family's domains: two training domains, one test domain.
SPURIOUS_AGREEMENT: dict[str, float] = {"train_90": 0.9, "train_80": 0.8, "test_10": 0.1}


def disjoint_chunks(base: Domain, k: int, n: int, seed: int) -> list[Domain]:
    """``k`` random, disjoint subsets of ``n`` images of ``base`` (the same for the same seed)."""
    if k * n > len(base):
        raise ValueError(f"{k} domains of {n} images need {k * n} images; {base.name!r} has {len(base)}.")
    order = torch.randperm(len(base), generator=torch.Generator().manual_seed(seed))
    return [base.subset(order[i * n : (i + 1) * n]) for i in range(k)]


def rotated_family(
    base: Domain, n_per_domain: int = 1000, *, seed: int = 0, angles: Sequence[int] = ROTATIONS
) -> dict[str, Domain]:
    """One domain per angle, ``"rot0"``, ``"rot15"``, ...: disjoint images of ``base`` turned by that angle.

    Returns:
        ``{name: Domain}`` of RGB domains ``(n_per_domain, 3, H, W)``, in the order of ``angles``.
    """
    chunks = disjoint_chunks(base, len(angles), n_per_domain, seed)
    family = {}
    for angle, chunk in zip(angles, chunks):
        turned = rotate(chunk, degrees=float(angle)) if angle else chunk.to_rgb()
        family[f"rot{angle}"] = turned.with_images(turned.x, f"rot{angle}")
    return family


def style_family(
    base: Domain, n_per_domain: int = 1000, *, seed: int = 0, styles: Sequence[str] = STYLES
) -> dict[str, Domain]:
    """One domain per style (see :data:`STYLES`), each from its own images of ``base``.

    ``plain`` is the image as it is (grey, repeated to RGB); the others are chapter 1's seeded shifts
    (`tlcourse.library.data.shifts.image_transforms`), each seeded from ``seed`` and the style's position.
    """
    makers = {
        "plain": lambda d, s: d.to_rgb().with_images(d.to_rgb().x, "plain"),
        "photo_blend": lambda d, s: photo_blend(d, seed=s),
        "colour": lambda d, s: colorize(d, seed=s),
        "invert": lambda d, s: invert(d, seed=s),
        "noise": lambda d, s: add_noise(d, seed=s),
    }
    unknown = [s for s in styles if s not in makers]
    if unknown:
        raise ValueError(f"Unknown styles {unknown}; choose from {list(makers)}.")
    chunks = disjoint_chunks(base, len(styles), n_per_domain, seed)
    return {style: makers[style](chunk, seed + i) for i, (style, chunk) in enumerate(zip(styles, chunks))}


def colour_by_label(
    base: Domain, agreement: float, *, seed: int, name: str, label_noise: float = 0.25, size: int = 14
) -> Domain:
    """One domain of the spurious family: binary labels with noise, and a colour that agrees with them.

    1. ``y = 1`` for Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), else 0;
       then each label is flipped with probability ``label_noise``: the shape predicts it at best
       ``1 - label_noise`` of the time.
    2. ``colour = y``, flipped with probability ``1 - agreement``; colour 0 paints the image red,
       colour 1 green (the grey intensity goes into that channel; the other two are 0).
    3. Images are averaged down to ``size x size`` (the IRM paper's 14x14) to keep models small.

    Returns:
        Domain ``(N, 3, size, size)`` with classes ``("0-4", "5-9")``.
    """
    if not 0.0 <= agreement <= 1.0 or not 0.0 <= label_noise < 0.5:
        raise ValueError(f"agreement must lie in [0, 1] and label_noise in [0, 0.5), got {agreement}, {label_noise}.")
    g = torch.Generator().manual_seed(seed)
    gray = base.x.mean(1, keepdim=True) if base.x.shape[1] > 1 else base.x
    if gray.shape[-1] != size:
        gray = F.adaptive_avg_pool2d(gray, size)
    y = (base.y >= 5).long()
    y = torch.where(torch.rand(len(y), generator=g) < label_noise, 1 - y, y)
    colour = torch.where(torch.rand(len(y), generator=g) < 1.0 - agreement, 1 - y, y)
    x = torch.zeros(len(y), 3, size, size)
    x[torch.arange(len(y)), colour] = gray[:, 0]  # channel 0 (red) or 1 (green)
    return Domain(name, x, y, ("0-4", "5-9"))


def spurious_colour_family(
    base: Domain,
    n_per_domain: int = 2500,
    *,
    seed: int = 0,
    agreement: dict[str, float] | None = None,
    label_noise: float = 0.25,
) -> dict[str, Domain]:
    """The ColoredMNIST-style family: ``{"train_90", "train_80", "test_10"}`` by default (see
    :data:`SPURIOUS_AGREEMENT` and :func:`colour_by_label`), each from its own images of ``base``."""
    agreement = agreement or SPURIOUS_AGREEMENT
    chunks = disjoint_chunks(base, len(agreement), n_per_domain, seed)
    return {
        name: colour_by_label(chunk, p, seed=seed + 1000 + i, name=name, label_noise=label_noise)
        for i, ((name, p), chunk) in enumerate(zip(agreement.items(), chunks))
    }
