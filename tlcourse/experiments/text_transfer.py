"""Chapter 6: transfer learning for text. A pretrained sentence encoder (all-MiniLM-L6-v2), frozen with a
linear probe or fine-tuned, against from-scratch baselines (TF-IDF, mean GloVe vectors), on movie-review
sentences (Pang & Lee), and the same models on two shifted targets: full-length movie reviews (truncated at
``max_length`` tokens) and drug reviews (another vocabulary, and about seven reviews in ten positive against
a balanced source: a label shift too, which chapter 4's estimators correct).

``python -m tlcourse reproduce text-transfer --seed N --json F``. Results (accuracies): ``tfidf``,
``glove``, ``frozen_probe``, ``fine_tuned`` on the source's held-out sentences; the same with ``_reviews``
(full reviews) and ``_target`` (drug reviews); ``label_shift_corrected_target`` (the frozen probe's
drug-review posteriors re-weighted by EM's estimate of the drug reviews' prior, Saerens et al. 2002) and
``bbse_corrected_target`` (by BBSE's weights, Lipton et al. 2018); and the learning curve on the source's
held-out sentences, at N = 10, 100 and 1,000 labelled sentences (the same N for the three): ``frozen_probe_N``
(the frozen encoder's linear probe), ``fine_tuned_N`` (MiniLM's top 2 layers fine-tuned) and
``fine_tuned_all_N`` (all 6 layers), with a number of steps per N chosen on source validation sentences
(`STEPS`, `validation_curve`). ``fine_tuned`` is ``fine_tuned_1000``.

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
#: Fine-tuning steps (batch 16) at each number of labels, chosen on source validation sentences with
#: `validation_curve` (docs/decisions/text-transfer.md): 20 at 10 labels, 60 at 100, one epoch at 1,000.
STEPS = ((10, 20), (100, 60), (1000, 63))
#: Published beside ``--profile full`` (Sun et al., 2019: BERT-base fine-tuned on IMDB, test error 5.4%).
PUBLISHED_FULL = {"fine_tuned": 0.946}


@dataclass(frozen=True)
class TextTransferConfig:
    """The offline budget: at most about four minutes a seed on one core once the embeddings are cached."""

    train_fraction: float = 0.8  # share of the 4,000 movie sentences that trains; the rest is the source test
    max_length: int = 64  # tokens kept of each text (full reviews are truncated there)
    curve: tuple[int, ...] = CURVE  # labelled sentences of the top-layer fine-tuning learning curve
    all_layers_curve: tuple[int, ...] = CURVE  # labelled sentences at which every layer is fine-tuned
    top_layers: int = 2  # transformer layers fine-tuned (of MiniLM's 6), with the pooler and the head
    steps: tuple[tuple[int, int], ...] = STEPS  # (labels, fine-tuning steps), chosen on source validation
    lr: float = 5e-5  # AdamW's learning rate of the fine-tuned layers
    head_lr: float = 1e-3  # AdamW's learning rate of the new head
    batch_size: int = 16  # fine-tuning minibatch
    probe_c: float = 1.0  # inverse L2 strength of the logistic-regression probes


def fine_tuning_steps(config: TextTransferConfig, n: int) -> int:
    """The number of fine-tuning steps at ``n`` labelled sentences (``config.steps``); a ValueError names
    the sizes that have one when ``n`` has none."""
    steps = dict(config.steps)
    if n not in steps:
        raise ValueError(f"no number of fine-tuning steps for {n} labels; config.steps has {sorted(steps)}.")
    return steps[n]


def notebook_config() -> TextTransferConfig:
    """The notebook's budget: fine-tuning (top layers and all layers) at 10 labels only, on the same cached
    embeddings; the recorded runs give the rest of the curve."""
    return TextTransferConfig(curve=(10,), all_layers_curve=(10,))


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


def validation_curve(
    seed: int = 0,
    checkpoints: dict[int, tuple[int, ...]] | None = None,
    layers: tuple[int, ...] = (2, 6),
    validation: int = 400,
    config: TextTransferConfig | None = None,
) -> dict[str, float]:
    """How the number of fine-tuning steps was chosen (docs/decisions/text-transfer.md): source
    *validation* accuracy only. The seed's 3,200 training sentences are split again: the last
    ``validation`` of them score, the labelled sentences are drawn from the others (the test sentences,
    the targets and their labels are never read). For each number of labels ``n`` and each number of
    fine-tuned layers, one run of ``max(checkpoints[n])`` steps is scored after each step in
    ``checkpoints[n]`` (the learning rate is constant, so that is the model ``steps=s`` gives).
    Returns ``{"n=N, k=K, steps=S": validation accuracy}``."""
    config = config or TextTransferConfig()
    checkpoints = checkpoints or {10: (20, 40), 100: (20, 40, 60, 80), 1000: (32, 63)}
    sentences = load_polarity_sentences()
    encoder = load_sentence_encoder()
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed))
    train = sentences.subset(order[: round(config.train_fraction * len(sentences))])
    pool, held = (
        train.subset(torch.arange(len(train) - validation)),
        train.subset(torch.arange(len(train) - validation, len(train))),
    )
    scores: dict[str, float] = {}
    for n, steps in checkpoints.items():
        labelled = pool.take(n, seed=seed)
        for k in layers:

            def score(step, model, n=n, k=k, steps=steps):
                if step in steps:
                    probs = predict_proba(model, encoder, held.texts, config.max_length)
                    scores[f"n={n}, k={k}, steps={step}"] = accuracy_of(probs, held.labels)

            seed_row(seed)
            fine_tune_classifier(
                encoder,
                labelled.texts,
                labelled.labels,
                top_layers=k,
                seed=seed,
                lr=config.lr,
                head_lr=config.head_lr,
                batch_size=config.batch_size,
                max_length=config.max_length,
                steps=max(steps),
                on_step=score,
            )
    return scores


def _fine_tune(encoder: SentenceEncoder, texts, labels, config: TextTransferConfig, seed: int, layers: int):
    return fine_tune_classifier(
        encoder,
        texts,
        labels,
        top_layers=layers,
        seed=seed,
        lr=config.lr,
        head_lr=config.head_lr,
        batch_size=config.batch_size,
        max_length=config.max_length,
        steps=fine_tuning_steps(config, len(texts)),
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

    # The learning curve: the frozen probe, the top layers and all layers, on the same labelled sentences.
    all_layers = len(encoder.model.encoder.layer)
    largest = None
    for n in sorted(set(config.curve) | set(config.all_layers_curve)):
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: min(n, len(train))]
        labelled = train.subset(pick)  # = train.take(n, seed)
        small_probe = fit_linear_probe(sentence_features[train_index[pick]], labelled.labels, config.probe_c)
        results[f"frozen_probe_{n}"] = accuracy_of(small_probe.predict_proba(features[""]), test.labels)
        for name, layers, sizes in (
            ("fine_tuned", config.top_layers, config.curve),
            ("fine_tuned_all", all_layers, config.all_layers_curve),
        ):
            if n in sizes:
                seed_row(seed)
                model = _fine_tune(encoder, labelled.texts, labelled.labels, config, seed, layers)
                test_probs = predict_proba(model, encoder, test.texts, length)
                results[f"{name}_{n}"] = accuracy_of(test_probs, test.labels)
                if name == "fine_tuned" and n == max(CURVE):
                    largest, probs[""]["fine_tuned"] = model, test_probs
    if largest is not None:  # fine_tuned: the top layers on 1,000 labels, also scored on the drug reviews
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
    curve_columns = {"frozen_probe": "frozen probe %", "fine_tuned": "top layers %", "fine_tuned_all": "all layers %"}
    for n in sorted(set(config.curve) | set(config.all_layers_curve)):
        row = {c: 100 * results[f"{m}_{n}"] if f"{m}_{n}" in results else "-" for m, c in curve_columns.items()}
        table.append((f"{n} labels", row))
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
