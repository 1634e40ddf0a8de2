"""Label priors for label shift (the same p(x | y), a different p(y)): target priors, and resampling to one.

A target prior ``q`` (a probability vector over the classes, shape ``(K,)``) is built with one of the
``*_prior`` functions, and :func:`resample_to_prior` draws a domain whose class proportions follow it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..domain import Domain


def _check_prior(prior: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """``prior`` as float64 ``(K,)`` after checking it is a probability vector (of length ``num_classes``)."""
    p = torch.as_tensor(prior, dtype=torch.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"A prior must be a non-empty vector of shape (K,), got shape {tuple(p.shape)}.")
    if num_classes is not None and len(p) != num_classes:
        raise ValueError(f"The prior has {len(p)} entries but the domain has {num_classes} classes.")
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"A prior must be finite and non-negative, got {p.tolist()}.")
    if abs(float(p.sum()) - 1.0) > 1e-6:
        raise ValueError(f"A prior must sum to 1 (within 1e-6), got sum {float(p.sum()):.8f}; divide by its sum.")
    return p


def dirichlet_prior(num_classes: int, alpha: float, seed: int) -> torch.Tensor:
    """A random prior drawn from the symmetric Dirichlet(``alpha``): small ``alpha`` (0.1) gives a strong
    shift with a few dominant classes, large ``alpha`` (100) is close to uniform.

    Returns:
        float64 ``(num_classes,)``, non-negative, summing to 1.
    """
    if num_classes < 1 or alpha <= 0:
        raise ValueError(f"need num_classes >= 1 and alpha > 0, got {num_classes} and {alpha}")
    p = np.random.default_rng(seed).dirichlet(np.full(num_classes, float(alpha)))
    return torch.from_numpy(p / p.sum())


def one_class_prior(num_classes: int, cls: int, weight: float) -> torch.Tensor:
    """Class ``cls`` has probability ``weight``; the other classes share ``1 - weight`` equally.

    Example: ``one_class_prior(4, 0, 0.7)`` is ``[0.7, 0.1, 0.1, 0.1]``.

    Returns:
        float64 ``(num_classes,)``.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if not 0 <= cls < num_classes:
        raise ValueError(f"cls must lie in [0, {num_classes}), got {cls}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight is a probability in [0, 1], got {weight}")
    p = torch.full((num_classes,), (1.0 - weight) / (num_classes - 1), dtype=torch.float64)
    p[cls] = weight
    return p


def knock_out_prior(num_classes: int, removed: Sequence[int]) -> torch.Tensor:
    """Uniform over the classes that remain after removing the classes in ``removed``.

    Returns:
        float64 ``(num_classes,)``, 0 for removed classes.
    """
    removed = sorted(set(int(c) for c in removed))
    bad = [c for c in removed if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"classes to remove must lie in [0, {num_classes}), got {bad}")
    if len(removed) >= num_classes:
        raise ValueError("cannot remove every class: keep at least one")
    p = torch.ones(num_classes, dtype=torch.float64)
    p[removed] = 0.0
    return p / p.sum()


def counts_for_prior(prior: torch.Tensor, n: int) -> torch.Tensor:
    """Per-class counts ``(K,)`` summing to ``n``, as close to ``n * prior`` as integers allow.

    Largest-remainder rounding: floors first, then one extra image to the classes with the largest
    remainders. Deterministic, so the target proportions hold exactly up to rounding.
    """
    p = _check_prior(prior)
    ideal = p * n
    counts = torch.floor(ideal).long()
    short = n - int(counts.sum())
    if short > 0:
        counts[torch.argsort(ideal - counts, descending=True, stable=True)[:short]] += 1
    return counts


def resample_to_prior(domain: Domain, prior: torch.Tensor, n: int, seed: int, replace: bool = False) -> Domain:
    """Draw ``n`` images of ``domain`` so that class ``k`` makes up ``prior[k]`` of them.

    Class counts are :func:`counts_for_prior` (``n * prior`` rounded to sum to ``n``); within a class the
    images are drawn uniformly without replacement; with ``replace=True`` a class that has too few images
    is drawn with replacement instead of raising. The result is shuffled.

    Returns:
        A domain of ``n`` images named ``f"{domain.name}[shifted]"``.

    Raises:
        ValueError: the prior is not a probability vector over the domain's classes, or a class has fewer
            images than it needs and ``replace=False``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    counts = counts_for_prior(_check_prior(prior, domain.num_classes), n)
    have = domain.class_counts()
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for k in range(domain.num_classes):
        need = int(counts[k])
        if need == 0:
            continue
        members = torch.nonzero(domain.y == k).flatten()
        if len(members) == 0 or (need > len(members) and not replace):
            raise ValueError(
                f"Class {k} ({domain.classes[k]!r}) needs {need} images but {domain.name!r} has "
                f"{int(have[k])}. Ask for fewer images (n={n}), or pass replace=True to draw with replacement."
            )
        if need <= len(members):
            picked.append(members[torch.randperm(len(members), generator=gen)[:need]])
        else:  # replace=True and too few images: only then draw with replacement
            picked.append(members[torch.randint(len(members), (need,), generator=gen)])
    index = torch.cat(picked)
    index = index[torch.randperm(len(index), generator=gen)]
    return domain.subset(index, name=f"{domain.name}[shifted]")
