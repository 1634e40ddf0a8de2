"""Colour helpers shared by the colour shift and the font digits: luma weights and contrasting colour pairs."""

from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights: how bright a colour looks, used for contrast and for grayscale.
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)


def random_contrasting_colours(
    rng: np.random.Generator, n: int, min_contrast: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (foreground, background) RGB pairs whose luminances differ by at least ``min_contrast``.

    Returns:
        Two float64 arrays ``(n, 3)`` in [0, 1]. Pairs are drawn uniformly and redrawn until they pass.
    """
    if not 0.0 <= min_contrast < 0.9:
        raise ValueError(f"min_contrast must lie in [0, 0.9), got {min_contrast}")
    luma = np.asarray(LUMA)
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    bad = np.abs((fg - bg) @ luma) < min_contrast
    while bad.any():
        k = int(bad.sum())
        fg[bad], bg[bad] = rng.random((k, 3)), rng.random((k, 3))
        bad = np.abs((fg - bg) @ luma) < min_contrast
    return fg, bg
