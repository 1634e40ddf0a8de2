"""Colour randomisation: repaint every image with random foreground and background colours.

    ``gray = mean over channels of x``;  ``fg, bg ~ U[0, 1]^3`` per image;  ``out = bg + (fg - bg) * gray``

It invents a new domain per batch (domain randomisation, Tobin et al., IROS 2017): the prior that a
digit or a garment keeps its label whatever its colours, and whatever their contrast polarity (a dark
foreground on a bright background is an inversion). `colour_and_shift` adds a small random shift: the
strong augmentation of FixMatch (Sohn et al., NeurIPS 2020) for the digit and garment tasks.

(`tlcourse.library.data.colorize` is a fixed per-domain shift with its own arithmetic and random
numbers, a data set rather than an augmentation; it is kept apart so that its images stay the same.)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_colour_domain(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Paint every image with its own random foreground and background colour: a new domain per batch.

        ``gray = mean over channels of x``;  ``fg, bg ~ U[0, 1]^3`` per image;
        ``out = bg + (fg - bg) * gray``

    Args:
        x: ``(N, C, H, W)`` images in [0, 1].
        generator: draws ``fg`` then ``bg``, each ``torch.rand(N, 3, 1, 1, generator=generator)``;
            None means torch's global generator.

    Returns:
        ``(N, 3, H, W)`` images in [0, 1].
    """
    n = len(x)
    gray = x.mean(1, keepdim=True)  # (N, 1, H, W)
    fg = torch.rand(n, 3, 1, 1, generator=generator).to(x)
    bg = torch.rand(n, 3, 1, 1, generator=generator).to(x)
    return bg + (fg - bg) * gray


def colour_and_shift(x: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """The strong augmentation for the digit and garment tasks: shift, then repaint.

    The batch is shifted by up to ``max_shift`` pixels in each direction (one random shift for the
    batch; edges replicated), then every image gets its own random foreground and background colour
    (`random_colour_domain`). What it assumes: a garment or digit keeps its label whatever its colours
    and their polarity.

    Args:
        x: ``(N, C, H, W)`` images in [0, 1].
        generator: draws the shift ``(top, left)``, then the colours. None means torch's global
            generator, which the caller seeds (the experiments reseed it at the start of every row).

    Returns:
        ``(N, 3, H, W)`` images in [0, 1].
    """
    h, w = x.shape[-2:]
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    top, left = torch.randint(0, 2 * max_shift + 1, (2,), generator=generator).tolist()
    return random_colour_domain(padded[..., top : top + h, left : left + w], generator)
