"""The course's image format for data read from disk: float32 in [0, 1] at a chosen size and channel count,
and the seeded random subset a loader keeps when given a ``limit``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..colours import LUMA

_LUMA = torch.tensor(LUMA)
_CHUNK = 8192  # images converted at a time, so the float copy never doubles the memory of a big set


def choose_subset(n: int, limit: int | None, seed: int) -> torch.Tensor | None:
    """Positions of a seeded random subset of ``limit`` images (None: keep all, in order)."""
    if limit is None or limit >= n:
        return None
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit]


def to_course_format(images: torch.Tensor, size: int | None = 28, channels: int | None = 3) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` as float32 in [0, 1], resized to ``size`` x ``size`` with ``channels``.

    Args:
        images: uint8 tensor, C = 1 or 3.
        size: side of the output images (antialiased bilinear resize), or None to keep H x W.
        channels: 3 (grayscale is repeated), 1 (RGB becomes ITU-R 601 luma), or None to keep C.

    Returns:
        float32 tensor ``(N, channels or C, size or H, size or W)`` in [0, 1].
    """
    if images.ndim != 4 or images.dtype != torch.uint8 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, 1 or 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if size is not None and size < 1:
        raise ValueError(f"size must be positive, got {size}")
    n, c, h, w = images.shape
    c_out = c if channels is None else channels
    h_out, w_out = (h, w) if size is None else (size, size)
    out = torch.empty(n, c_out, h_out, w_out)
    for s in range(0, n, _CHUNK):
        x = images[s : s + _CHUNK].to(torch.float32).div_(255.0)
        if c == 3 and c_out == 1:
            x = torch.einsum("nchw,c->nhw", x, _LUMA).unsqueeze(1)
        if (h, w) != (h_out, w_out):
            x = F.interpolate(x, size=(h_out, w_out), mode="bilinear", antialias=True, align_corners=False)
        out[s : s + _CHUNK] = x.clamp_(0.0, 1.0).expand(-1, c_out, -1, -1)
    return out
