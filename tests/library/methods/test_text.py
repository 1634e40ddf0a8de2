"""Chapter 6's text blocks, on a tiny randomly initialised BERT (2 layers, hidden 32): no real encoder."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from tlcourse.library.methods.text import (  # noqa: E402
    EncoderClassifier,
    SentenceEncoder,
    embed,
    embedding_cache_path,
    fine_tune_classifier,
    fit_tfidf_baseline,
    glove_mean,
    mean_pool,
    predict_proba,
    unfreeze_top_layers,
)

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "the", "a", "was", "plot"]


@pytest.fixture
def tiny_encoder(tmp_path) -> SentenceEncoder:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizer.from_pretrained(str(tmp_path))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config)
    model.eval()
    return SentenceEncoder(name="tiny-bert", tokenizer=tokenizer, model=model)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_mean_pool_is_the_mean_when_nothing_is_padded():
    hidden = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(mean_pool(hidden, torch.ones(3, 5, dtype=torch.long)), hidden.mean(1))


def test_mean_pool_does_not_depend_on_padding_length():
    hidden = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1))
    padded = torch.cat([hidden, torch.randn(1, 4, 4)], 1)
    short = mean_pool(hidden, torch.ones(1, 3))
    long = mean_pool(padded, torch.tensor([[1, 1, 1, 0, 0, 0, 0]]))
    assert torch.allclose(short, long, atol=1e-6)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_unfreeze_top_layers_leaves_exactly_the_top_k_trainable(tiny_encoder, k):
    model = unfreeze_top_layers(EncoderClassifier(tiny_encoder.model), k)
    layers = model.encoder.encoder.layer
    for i, layer in enumerate(layers):
        flags = {p.requires_grad for p in layer.parameters()}
        assert flags == {i >= len(layers) - k}, f"layer {i} with k={k}"
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert all(p.requires_grad for p in model.encoder.pooler.parameters())


def test_unfreeze_top_layers_refuses_too_many(tiny_encoder):
    with pytest.raises(ValueError, match="k must lie"):
        unfreeze_top_layers(tiny_encoder.model, 3)


def test_embedding_cache_returns_the_same_array_and_misses_a_changed_text(tiny_encoder, tmp_path):
    texts = ["the film was good", "a dull plot", "awful"]
    first = embed(texts, tiny_encoder, max_length=16, cache=tmp_path)
    path = embedding_cache_path("tiny-bert", 16, texts, root=tmp_path)
    assert path.is_file()
    assert first.shape == (3, 32)
    assert torch.equal(embed(texts, tiny_encoder, max_length=16, cache=tmp_path), first)
    changed = ["the film was great", *texts[1:]]
    assert embedding_cache_path("tiny-bert", 16, changed, root=tmp_path) != path
    assert embedding_cache_path("tiny-bert", 8, texts, root=tmp_path) != path
    assert not embedding_cache_path("tiny-bert", 16, changed, root=tmp_path).is_file()
    embed(changed, tiny_encoder, max_length=16, cache=tmp_path)
    assert len(list(path.parent.glob("*.npy"))) == 2
    assert not list(path.parent.glob("*.part"))


def test_a_texts_embedding_does_not_depend_on_its_batch(tiny_encoder):
    texts = ["good", "the film was awful and the plot was dull"]
    together = embed(texts, tiny_encoder, max_length=16, cache=False)
    alone = embed(texts[:1], tiny_encoder, max_length=16, cache=False)
    assert torch.allclose(together[0], alone[0], atol=1e-5)


def test_fine_tuning_is_deterministic_and_trains_only_the_top_layers(tiny_encoder):
    texts = ["good film", "great plot", "bad film", "awful plot"] * 2
    labels = torch.tensor([1, 1, 0, 0] * 2)
    before = {n: p.clone() for n, p in tiny_encoder.model.named_parameters()}
    one = fine_tune_classifier(tiny_encoder, texts, labels, top_layers=1, seed=3, epochs=2, batch_size=4)
    two = fine_tune_classifier(tiny_encoder, texts, labels, top_layers=1, seed=3, epochs=2, batch_size=4)
    assert torch.equal(predict_proba(one, tiny_encoder, texts), predict_proba(two, tiny_encoder, texts))
    for name, p in tiny_encoder.model.named_parameters():  # the encoder itself is left as it was
        assert torch.equal(p, before[name])
    tuned = dict(one.encoder.named_parameters())
    assert torch.equal(
        tuned["encoder.layer.0.attention.self.query.weight"], before["encoder.layer.0.attention.self.query.weight"]
    )
    assert not torch.equal(
        tuned["encoder.layer.1.attention.self.query.weight"], before["encoder.layer.1.attention.self.query.weight"]
    )


def test_fine_tuning_runs_exactly_steps_and_on_step_sees_the_model_steps_would_return(tiny_encoder):
    """``steps`` fixes the number of optimiser steps (more than one pass here); ``on_step`` is called after
    each, and the model it sees after step s scores as the model that ``steps=s`` returns."""
    texts = ["good film", "great plot", "bad film", "awful plot", "the dull film"]
    labels = torch.tensor([1, 1, 0, 0, 0])
    seen = {}

    def record(step, model):
        seen[step] = predict_proba(model, tiny_encoder, texts)

    kwargs = dict(top_layers=2, seed=4, batch_size=2, lr=1e-3)
    fine_tune_classifier(tiny_encoder, texts, labels, steps=7, on_step=record, **kwargs)
    assert sorted(seen) == list(range(1, 8))
    for steps in (2, 7):
        model = fine_tune_classifier(tiny_encoder, texts, labels, steps=steps, **kwargs)
        assert torch.allclose(predict_proba(model, tiny_encoder, texts), seen[steps], atol=1e-6)
    assert not torch.allclose(seen[2], seen[7], atol=1e-4), "more steps must change the model"


def test_predict_proba_hands_back_the_order_given(tiny_encoder):
    """Scoring sorts the texts by length into batches: each text must still get its own scores."""
    texts = ["the good film was great", "bad", "a dull plot", "great", "the awful film was a dull plot", "fine"]
    labels = torch.tensor([1, 0, 0, 1, 0, 1])
    model = fine_tune_classifier(tiny_encoder, texts, labels, top_layers=1, seed=0, steps=3, batch_size=3)
    together = predict_proba(model, tiny_encoder, texts, batch_size=2)
    for i, text in enumerate(texts):
        assert torch.allclose(together[i], predict_proba(model, tiny_encoder, [text])[0], atol=1e-5), text
    reversed_ = predict_proba(model, tiny_encoder, texts[::-1], batch_size=4)
    assert torch.allclose(reversed_, together.flip(0), atol=1e-5)
    assert predict_proba(model, tiny_encoder, []).shape == (0, 2)


def test_tfidf_baseline_learns_separable_words():
    texts = ["good great", "great fine", "good fine", "bad awful", "awful dull", "bad dull"]
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    probs = fit_tfidf_baseline(texts, labels).predict_proba(["great good", "dull awful"])
    assert probs.argmax(1).tolist() == [1, 0]


def test_glove_mean_averages_known_words_and_skips_unknown():
    words = ["good", "film", "."]
    vectors = torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    means = glove_mean(["Good film", "Good zzzz", "zzzz"], words, vectors)
    assert torch.allclose(means, torch.tensor([[0.5, 1.0], [1.0, 0.0], [0.0, 0.0]]))
