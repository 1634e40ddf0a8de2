"""The UCI handwritten digits bundled with scikit-learn, made to look like MNIST.

1,797 real 8x8 scans (Alpaydin & Kaynak 1998; values 0..16). MNIST centres each digit in a 20x20 box
inside a 28x28 image, so we upsample to 20x20 and pad 4 pixels of black on each side: a small, real,
offline handwritten-digit domain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..domain import Domain

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


def load_uci_digits() -> Domain:
    """The UCI digits as a :class:`Domain` named ``"uci-digits"``.

    Returns:
        float32 images ``(1797, 1, 28, 28)`` in [0, 1] (white digit on black, as in MNIST), int64 labels
        ``(1797,)`` and classes ``"0"`` .. ``"9"``.
    """
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (4, 4, 4, 4)).clamp_(0.0, 1.0)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    return Domain(name="uci-digits", x=x, y=y, classes=DIGIT_CLASSES)
