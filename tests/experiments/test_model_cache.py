"""`tlcourse.experiments.model_cache` through `fine_tuning.pretrain`: off unless asked, a hit is what training gives
(the weights, the mode and the random numbers drawn after it), the key follows every input, and a broken entry
trains again."""

import random

import numpy as np
import pytest
import torch

from tlcourse.experiments import fine_tuning as exp
from tlcourse.experiments import model_cache
from tlcourse.library.data import Domain

CONFIG = exp.FineTuningConfig(source_epochs=1)


def source(seed: int = 0, n: int = 40) -> Domain:
    g = torch.Generator().manual_seed(seed)
    return Domain("tiny", torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 5, tuple("abcde"))


def drawn() -> tuple[float, float, float]:
    """The next number of each global generator (torch, NumPy, Python)."""
    return torch.rand(1).item(), float(np.random.rand()), random.random()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.CACHE_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_off_unless_the_variable_names_a_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(model_cache.CACHE_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert model_cache.folder() is None
    exp.pretrain(source(), CONFIG, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_a_hit_gives_what_training_gives(cache_dir, monkeypatch):
    trained = exp.pretrain(source(), CONFIG, seed=0)
    after_training = drawn()
    entries = list(cache_dir.iterdir())
    assert [p.suffix for p in entries] == [".pt"], entries  # one entry, no temporary file left

    def no_training(*args, **kwargs):
        raise AssertionError("trained again on a cache hit")

    monkeypatch.setattr(exp, "fit", no_training)
    loaded = exp.pretrain(source(), CONFIG, seed=0)
    assert same_weights(loaded, trained) and loaded.training == trained.training
    assert drawn() == after_training  # the cells after it draw the same numbers


def test_the_key_follows_every_input():
    base = model_cache.key("pretrain", source(), CONFIG, 0)
    assert model_cache.key("pretrain", source(), CONFIG, 0) == base
    nudged = source()
    nudged.x[3, 0, 5, 5] += 1e-3
    others = {
        model_cache.key("pretrain", source(), CONFIG, 1),
        model_cache.key("pretrain", nudged, CONFIG, 0),
        model_cache.key("pretrain", source(), exp.FineTuningConfig(source_epochs=2), 0),
        model_cache.key("other", source(), CONFIG, 0),
    }
    assert base not in others and len(others) == 4
    with pytest.raises(TypeError, match="cannot hash a object"):
        model_cache.key("pretrain", object())


def test_a_broken_entry_trains_again_and_is_replaced(cache_dir):
    trained = exp.pretrain(source(), CONFIG, seed=0)
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(entry.read_bytes()[:100])  # a copy cut short
    with pytest.warns(UserWarning, match="unreadable"):
        again = exp.pretrain(source(), CONFIG, seed=0)
    assert same_weights(again, trained)
    model = exp.build_network(CONFIG, 5, 1)
    assert model_cache.load(model, entry.stem) and same_weights(model, trained)  # readable again


def test_a_hit_leaves_the_generators_as_training_left_them(cache_dir):
    """Training that draws from the global generators (dropout, say) leaves them elsewhere than where its network
    was built: a hit puts them there too."""
    model = exp.build_network(CONFIG, 5, 1)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    drawn()  # what training would have drawn
    model_cache.save(model, "entry")
    after_training = drawn()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    assert model_cache.load(exp.build_network(CONFIG, 5, 1), "entry")
    assert drawn() == after_training
