"""scikit-learn's two bundled sample photos: the material of the photo-blend shift (MNIST-M's recipe)."""

from __future__ import annotations

import functools

import numpy as np
import torch


@functools.lru_cache(maxsize=1)
def sample_photos() -> tuple[torch.Tensor, ...]:
    """scikit-learn's two bundled photos (china.jpg, flower.jpg) as float32 ``(3, 427, 640)`` in [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = tuple(
        torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255.0).contiguous()
        for im in load_sample_images().images
    )
    for p in photos:
        p.requires_grad_(False)
    return photos
