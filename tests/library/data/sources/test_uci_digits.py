"""The UCI digits, made to look like MNIST."""

from __future__ import annotations

from tlcourse.library.data import load_uci_digits


def test_uci_digits_look_like_mnist():
    d = load_uci_digits()
    assert d.name == "uci-digits" and d.x.shape == (1797, 1, 28, 28)
    assert float(d.x.min()) == 0.0 and 0.99 <= float(d.x.max()) <= 1.0
    assert d.x[:, :, :4].abs().max() == 0 and d.x[:, :, :, -4:].abs().max() == 0  # MNIST-style padding
    counts = d.class_counts()
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 185
    assert d.classes == tuple("0123456789")
