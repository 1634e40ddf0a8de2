"""Class-set splits: partial, open-set and universal domain adaptation from one labelled dataset.

Source and target may not share their label sets:

* **partial**: the target's classes are a subset of the source's (a model that aligns all of the
  source with the target drags the extra source classes onto target images);
* **open-set**: the target also holds classes the source never saw ("unknown");
* **universal**: both sides have private classes.

A domain is cut to a class set with `class_set_domain`; labels are expressed in the *source's* label
space, with every class outside it mapped to one extra label, "unknown".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..domain import Domain

#: ``{setting: (source classes, target classes)}`` over Fashion-MNIST's ten classes.
CLASS_SET_SPLITS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "partial": (tuple(range(10)), tuple(range(5))),  # target: 5 of the 10 source classes
    "open_set": (tuple(range(6)), tuple(range(10))),  # target adds 4 unknown classes
    "universal": (tuple(range(7)), tuple(range(3, 10))),  # 3 source-private, 4 common, 3 target-private
}


def class_set_domain(domain: Domain, classes: Sequence[int], label_space: Sequence[int]) -> Domain:
    """The images of ``domain`` whose class is in ``classes``, labelled in ``label_space``.

    A class at position ``i`` of ``label_space`` gets label ``i``; a kept class outside
    ``label_space`` gets label ``len(label_space)``, named ``"unknown"``.

    Example: ``class_set_domain(test, classes=range(3, 10), label_space=range(7))`` keeps classes 3-9;
    3-6 keep their labels, 7, 8 and 9 all become 7 ("unknown").
    """
    classes, label_space = [int(c) for c in classes], [int(c) for c in label_space]
    bad = [c for c in classes + label_space if not 0 <= c < domain.num_classes]
    if bad:
        raise ValueError(f"classes must lie in [0, {domain.num_classes}), got {bad}")
    if len(set(label_space)) != len(label_space):
        raise ValueError(f"label_space has repeated classes: {label_space}")
    has_unknown = any(c not in label_space for c in classes)
    mapping = torch.full((domain.num_classes,), -1, dtype=torch.int64)
    for c in classes:
        mapping[c] = label_space.index(c) if c in label_space else len(label_space)
    keep = mapping[domain.y] >= 0
    names = tuple(domain.classes[c] for c in label_space) + (("unknown",) if has_unknown else ())
    return Domain(domain.name, domain.x[keep], mapping[domain.y[keep]], names)
