"""Image transforms (covariate shift): seeded functions that turn a source domain into a target domain.

Every shift has the signature ``shift(domain, *, seed=0, **params) -> Domain``: it returns a new RGB domain
(``(N, 3, H, W)`` float32 in [0, 1]) with the same labels and classes and a new name, is deterministic for
a given seed, and never changes its input. Grayscale inputs are repeated to three channels first.

:data:`DOMAIN_SHIFTS` names them all, and :func:`make_target` picks one by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..colours import LUMA, random_contrasting_colours
from ..domain import Domain
from ..sources.photos import sample_photos


def _one_or_three_channels(domain: Domain) -> torch.Tensor:
    """The images as they are if grayscale (cheaper to transform, then broadcast), else as RGB."""
    return domain.x if domain.x.shape[1] == 1 else domain.to_rgb().x


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` intensity of 1- or 3-channel images."""
    if x.shape[1] == 1:
        return x
    return torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA, dtype=x.dtype)).unsqueeze(1)


# ------------------------------------------------------------------------------------------ photo_blend
def photo_blend(domain: Domain, *, seed: int = 0) -> Domain:
    """The MNIST-M recipe (Ganin & Lempitsky, 2015): blend each image with a random photo patch.

    ``out[c] = |patch[c] - x[c]|`` per channel, where ``patch`` is an ``H x W`` crop at a random place in
    one of scikit-learn's sample photos (the paper used BSDS500). Dark pixels show the photo, bright
    strokes show its negative.

    Returns:
        RGB domain named ``"photo_blend"``, images ``(N, 3, H, W)`` in [0, 1].
    """
    x = _one_or_three_channels(domain)  # (N, 1 or 3, H, W): a grayscale image broadcasts over the photo
    n, _, h, w = x.shape
    photos = sample_photos()
    if any(h > p.shape[1] or w > p.shape[2] for p in photos):
        raise ValueError(f"photo_blend needs images at most {tuple(photos[0].shape[1:])}, got {(h, w)}")
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)
    top = rng.integers(np.array([p.shape[1] - h + 1 for p in photos])[which])  # uniform in [0, high)
    left = rng.integers(np.array([p.shape[2] - w + 1 for p in photos])[which])
    # One (pixels, 3) table of every photo: a patch is then a single gather of H*W rows.
    table = torch.cat([p.permute(1, 2, 0).reshape(-1, 3) for p in photos])
    offsets = np.cumsum([0] + [p.shape[1] * p.shape[2] for p in photos])[:-1]
    widths = np.array([p.shape[2] for p in photos])
    corner = torch.from_numpy(offsets[which] + top * widths[which] + left)  # (N,) first pixel of each patch
    width = torch.from_numpy(widths[which])
    out = torch.empty(n, 3, h, w)
    for s in range(0, n, 4096):  # chunks keep the temporary gather small
        e = min(s + 4096, n)
        pixel = (
            corner[s:e, None, None]
            + torch.arange(h)[None, :, None] * width[s:e, None, None]
            + torch.arange(w)[None, None, :]
        )  # (B, H, W) rows of the table
        patches = table[pixel].permute(0, 3, 1, 2)  # (B, 3, H, W)
        torch.sub(patches, x[s:e], out=out[s:e]).abs_()
    return domain.with_images(out, "photo_blend")


# ----------------------------------------------------------------------------------------------- rotate
def rotate_images(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of ``x (N, C, H, W)`` counter-clockwise by ``degrees (N,)`` about its centre.

    Bilinear, corners filled with 0. Pixel geometry is kept for non-square images.
    """
    n, _, h, w = x.shape
    rad = torch.deg2rad(degrees.to(torch.float64))
    c, s = torch.cos(rad), torch.sin(rad)
    # Output point p (normalised coordinates, y down) samples the input at R p, in pixel units.
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = c, -s * h / w
    theta[:, 1, 0], theta[:, 1, 1] = s * w / h, c
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0.0, 1.0)


def rotate(domain: Domain, *, seed: int = 0, degrees: float = 45.0, jitter: float = 0.0) -> Domain:
    """Rotate every image counter-clockwise by ``degrees``, plus a uniform random ``+-jitter`` per image.

    Returns:
        RGB domain named ``f"rotate{int(degrees)}"`` (with ``f"-jitter{int(jitter)}"`` appended when
        ``jitter > 0``).
    """
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 degrees, got {jitter}")
    x = _one_or_three_channels(domain)
    angles = torch.full((len(x),), float(degrees), dtype=torch.float64)
    name = f"rotate{int(degrees)}"
    if jitter > 0:
        angles += torch.from_numpy(np.random.default_rng(seed).uniform(-jitter, jitter, size=len(x)))
        name += f"-jitter{int(jitter)}"
    rotated = rotate_images(x, angles) if len(x) else x.clone()
    return domain.with_images(rotated.expand(-1, 3, -1, -1).contiguous(), name)


# ------------------------------------------------------------------------------------- colour, invert, noise
def colorize(domain: Domain, *, seed: int = 0, min_contrast: float = 0.3) -> Domain:
    """Paint each image with its own random colours: ``out = bg * (1 - x) + fg * x``.

    ``x (N, 1, H, W)`` is the grayscale intensity; ``fg`` and ``bg`` are random RGB colours per image
    whose luminances differ by at least ``min_contrast``.

    Returns:
        RGB domain named ``"colour"``.
    """
    gray = _grayscale(domain.x)
    fg, bg = random_contrasting_colours(np.random.default_rng(seed), len(gray), min_contrast)
    fg_t = torch.from_numpy(fg).to(gray.dtype)[:, :, None, None]
    bg_t = torch.from_numpy(bg).to(gray.dtype)[:, :, None, None]
    out = (bg_t * (1.0 - gray) + fg_t * gray).clamp_(0.0, 1.0)
    return domain.with_images(out, "colour")


def invert(domain: Domain, *, seed: int = 0) -> Domain:
    """Photographic negative, ``1 - x`` (``seed`` is unused; it is there so every shift takes one).

    Returns:
        RGB domain named ``"invert"``.
    """
    return domain.with_images(1.0 - domain.to_rgb().x, "invert")


def add_noise(domain: Domain, *, seed: int = 0, std: float = 0.3) -> Domain:
    """Add Gaussian pixel noise of standard deviation ``std`` (intensity units) and clip to [0, 1].

    Returns:
        RGB domain named ``"noise"``; the noise is independent per channel.
    """
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    x = domain.to_rgb().x
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    return domain.with_images((x + std * noise).clamp_(0.0, 1.0), "noise")


DOMAIN_SHIFTS: dict[str, Callable[..., Domain]] = {
    "photo_blend": photo_blend,
    "rotate": rotate,
    "colour": colorize,
    "invert": invert,
    "noise": add_noise,
}


def make_target(domain: Domain, name: str, *, seed: int = 0, **params) -> Domain:
    """Apply the shift registered as ``name`` in :data:`DOMAIN_SHIFTS`, e.g.
    ``make_target(source, "rotate", seed=0, degrees=30)``.
    """
    try:
        shift = DOMAIN_SHIFTS[name]
    except KeyError:
        raise ValueError(f"Unknown domain shift {name!r}; choose one of: {', '.join(sorted(DOMAIN_SHIFTS))}.") from None
    return shift(domain, seed=seed, **params)
