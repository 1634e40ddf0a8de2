"""Chapter 6: transfer learning for text. A pretrained sentence encoder (all-MiniLM-L6-v2), frozen with a
linear probe or fine-tuned, against from-scratch baselines (TF-IDF, mean GloVe vectors), on movie-review
sentences (Pang & Lee), and the same models on two shifted targets: full-length movie reviews (truncated at
``max_length`` tokens) and drug reviews (another vocabulary, and about seven reviews in ten positive against
a balanced source: a label shift too, which chapter 4's estimators correct).

``python -m tlcourse reproduce text-transfer --seed N --json F``. Results (accuracies): ``tfidf``,
``glove``, ``frozen_probe``, ``fine_tuned`` on the source's held-out sentences; the same with ``_reviews``
(full reviews) and ``_target`` (drug reviews); ``label_shift_corrected_target`` (the frozen probe's
drug-review posteriors re-weighted by EM's estimate of the drug reviews' prior, Saerens et al. 2002) and
``bbse_corrected_target`` (by BBSE's weights, Lipton et al. 2018); ``fine_tuned_10``, ``fine_tuned_100``,
``fine_tuned_1000`` (the learning curve: fine-tuning on that many labelled sentences).

``--profile full``: BERT-base (uncased) fine-tuned on IMDB (25,000 training reviews, 25,000 test), on the
GPU when there is one; published beside: 94.6% test accuracy for BERT-base fine-tuned on IMDB (Sun et al.,
"How to Fine-Tune BERT for Text Classification?", CCL 2019, Table: error 5.4%). It needs the IMDB corpus
(``python -m tlcourse data fetch imdb``) and the ``bert-base-uncased`` weights in the Hugging Face cache
(a network once); offline, it stops with an error that says so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tlcourse.experiments.registry import register, seed_row
from tlcourse.experiments.results import ExperimentResult
from tlcourse.library.data import (
    load_drug_reviews,
    load_glove,
    load_imdb,
    load_polarity_reviews,
    load_polarity_sentences,
)
from tlcourse.library.data.store.roots import DataNotFoundError
from tlcourse.library.methods.label_shift import (
    em_prior_adjustment,
    estimate_label_shift_bbse,
    reweight_posteriors,
    source_prior,
)
from tlcourse.library.methods.text import (
    ENCODER_NAME,
    SentenceEncoder,
    embed,
    embedding_cache_path,
    fine_tune_classifier,
    fit_linear_probe,
    fit_tfidf_baseline,
    glove_mean,
    load_sentence_encoder,
    predict_proba,
)
from tlcourse.library.train import choose_device

PROFILES = ("offline", "full")
#: The learning curve's numbers of labelled source sentences.
CURVE = (10, 100, 1000)
#: Published beside ``--profile full`` (Sun et al., 2019: BERT-base fine-tuned on IMDB, test error 5.4%).
PUBLISHED_FULL = {"fine_tuned": 0.946}


@dataclass(frozen=True)
class TextTransferConfig:
    """The offline budget: about three minutes a seed on one core once the embeddings are cached."""

    train_fraction: float = 0.8  # share of the 4,000 movie sentences that trains; the rest is the source test
    max_length: int = 64  # tokens kept of each text (full reviews are truncated there)
    curve: tuple[int, ...] = CURVE  # labelled sentences of the fine-tuning learning curve
    top_layers: int = 2  # transformer layers fine-tuned (of MiniLM's 6), with the pooler and the head
    epochs: int = 1  # passes over the labelled sentences when fine-tuning
    min_steps: int = 20  # at least this many fine-tuning steps (ten labels still get some)
    lr: float = 5e-5  # AdamW's learning rate of the fine-tuned layers
    head_lr: float = 1e-3  # AdamW's learning rate of the new head
    batch_size: int = 16  # fine-tuning minibatch
    probe_c: float = 1.0  # inverse L2 strength of the logistic-regression probes


def notebook_config() -> TextTransferConfig:
    """The notebook's budget: the learning curve at 10 and 100 labels only, on the same cached embeddings."""
    return TextTransferConfig(curve=(10, 100))


