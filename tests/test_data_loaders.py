"""Reading idx files, Fashion-MNIST (Debian's copy), the UCI digits and the font-rendered digits."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from tlcourse.library.data import (
    check_fashion_mnist,
    digit_fonts,
    load_fashion_mnist,
    load_uci_digits,
    read_idx,
    render_font_digits,
)


# ------------------------------------------------------------------------------------------------ idx
def test_read_idx_known_answer(tmp_path):
    # idx3 of uint8, shape (2, 2, 3), written by hand: magic 0x00000803 then the three sizes.
    payload = bytes.fromhex("00000803" "00000002" "00000002" "00000003") + bytes(range(12))
    (tmp_path / "a-idx3-ubyte").write_bytes(payload)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(payload))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        a = read_idx(tmp_path / name)
        assert a.dtype == np.uint8 and a.shape == (2, 2, 3)
        assert a[1, 0, 2] == 8 and a.ravel().tolist() == list(range(12))
    # idx1 of big-endian int32: values must come out in native order.
    (tmp_path / "b").write_bytes(bytes.fromhex("00000c01" "00000003") + struct.pack(">3i", 1, 256, -1))
    assert read_idx(tmp_path / "b").tolist() == [1, 256, -1]


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    payload = bytes.fromhex("00000801" "0000000a") + bytes(10)
    (tmp_path / "short").write_bytes(payload[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "short.gz").write_bytes(gzip.compress(payload)[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt.*fetch fashion-mnist"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "png")


# ----------------------------------------------------------------------------------- Debian's Fashion-MNIST
def test_debian_fashion_mnist_loads_and_checks(debian_fashion_mnist):
    train = load_fashion_mnist("train", root=debian_fashion_mnist)
    test = load_fashion_mnist("test", root=debian_fashion_mnist)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert train.name == "fashion-mnist"
    assert check_fashion_mnist(debian_fashion_mnist) == {
        "train-images-idx3-ubyte.gz": True, "train-labels-idx1-ubyte.gz": True,
        "t10k-images-idx3-ubyte.gz": True, "t10k-labels-idx1-ubyte.gz": True,
    }


def test_fashion_mnist_cache_cannot_be_changed_by_callers(debian_fashion_mnist):
    first = load_fashion_mnist("test", root=debian_fashion_mnist)
    expected = first.x[:5].clone(), first.y[:5].clone()
    first.x.zero_()
    first.y.fill_(3)
    again = load_fashion_mnist("test", root=debian_fashion_mnist)
    assert torch.equal(again.x[:5], expected[0]) and torch.equal(again.y[:5], expected[1])


def test_bad_split_and_corrupt_copy(tmp_path, debian_fashion_mnist):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", root=debian_fashion_mnist)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):
        (tmp_path / f).write_bytes(bytes.fromhex("00000801" "00000001") + b"\x00")
    assert check_fashion_mnist(tmp_path) == {f + ".gz": False for f in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


# ------------------------------------------------------------------------------------------ UCI digits
def test_uci_digits_look_like_mnist():
    d = load_uci_digits()
    assert d.name == "uci-digits" and d.x.shape == (1797, 1, 28, 28)
    assert float(d.x.min()) == 0.0 and 0.99 <= float(d.x.max()) <= 1.0
    assert d.x[:, :, :4].abs().max() == 0 and d.x[:, :, :, -4:].abs().max() == 0  # MNIST-style padding
    counts = d.class_counts()
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 185
    assert d.classes == tuple("0123456789")


# ----------------------------------------------------------------------------------------- font digits
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
    from tlcourse.library.data.fonts import _glyph_bank_entries

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
