"""Loaders for the object-recognition benchmarks: Office-31 and PACS, one :class:`Domain` per domain.

Both are folders of images, one folder per class, found where
:mod:`tlcourse.library.data.store.image_folders` says (the fetched archives and copies placed by hand
alike). Labels follow that module's fixed class lists (alphabetical), not the folders found, so a domain
missing a class still labels the others the same way.

Images are resized the way ImageNet backbones expect: the shorter side to ``image_size``, then a centre
crop to ``image_size`` x ``image_size``. At the default 224 an Office-31 amazon domain is 2,817 x 3 x 224
x 224 float32, about 1.7 GB; pass a smaller ``image_size`` or ``limit`` for a laptop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..domain import Domain
from ..store.benchmarks import find_benchmark, get_benchmark
from ..store.image_folders import CLASSES, DOMAINS, find_domain_folder
from .course_format import choose_subset, to_course_format

_ALIASES: dict[str, dict[str, str]] = {
    "office31": {"a": "amazon", "d": "dslr", "w": "webcam"},
    "pacs": {"p": "photo", "a": "art_painting", "art": "art_painting", "c": "cartoon", "s": "sketch"},
}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def domain_name(name: str, domain: str) -> str:
    """The canonical domain name for ``domain`` (``"A"`` -> ``"amazon"`` for Office-31, and so on)."""
    if name not in DOMAINS:
        raise ValueError(f"{name!r} is not an image-folder benchmark; choose one of {sorted(DOMAINS)}")
    canonical = _ALIASES[name].get(domain.lower(), domain.lower())
    if canonical not in DOMAINS[name]:
        raise ValueError(f"{name} has the domains {', '.join(DOMAINS[name])}; got {domain!r}")
    return canonical


def _listing(name: str, classes_dir: Path) -> list[tuple[Path, int]]:
    classes = CLASSES[name]
    unknown = sorted(
        d.name for d in classes_dir.iterdir() if d.is_dir() and d.name not in classes and not d.name.startswith(".")
    )
    if unknown:
        raise ValueError(
            f"{classes_dir}: folders {unknown} are not {name} classes ({', '.join(classes)}). "
            f"Is this the right dataset? {get_benchmark(name).manual}"
        )
    items = [
        (path, label)
        for label, cls in enumerate(classes)
        if (classes_dir / cls).is_dir()
        for path in sorted((classes_dir / cls).iterdir())
        if path.suffix.lower() in _IMAGE_SUFFIXES
    ]
    if not items:
        raise ValueError(f"{classes_dir}: no images found. {get_benchmark(name).manual}")
    return items


def _read_image(path: Path, side: int) -> np.ndarray:
    """uint8 ``(side, side, 3)``: shorter side to ``side``, centre crop (bilinear)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", (side, side))  # JPEG: decode at a reduced scale when the file is much larger
        fitted = ImageOps.fit(im.convert("RGB"), (side, side), method=Image.Resampling.BILINEAR)
    return np.asarray(fitted)


def load_image_domain(
    name: str, domain: str, *, image_size: int = 224, root: Path | None = None, limit: int | None = None, seed: int = 0
) -> Domain:
    """One domain of an image-folder benchmark as a :class:`Domain` named ``"<name>-<domain>"``.

    Args:
        name: ``"office31"`` or ``"pacs"``.
        domain: a domain of it (or its initial, e.g. ``"W"`` for webcam).
        image_size: side of the square output images.
        root: a data root or the dataset folder; by default all data roots are searched.
        limit: keep a seeded random subset of this many images (chosen before decoding).
        seed: seed of that subset.

    Returns:
        float32 RGB images ``(N, 3, image_size, image_size)`` in [0, 1], int64 labels, the class names.

    Raises:
        DataNotFoundError: the dataset is not on this machine (the message says how to fetch it).
        ValueError: unknown domain, unexpected class folders, or an unreadable image.
    """
    domain = domain_name(name, domain)
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    folder = find_benchmark(name, root)
    classes_dir = find_domain_folder(name, folder, domain)
    if classes_dir is None:  # find_benchmark checked every domain, so only a race gets here
        raise ValueError(f"{folder}: no {domain}/ class folders. {get_benchmark(name).manual}")
    items = _listing(name, classes_dir)
    keep = choose_subset(len(items), limit, seed)
    if keep is not None:
        items = [items[i] for i in keep.tolist()]
    images = np.empty((len(items), image_size, image_size, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        try:
            images[i] = _read_image(path, image_size)
        except OSError as err:
            raise ValueError(
                f"{path}: unreadable image ({err}). Delete the folder {folder} and run   "
                f"{get_benchmark(name).fetch_command}"
            ) from err
    x = to_course_format(torch.from_numpy(images).permute(0, 3, 1, 2), size=None, channels=3)
    y = torch.tensor([label for _, label in items], dtype=torch.int64)
    return Domain(name=f"{name}-{domain}", x=x, y=y, classes=CLASSES[name])


def load_office31(
    domain: str, *, image_size: int = 224, root: Path | None = None, limit: int | None = None, seed: int = 0
) -> Domain:
    """An Office-31 domain: ``"amazon"`` (2,817 images), ``"dslr"`` (498) or ``"webcam"`` (795); 31 classes.

    See :func:`load_image_domain` for the arguments.
    """
    return load_image_domain("office31", domain, image_size=image_size, root=root, limit=limit, seed=seed)


def load_pacs(
    domain: str, *, image_size: int = 224, root: Path | None = None, limit: int | None = None, seed: int = 0
) -> Domain:
    """A PACS domain: ``"photo"`` (1,670), ``"art_painting"`` (2,048), ``"cartoon"`` (2,344) or
    ``"sketch"`` (3,929); 7 classes. See :func:`load_image_domain` for the arguments."""
    return load_image_domain("pacs", domain, image_size=image_size, root=root, limit=limit, seed=seed)
