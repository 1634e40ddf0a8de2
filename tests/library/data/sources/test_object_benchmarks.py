"""Office-31 and PACS: fetched from the ``serve`` fixture and loaded one domain at a time, and a copy placed
by hand in the original archive's layout."""

from __future__ import annotations

import pytest

from tlcourse.library.data import fetch_benchmark, load_benchmark, load_office31, load_pacs
from tlcourse.library.data.store.image_folders import OFFICE31_CLASSES, PACS_CLASSES


@pytest.mark.parametrize(
    "name, loader, domains",
    [
        ("office31", load_office31, ("amazon", "dslr", "webcam")),
        ("pacs", load_pacs, ("art_painting", "cartoon", "photo", "sketch")),
    ],
)
def test_image_benchmark_fetches_and_loads_each_domain(serve, isolated_data_roots, name, loader, domains):
    expected = serve(name)
    fetch_benchmark(name, progress=False, allow_unverified=(name == "pacs"))
    classes = OFFICE31_CLASSES if name == "office31" else PACS_CLASSES
    for domain in domains:
        d = loader(domain, image_size=24)
        counts = expected["counts"][domain]
        assert d.name == f"{name}-{domain}" and d.classes == classes
        assert d.x.shape == (sum(counts.values()), 3, 24, 24)
        assert sorted(d.y.tolist()) == sorted(classes.index(c) for c, k in counts.items() for _ in range(k))
    assert load_benchmark(name, domains[0][0].upper(), image_size=8).name == f"{name}-{domains[0]}"


def test_office31_original_layout_and_bad_folders(tmp_path, jpeg_tree):
    # A copy placed by hand from the original archive: <domain>/images/<class>/ at the top.
    root = tmp_path / "office31"
    for domain in ("amazon", "dslr", "webcam"):
        for rel, data in jpeg_tree(f"{domain}/images", {"mug": 1, "bike": 1}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    d = load_office31("W", image_size=16, root=tmp_path)
    assert d.name == "office31-webcam" and d.y.tolist() == [
        OFFICE31_CLASSES.index("bike"),
        OFFICE31_CLASSES.index("mug"),
    ]
    with pytest.raises(ValueError, match="domains amazon, dslr, webcam"):
        load_office31("clipart", root=tmp_path)
    (root / "webcam" / "images" / "not_a_class").mkdir()
    with pytest.raises(ValueError, match="not_a_class"):
        load_office31("webcam", root=tmp_path)
