"""Digits rendered from the fonts that matplotlib bundles: an offline analog of Syn Numbers.

Ganin & Lempitsky (2015) rendered "Syn Numbers" from Windows fonts with random size, position, rotation,
colours and blur, as a synthetic source domain for SVHN. We do the same with the TrueType fonts in
matplotlib's data folder (DejaVu, STIX, Computer Modern), which every install of the course has.

Speed: each (font, digit) glyph is drawn once with PIL on a large canvas and kept; every image is then
one batched affine warp (scale, aspect, rotation, shift) of its glyph, antialiased down to the final size
and coloured. 10,000 images take about a second on two CPU cores.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..colours import random_contrasting_colours
from ..domain import Domain
from .uci_digits import DIGIT_CLASSES

# Fonts whose "0".."9" really are lining digits. Left out: the DejaVu "Display" fonts and STIXNonUni /
# STIXSiz* (no digits at all), LastResort (draws a placeholder box), cmex10 and cmsy10 (math symbols sit
# where the digits should be) and cmmi10 (old-style figures that hang below the line, unlike house numbers).
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmti10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)

_GLYPH_POINTS = 48  # font size of the stored glyphs, in pixels per em (digits about 35 pixels high)
_GLYPH_CANVAS = 72  # side of the square canvas each glyph is centred on


def font_folder() -> Path:
    """matplotlib's folder of bundled TrueType fonts."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=1)
def digit_fonts() -> tuple[Path, ...]:
    """The font files of :data:`FONT_FILES` present in this matplotlib whose ten digits all draw ink."""
    return tuple(path for path, _ in _glyph_bank_entries())


@functools.lru_cache(maxsize=1)
def _glyph_bank_entries() -> tuple[tuple[Path, np.ndarray], ...]:
    from PIL import Image, ImageDraw, ImageFont

    entries = []
    for name in FONT_FILES:
        path = font_folder() / name
        if not path.is_file():
            continue
        font = ImageFont.truetype(str(path), _GLYPH_POINTS)
        glyphs = np.zeros((10, _GLYPH_CANVAS, _GLYPH_CANVAS), dtype=np.float32)
        for d in range(10):
            left, top, right, bottom = font.getbbox(str(d))
            canvas = Image.new("L", (_GLYPH_CANVAS, _GLYPH_CANVAS), 0)
            # Centre the ink box, not the text origin: fonts put their digits at different heights.
            origin = (_GLYPH_CANVAS / 2 - (left + right) / 2, _GLYPH_CANVAS / 2 - (top + bottom) / 2)
            ImageDraw.Draw(canvas).text(origin, str(d), font=font, fill=255)
            glyphs[d] = np.asarray(canvas, dtype=np.float32) / 255.0
        if all(glyphs[d].max() > 0.5 for d in range(10)):
            entries.append((path, glyphs))
    if not entries:
        raise FileNotFoundError(
            f"No usable digit fonts in {font_folder()}; matplotlib's fonts are missing. "
            "Reinstall it with   python -m pip install --force-reinstall matplotlib"
        )
    return tuple(entries)


@functools.lru_cache(maxsize=1)
def _glyph_bank() -> tuple[torch.Tensor, torch.Tensor]:
    """Glyphs ``(F, 10, S, S)`` in [0, 1] and each glyph's ink height as a fraction of the canvas ``(F, 10)``."""
    glyphs = torch.from_numpy(np.stack([g for _, g in _glyph_bank_entries()]))
    rows = glyphs.amax(dim=-1) > 0.1  # (F, 10, S): rows that hold ink
    idx = torch.arange(_GLYPH_CANVAS)
    first = torch.where(rows, idx, _GLYPH_CANVAS).amin(-1)
    last = torch.where(rows, idx, -1).amax(-1)
    heights = (last - first + 1).float() / _GLYPH_CANVAS
    return glyphs, heights


def _affine_grid(theta: torch.Tensor, side: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, 1, side, side), align_corners=False)`` by broadcasting, several times faster."""
    coords = (torch.arange(side, dtype=theta.dtype) * 2 + 1) / side - 1  # pixel centres in [-1, 1]
    px, py = coords[None, None, :], coords[None, :, None]
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    gx = t[:, 0, 0] * px + t[:, 0, 1] * py + t[:, 0, 2]
    gy = t[:, 1, 0] * px + t[:, 1, 1] * py + t[:, 1, 2]
    return torch.stack([gx, gy], dim=-1)  # (B, side, side, 2)


def render_font_digits(n: int, seed: int, size: int = 28) -> Domain:
    """``n`` coloured digit images drawn from matplotlib's fonts, as a :class:`Domain` named ``"font-digits"``.

    Each image picks at random: a font, a digit height of 55-85% of the image, a width stretch of
    0.85-1.15, a rotation within +-15 degrees, a shift within +-10% of the image, and a foreground and
    background colour whose luminances differ by at least 0.3.

    Args:
        n: number of images; the ten classes get ``n // 10`` or ``n // 10 + 1`` images each.
        seed: all randomness comes from ``numpy.random.default_rng(seed)``: same seed, same images.
        size: side of the square images in pixels.

    Returns:
        float32 RGB images ``(n, 3, size, size)`` in [0, 1], int64 labels ``(n,)``, classes ``"0"`` .. ``"9"``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    glyphs, heights = _glyph_bank()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    fonts = rng.integers(len(glyphs), size=n)
    height = rng.uniform(0.55, 0.85, size=n)  # digit height / image height
    stretch = rng.uniform(0.85, 1.15, size=n)
    angle = np.deg2rad(rng.uniform(-15.0, 15.0, size=n))
    shift = rng.uniform(-0.2, 0.2, size=(n, 2))  # in normalised coordinates [-1, 1]: +-10% of the image
    fg, bg = random_contrasting_colours(rng, n, min_contrast=0.3)

    # grid_sample maps each output point p to the glyph point q = A (p - shift), with
    # A = stretch^-1 R(-angle) / scale and scale = (digit height out) / (glyph height in).
    scale = height / heights[fonts, labels].double().numpy()
    cos, sin = np.cos(angle), np.sin(angle)
    a = np.empty((n, 2, 2))
    a[:, 0, 0], a[:, 0, 1] = cos / (stretch * scale), sin / (stretch * scale)
    a[:, 1, 0], a[:, 1, 1] = -sin / scale, cos / scale
    theta = torch.from_numpy(np.concatenate([a, -(a @ shift[:, :, None])], axis=2)).float()  # (n, 2, 3)
    fonts_t, labels_t = torch.from_numpy(fonts), torch.from_numpy(labels)

    out = torch.empty(n, 3, size, size)
    fg_t = torch.from_numpy(fg).float()[:, :, None, None]
    bg_t = torch.from_numpy(bg).float()[:, :, None, None]
    chunk = 2048
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        src = glyphs[fonts_t[s:e], labels_t[s:e]].unsqueeze(1)  # (B, 1, S, S)
        grid = _affine_grid(theta[s:e], 2 * size)
        ink = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        ink = F.interpolate(ink, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        ink = ink.clamp_(0.0, 1.0)
        out[s:e] = bg_t[s:e] * (1.0 - ink) + fg_t[s:e] * ink
    return Domain(name="font-digits", x=out.clamp_(0.0, 1.0), y=labels_t.to(torch.int64), classes=DIGIT_CLASSES)
