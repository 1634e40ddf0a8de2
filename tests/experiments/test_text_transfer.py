"""`tlcourse.experiments.text_transfer` (chapter 6) without the real encoder: its scoring and label-shift
corrections on known answers, and the errors of its full profile."""

from __future__ import annotations

import pytest
import torch

from tlcourse.experiments.text_transfer import (
    CURVE,
    TextTransferConfig,
    accuracy_of,
    fine_tuning_steps,
    label_shift_corrections,
    notebook_config,
    run_text_transfer,
)
from tlcourse.library.data import DataNotFoundError


def test_accuracy_of_counts_the_argmax():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert accuracy_of(probs, torch.tensor([0, 1, 1, 1])) == 0.75


def test_label_shift_corrections_move_the_posteriors_towards_the_target_prior():
    # A source model with overlapping scores (balanced source) on a target that is 80% positive.
    generator = torch.Generator().manual_seed(0)
    source_labels = torch.randint(0, 2, (2000,), generator=generator)
    target_labels = (torch.rand(2000, generator=generator) < 0.8).long()

    def posteriors(labels):
        noise = 0.8 * (torch.rand(len(labels), generator=generator) - 0.5)
        score = (torch.where(labels == 1, 0.6, 0.4) + noise).clamp(0.01, 0.99)
        return torch.stack([1 - score, score], 1)

    source_probs, target_probs = posteriors(source_labels), posteriors(target_labels)
    corrected = label_shift_corrections(source_probs, source_labels, target_probs, source_labels)
    for name, probs in corrected.items():
        assert probs.shape == target_probs.shape and torch.allclose(probs.sum(1), torch.ones(2000, dtype=probs.dtype))
        assert probs[:, 1].mean() > target_probs[:, 1].mean() + 0.1, name
        assert accuracy_of(probs, target_labels) > accuracy_of(target_probs, target_labels), name


def test_fine_tuning_steps_are_looked_up_per_size_and_every_size_has_one():
    config = TextTransferConfig(steps=((10, 20), (100, 60)))
    assert fine_tuning_steps(config, 10) == 20 and fine_tuning_steps(config, 100) == 60
    with pytest.raises(ValueError, match=r"1000 labels.*\[10, 100\]"):
        fine_tuning_steps(config, 1000)
    default = TextTransferConfig()
    for n in set(default.curve) | set(default.all_layers_curve) | set(CURVE):
        assert fine_tuning_steps(default, n) >= 20, n
    steps = [fine_tuning_steps(default, n) for n in sorted(CURVE)]
    assert steps == sorted(steps), "more labels never get fewer steps"
    assert fine_tuning_steps(default, 1000) * default.batch_size >= 1000, "1,000 labels: at least one pass"


def test_the_notebook_runs_a_part_of_the_curve_that_the_recorded_runs_have():
    from tlcourse.experiments import load_expected

    config = notebook_config()
    ranges = load_expected()["text-transfer"]["ranges"]
    assert set(config.curve) <= set(CURVE) and set(config.all_layers_curve) <= set(CURVE)
    for n in CURVE:
        for name in ("frozen_probe", "fine_tuned", "fine_tuned_all"):
            assert f"{name}_{n}" in ranges, f"{name}_{n}"


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="offline, full"):
        run_text_transfer(0, profile="huge")


def test_full_profile_names_the_fetch_command_when_imdb_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    monkeypatch.setattr("tlcourse.library.data.store.roots.SYSTEM_DATA_ROOT", tmp_path / "none")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="imdb"):
        run_text_transfer(0, profile="full")