def warm_embedding_cache(config: TextTransferConfig | None = None) -> list[Path]:
    """Embed the chapter's three domains once into the embedding cache (`embed`'s disk cache), so that the
    notebook and every seed of ``reproduce text-transfer`` read them instead of running the encoder: the
    setup (data_scripts/install_offline_data.sh) calls this after fetching the corpora. The encoder is
    loaded only when a domain is missing from the cache. Returns the cache files."""
    config = config or TextTransferConfig()
    domains = (load_polarity_sentences(), load_polarity_reviews(), load_drug_reviews())
    paths = [embedding_cache_path(ENCODER_NAME, config.max_length, d.texts) for d in domains]
    missing = [d for d, path in zip(domains, paths) if not path.is_file()]
    if missing:
        encoder = load_sentence_encoder()
        for domain in missing:
            embed(domain.texts, encoder, config.max_length)
    return paths


def accuracy_of(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``probs.argmax(1)`` equal to ``labels``."""
    return float((probs.argmax(1) == labels).double().mean())


def label_shift_corrections(
    source_probs: torch.Tensor, source_labels: torch.Tensor, target_probs: torch.Tensor, train_labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Chapter 4's two corrections of ``target_probs``: EM's prior (Saerens et al.) and BBSE's weights
    (from the confusion matrix on labelled held-out source texts). Returns the corrected posteriors."""
    prior = source_prior(train_labels, target_probs.shape[1])
    _, em_adjusted, _ = em_prior_adjustment(target_probs.double(), prior)
    weights = estimate_label_shift_bbse(source_probs.double(), source_labels, target_probs.double())
    return {"em": em_adjusted, "bbse": reweight_posteriors(target_probs, weights)}


def _fine_tune(encoder: SentenceEncoder, texts, labels, config: TextTransferConfig, seed: int):
    return fine_tune_classifier(
        encoder,
        texts,
        labels,
        top_layers=config.top_layers,
        seed=seed,
        epochs=config.epochs,
        lr=config.lr,
        head_lr=config.head_lr,
        batch_size=config.batch_size,
        max_length=config.max_length,
        min_steps=config.min_steps,
    )


@register("text-transfer")
def run_text_transfer(
    seed: int = 0, config: TextTransferConfig | None = None, progress: bool = True, profile: str = "offline"
) -> ExperimentResult:
    """Baselines, the frozen probe and fine-tuning on movie sentences; scored on sentences, reviews, drugs."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    if profile == "full":
        return run_full(seed, progress)
    config = config or TextTransferConfig()
    start = time.perf_counter()
    sentences = load_polarity_sentences()
    reviews = load_polarity_reviews()
    drugs = load_drug_reviews()
    encoder = load_sentence_encoder()
    length = config.max_length
    # Whole domains are embedded (and cached) once; every seed indexes the same arrays.
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed))
    cut = round(config.train_fraction * len(sentences))
    train_index, test_index = order[:cut], order[cut:]
    train, test = sentences.subset(train_index), sentences.subset(test_index)
    targets = {"": test, "_reviews": reviews, "_target": drugs}
    sentence_features = embed(sentences.texts, encoder, length)
    features = {
        "": sentence_features[test_index],
        "_reviews": embed(reviews.texts, encoder, length),
        "_target": embed(drugs.texts, encoder, length),
    }
    words, vectors = load_glove()

    results: dict[str, float] = {}
    probs: dict[str, dict[str, torch.Tensor]] = {}
    tfidf = fit_tfidf_baseline(train.texts, train.labels)
    glove = fit_linear_probe(glove_mean(train.texts, words, vectors), train.labels, config.probe_c)
    probe = fit_linear_probe(sentence_features[train_index], train.labels, config.probe_c)
    for suffix, domain in targets.items():
        probs[suffix] = {
            "tfidf": tfidf.predict_proba(domain.texts),
            "glove": glove.predict_proba(glove_mean(domain.texts, words, vectors)),
            "frozen_probe": probe.predict_proba(features[suffix]),
        }

    curve_models, curve_probs = {}, {}
    for n in config.curve:
        seed_row(seed)
        labelled = train.take(min(n, len(train)), seed=seed)
        model = _fine_tune(encoder, labelled.texts, labelled.labels, config, seed)
        curve_models[n], curve_probs[n] = model, predict_proba(model, encoder, test.texts, length)
        results[f"fine_tuned_{n}"] = accuracy_of(curve_probs[n], test.labels)
    largest = curve_models[max(config.curve)]
    probs[""]["fine_tuned"] = curve_probs[max(config.curve)]
    probs["_target"]["fine_tuned"] = predict_proba(largest, encoder, drugs.texts, length)

    for suffix, per_method in probs.items():
        for method, p in per_method.items():
            results[f"{method}{suffix}"] = accuracy_of(p, targets[suffix].labels)
    corrected = label_shift_corrections(
        probs[""]["frozen_probe"], test.labels, probs["_target"]["frozen_probe"], train.labels
    )
    results["label_shift_corrected_target"] = accuracy_of(corrected["em"], drugs.labels)
    results["bbse_corrected_target"] = accuracy_of(corrected["bbse"], drugs.labels)
    results["always_positive_target"] = float((drugs.labels == 1).double().mean())

    methods = ("tfidf", "glove", "frozen_probe", "fine_tuned")
    columns = {"": "sentences %", "_reviews": "full reviews %", "_target": "drug reviews %"}
    table = [
        (method, {columns[s]: 100 * results[f"{method}{s}"] if f"{method}{s}" in results else "-" for s in columns})
        for method in methods
    ]
    table.append(("frozen_probe + EM prior", {columns["_target"]: 100 * results["label_shift_corrected_target"]}))
    table.append(("frozen_probe + BBSE", {columns["_target"]: 100 * results["bbse_corrected_target"]}))
    table += [(f"fine-tuned on {n} labels", {columns[""]: 100 * results[f"fine_tuned_{n}"]}) for n in config.curve]
    return ExperimentResult(
        experiment="text-transfer",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"config": asdict(config), "probs": probs, "encoder": encoder, "fine_tuned": largest},
    )


def run_full(seed: int, progress: bool = True) -> ExperimentResult:
    """``--profile full``: bert-base-uncased fine-tuned on IMDB's 25,000 training reviews (2 epochs, max length
    256, all layers), scored on its 25,000 test reviews; Sun et al. (2019) beside it."""
    start = time.perf_counter()
    train, test = load_imdb("train"), load_imdb("test")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise DataNotFoundError("--profile full needs transformers: python -m pip install transformers") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
        model = AutoModel.from_pretrained("bert-base-uncased")
    except OSError as error:
        raise DataNotFoundError(
            "--profile full fine-tunes bert-base-uncased, which is not in the Hugging Face cache and could not "
            'be downloaded (offline?). With a network once:   python -c "from transformers import AutoModel, '
            "AutoTokenizer; AutoModel.from_pretrained('bert-base-uncased'); "
            "AutoTokenizer.from_pretrained('bert-base-uncased')\""
        ) from error
    encoder = SentenceEncoder(name="bert-base-uncased", tokenizer=tokenizer, model=model)
    device = choose_device()
    seed_row(seed)
    classifier = fine_tune_classifier(
        encoder,
        train.texts,
        train.labels,
        top_layers=len(model.encoder.layer),
        seed=seed,
        epochs=2,
        lr=2e-5,
        head_lr=2e-5,
        batch_size=32,
        max_length=256,
        device=device,
    )
    probs = predict_proba(classifier, encoder, test.texts, max_length=256)
    results = {"fine_tuned": accuracy_of(probs, test.labels)}
    table = [("bert-base-uncased, IMDB", {"test %": 100 * results["fine_tuned"], "published %": 94.6})]
    return ExperimentResult(
        experiment="text-transfer",
        seed=seed,
        results=results,
        seconds=time.perf_counter() - start,
        table=table,
        details={"published": PUBLISHED_FULL},
    )
