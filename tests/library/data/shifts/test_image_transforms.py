"""Image transforms: deterministic, label-preserving, RGB in [0, 1], and right on hand-checkable inputs."""

from __future__ import annotations

import pytest
import torch

from tlcourse.library.data import (
    DOMAIN_SHIFTS,
    Domain,
    add_noise,
    colorize,
    invert,
    make_target,
    photo_blend,
    rotate,
    sample_photos,
)

CLASSES = tuple("abc")
RANDOM_SHIFTS = {"photo_blend": {}, "colour": {}, "noise": {}, "rotate": {"jitter": 10.0}}


def gray_domain(n: int = 12, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    return Domain("toy", torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 3, CLASSES)


def constant_domain(value: float, n: int = 4) -> Domain:
    return Domain("const", torch.full((n, 1, 28, 28), value), torch.zeros(n, dtype=torch.int64), CLASSES)


@pytest.mark.parametrize("name", sorted(DOMAIN_SHIFTS))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_shift_is_seeded_keeps_labels_and_returns_rgb(name, channels):
    source = gray_domain()
    if channels == 3:
        source = source.with_images(torch.rand(12, 3, 28, 28, generator=torch.Generator().manual_seed(1)), "rgb")
    before = source.x.clone()
    params = RANDOM_SHIFTS.get(name, {})
    a = make_target(source, name, seed=3, **params)
    assert torch.equal(source.x, before)  # the input is never changed
    assert a.x.shape == (12, 3, 28, 28) and a.x.dtype == torch.float32
    assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0
    assert torch.equal(a.y, source.y) and a.classes == source.classes and a.name != source.name
    assert torch.equal(a.x, make_target(source, name, seed=3, **params).x)
    if name in RANDOM_SHIFTS:
        assert not torch.equal(a.x, make_target(source, name, seed=4, **params).x)


def find_patch(patch: torch.Tensor) -> bool:
    """Whether ``patch (3, h, w)`` is an exact crop of one of the sample photos."""
    h, w = patch.shape[1:]
    for photo in sample_photos():
        hits = (photo[:, : photo.shape[1] - h + 1, : photo.shape[2] - w + 1] == patch[:, :1, :1]).all(0)
        for r, c in hits.nonzero().tolist():
            if torch.equal(photo[:, r : r + h, c : c + w], patch):
                return True
    return False


def test_photo_blend_is_abs_of_patch_minus_image():
    black = photo_blend(constant_domain(0.0, n=3), seed=0)
    white = photo_blend(constant_domain(1.0, n=3), seed=0)
    assert black.name == "photo_blend"
    for patch in black.x:  # a black image gives the photo patch itself ...
        assert find_patch(patch)
    torch.testing.assert_close(white.x, 1.0 - black.x)  # ... and a white one its negative
    assert (black.x[0] - black.x[1]).abs().mean() > 0.01  # different patches per image


def test_rotate_known_answers():
    source = gray_domain(3)
    quarter = rotate(source, degrees=90)
    assert quarter.name == "rotate90"
    # Square images, a quarter turn: exactly torch.rot90 (counter-clockwise).
    torch.testing.assert_close(quarter.x, torch.rot90(source.to_rgb().x, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(source, degrees=0).x, source.to_rgb().x, atol=1e-5, rtol=0)
    assert rotate(source, degrees=30, jitter=5).name == "rotate30-jitter5"
    with pytest.raises(ValueError, match="jitter"):
        rotate(source, jitter=-1)


def test_colorize_paints_background_and_foreground():
    x = torch.zeros(6, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = colorize(Domain("sq", x, torch.zeros(6, dtype=torch.int64), CLASSES), seed=0, min_contrast=0.4)
    bg, fg = out.x[:, :, 0, 0], out.x[:, :, 12, 12]
    assert out.name == "colour"
    torch.testing.assert_close(out.x, bg[:, :, None, None] * (1 - x) + fg[:, :, None, None] * x)
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert ((fg - bg) @ luma).abs().min() >= 0.4 - 1e-6
    assert (bg[0] - bg[1]).abs().sum() > 0  # colours differ per image


def test_invert_twice_is_identity():
    source = gray_domain()
    torch.testing.assert_close(invert(invert(source)).x, source.to_rgb().x, atol=1e-6, rtol=0)
    torch.testing.assert_close(invert(source).x, 1 - source.to_rgb().x)


def test_noise_has_the_requested_spread():
    mid = constant_domain(0.5, n=50)
    assert torch.equal(add_noise(mid, std=0.0).x, mid.to_rgb().x)
    noisy = add_noise(mid, seed=0, std=0.1)
    assert noisy.name == "noise"
    assert abs(float((noisy.x - 0.5).std()) - 0.1) < 0.005
    with pytest.raises(ValueError, match="std"):
        add_noise(mid, std=-1.0)


def test_make_target_lists_valid_names():
    with pytest.raises(ValueError) as err:
        make_target(gray_domain(), "mnist-m")
    for name in DOMAIN_SHIFTS:
        assert name in str(err.value)
    assert make_target(gray_domain(), "rotate", degrees=15).name == "rotate15"