def test_warm_embedding_cache_embeds_only_the_domains_it_misses(monkeypatch, tmp_path):
    """The setup's cache warming: every domain's file named by its texts; the encoder loaded and run only for
    the domains missing from the cache, and not at all once every file is there."""
    import numpy as np

    from tlcourse.experiments import text_transfer
    from tlcourse.library.data import TextDomain

    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path))
    domains = {
        name: TextDomain(name, [f"{name} text {i}" for i in range(3)], torch.tensor([0, 1, 0]))
        for name in ("sentences", "reviews", "drugs")
    }
    monkeypatch.setattr(text_transfer, "load_polarity_sentences", lambda: domains["sentences"])
    monkeypatch.setattr(text_transfer, "load_polarity_reviews", lambda: domains["reviews"])
    monkeypatch.setattr(text_transfer, "load_drug_reviews", lambda: domains["drugs"])
    embedded, loads = [], []

    def fake_embed(texts, encoder, max_length):
        embedded.append(texts[0].split()[0])
        path = text_transfer.embedding_cache_path(text_transfer.ENCODER_NAME, max_length, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.zeros((len(texts), 4), dtype=np.float32))

    monkeypatch.setattr(text_transfer, "embed", fake_embed)
    monkeypatch.setattr(text_transfer, "load_sentence_encoder", lambda: loads.append(1))
    first = text_transfer.embedding_cache_path(text_transfer.ENCODER_NAME, 64, domains["reviews"].texts)
    first.parent.mkdir(parents=True)
    np.save(first, np.zeros((3, 4), dtype=np.float32))  # the reviews are cached already

    paths = text_transfer.warm_embedding_cache()
    assert embedded == ["sentences", "drugs"] and loads == [1]
    assert all(path.is_file() and path.parent == tmp_path / "text-embeddings" for path in paths)
    text_transfer.warm_embedding_cache()
    assert embedded == ["sentences", "drugs"] and loads == [1], "a full cache must not load the encoder again"


def test_validation_curve_scores_held_out_training_sentences_never_the_test_ones(monkeypatch):
    """The steps were chosen on validation sentences carved from the seed's training sentences: the labelled
    sentences and the scored ones are disjoint, both inside the training split, and the scores are read
    after the candidate steps of one run per size and depth."""
    from tlcourse.experiments import text_transfer
    from tlcourse.library.data import TextDomain

    texts = [f"sentence {i}" for i in range(100)]
    sentences = TextDomain("sentences", texts, torch.arange(100) % 2)
    monkeypatch.setattr(text_transfer, "load_polarity_sentences", lambda: sentences)
    monkeypatch.setattr(text_transfer, "load_sentence_encoder", lambda: None)
    trained, scored, runs = [], [], []

    def fake_fine_tune(encoder, texts, labels, top_layers, seed, steps, on_step, **kwargs):
        trained.extend(texts)
        runs.append((len(texts), top_layers, steps))
        for step in range(1, steps + 1):
            on_step(step, f"model {len(texts)} {top_layers} {step}")

    def fake_predict(model, encoder, texts, max_length):
        scored.append((model, tuple(texts)))
        return torch.tensor([[0.0, 1.0]] * len(texts))  # always "positive": half the sentences right

    monkeypatch.setattr(text_transfer, "fine_tune_classifier", fake_fine_tune)
    monkeypatch.setattr(text_transfer, "predict_proba", fake_predict)
    scores = text_transfer.validation_curve(seed=3, checkpoints={4: (1, 3), 10: (2,)}, layers=(1, 2), validation=20)

    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    train, test = {texts[i] for i in order[:80].tolist()}, {texts[i] for i in order[80:].tolist()}
    validation = {t for _, batch in scored for t in batch}
    assert len(validation) == 20 and validation <= train and not validation & set(trained) and not set(trained) & test
    assert runs == [(4, 1, 3), (4, 2, 3), (10, 1, 2), (10, 2, 2)], "one run per size and depth, to its last checkpoint"
    assert [model for model, _ in scored] == [
        "model 4 1 1",
        "model 4 1 3",
        "model 4 2 1",
        "model 4 2 3",
        "model 10 1 2",
        "model 10 2 2",
    ]
    assert sorted(scores) == sorted(
        f"n={n}, k={k}, steps={s}" for n, ss in ((4, (1, 3)), (10, (2,))) for k in (1, 2) for s in ss
    )
    assert all(
        score == float((sentences.subset(order[60:80]).labels == 1).double().mean()) for score in scores.values()
    )
