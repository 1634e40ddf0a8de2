"""`Domain`: a labelled set of images, the unit every transfer task is made of."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Domain:
    """One domain of a transfer task: images, their labels and the class names.

    Attributes:
        name: short name shown in tables and plots, e.g. ``"fashion-mnist"``.
        x: float32 images in [0, 1], shape ``(N, C, H, W)``.
        y: int64 labels in ``[0, len(classes))``, shape ``(N,)``.
        classes: the name of each label index.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(
                f"Domain {self.name!r}: images must have shape (N, C, H, W), got {tuple(self.x.shape)}. "
                "Add a channel axis with x.unsqueeze(1) for grayscale images."
            )
        if self.y.ndim != 1 or len(self.y) != len(self.x):
            raise ValueError(
                f"Domain {self.name!r}: labels must have shape ({len(self.x)},), got {tuple(self.y.shape)}."
            )
        if not self.x.is_floating_point():
            raise ValueError(
                f"Domain {self.name!r}: images must be floats in [0, 1], got {self.x.dtype}. "
                "Convert uint8 images with x.float() / 255."
            )
        if self.y.dtype != torch.int64:
            raise ValueError(f"Domain {self.name!r}: labels must be int64, got {self.y.dtype}; use y.long().")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.classes)):
            raise ValueError(
                f"Domain {self.name!r}: labels must lie in [0, {len(self.classes)}), "
                f"got [{int(self.y.min())}, {int(self.y.max())}]."
            )

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (
            f"Domain({self.name!r}, {len(self)} images of shape {tuple(self.x.shape[1:])}, {self.num_classes} classes)"
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor, name: str | None = None) -> Domain:
        """The images at ``index`` (a LongTensor of positions or a boolean mask)."""
        return replace(self, name=name or self.name, x=self.x[index], y=self.y[index])

    def take(self, n: int, seed: int) -> Domain:
        """A random subset of ``n`` images, the same for the same seed."""
        if not 0 < n <= len(self):
            raise ValueError(f"Domain {self.name!r} has {len(self)} images; cannot take {n}.")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[:n])

    def split(self, fraction: float, seed: int) -> tuple[Domain, Domain]:
        """Split at random into two domains of ``fraction`` and ``1 - fraction`` of the images."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        cut = round(fraction * len(self))
        return self.subset(order[:cut]), self.subset(order[cut:])

    def with_images(self, x: torch.Tensor, name: str) -> Domain:
        """The same labels with new images: how a domain shift makes a target domain."""
        return replace(self, name=name, x=x)

    def to_rgb(self) -> Domain:
        """Three-channel copy (grayscale is repeated); RGB domains are returned as they are."""
        if self.x.shape[1] == 3:
            return self
        if self.x.shape[1] != 1:
            raise ValueError(f"Domain {self.name!r}: cannot make RGB from {self.x.shape[1]} channels.")
        return replace(self, x=self.x.expand(-1, 3, -1, -1).contiguous())

    def class_counts(self) -> torch.Tensor:
        """Number of images of each class, shape ``(num_classes,)``."""
        return torch.bincount(self.y, minlength=self.num_classes)
