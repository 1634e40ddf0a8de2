"""How an image-folder benchmark (Office-31, PACS) lies on disk: its domains, its classes, and where in a
copy the class folders of each domain are.

A domain's images sit in ``<domain>/images/<class>/`` (Office-31) or ``<domain>/<class>/`` (PACS), anywhere
up to three levels under ``<root>/<name>/``, so the fetched archives and copies placed by hand (DomainBed's,
TLlib's, the original archives) all work. The class lists are fixed (alphabetical), not read from the folders.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFICE31_CLASSES: tuple[str, ...] = (
    "back_pack",
    "bike",
    "bike_helmet",
    "bookcase",
    "bottle",
    "calculator",
    "desk_chair",
    "desk_lamp",
    "desktop_computer",
    "file_cabinet",
    "headphones",
    "keyboard",
    "laptop_computer",
    "letter_tray",
    "mobile_phone",
    "monitor",
    "mouse",
    "mug",
    "paper_notebook",
    "pen",
    "phone",
    "printer",
    "projector",
    "punchers",
    "ring_binder",
    "ruler",
    "scissors",
    "speaker",
    "stapler",
    "tape_dispenser",
    "trash_can",
)
PACS_CLASSES: tuple[str, ...] = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")

CLASSES: dict[str, tuple[str, ...]] = {"office31": OFFICE31_CLASSES, "pacs": PACS_CLASSES}
DOMAINS: dict[str, tuple[str, ...]] = {
    "office31": ("amazon", "dslr", "webcam"),
    "pacs": ("photo", "art_painting", "cartoon", "sketch"),
}
_MAX_DEPTH = 3  # how many levels under the dataset folder a domain folder may sit


def _class_folder(candidate: Path, classes: tuple[str, ...]) -> Path | None:
    """``candidate/images`` or ``candidate`` when it holds at least one known class folder."""
    for inner in (candidate / "images", candidate):
        if inner.is_dir() and any((inner / c).is_dir() for c in classes):
            return inner
    return None


def find_domain_folder(name: str, folder: Path, domain: str) -> Path | None:
    """The folder whose sub-folders are the classes of ``domain``, searched up to three levels under
    ``folder`` (hidden folders skipped); None when there is none."""
    folder = Path(folder)
    classes = CLASSES[name]
    if not folder.is_dir():
        return None
    base_depth = len(folder.parts)
    for current, subdirs, _ in os.walk(folder):
        here = Path(current)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if here.name == domain and (found := _class_folder(here, classes)) is not None:
            return found
        if len(here.parts) - base_depth >= _MAX_DEPTH:
            subdirs[:] = []
    return None
