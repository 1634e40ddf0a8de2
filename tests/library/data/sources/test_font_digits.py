"""Digits rendered from matplotlib's fonts: shapes, balance, determinism, and only fonts that draw digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse.library.data import digit_fonts, render_font_digits


def test_font_digits_shapes_balance_and_determinism():
    a = render_font_digits(205, seed=0)
    assert a.name == "font-digits" and a.x.shape == (205, 3, 28, 28) and a.x.dtype == torch.float32
    assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0
    assert a.class_counts().tolist() == [21] * 5 + [20] * 5
    assert torch.equal(a.x, render_font_digits(205, seed=0).x)
    b = render_font_digits(205, seed=1)
    assert not torch.equal(a.y, b.y) and (a.x - b.x).abs().mean() > 0.05
    # Every image shows a digit: foreground and background differ in brightness.
    luma = torch.einsum("nchw,c->nhw", a.x, torch.tensor([0.299, 0.587, 0.114]))
    assert (luma.flatten(1).amax(1) - luma.flatten(1).amin(1)).min() > 0.2
    assert render_font_digits(10, seed=0, size=32).x.shape == (10, 3, 32, 32)


def test_font_digits_use_only_fonts_that_draw_digits():
    from tlcourse.library.data.sources.font_digits import _glyph_bank_entries

    names = {p.name for p in digit_fonts()}
    assert len(names) >= 15
    assert not names & {"cmex10.ttf", "cmsy10.ttf", "LastResortHE-Regular.ttf", "STIXSizOneSymReg.ttf"}
    for path, glyphs in _glyph_bank_entries():  # ten different glyphs, not one placeholder ten times
        flat = glyphs.reshape(10, -1)
        distance = np.abs(flat[:, None] - flat[None]).mean(-1) + np.eye(10)
        assert distance.min() > 0.005, path.name


def test_font_digits_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        render_font_digits(0, seed=0)
