"""Domain generalization methods: domain randomisation and one minibatch per domain for every method."""

import pytest
import torch

from tlcourse.library.data import Domain
from tlcourse.library.methods import (
    CORAL,
    ERM,
    IRM,
    AdversarialAugmentation,
    AugmentedERM,
    DomainAdversarial,
    InterDomainMixup,
    randomize_domain,
)
from tlcourse.library.models import build_classifier
from tlcourse.library.train import fit_domains, seed_everything, split_domains


def fake_base(n: int = 120, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Domain("fake", x, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


def test_randomize_domain_is_seeded_and_stays_in_range():
    x = fake_base(24).x
    a = randomize_domain(x, torch.Generator().manual_seed(1))
    b = randomize_domain(x, torch.Generator().manual_seed(1))
    assert a.shape == (24, 3, 28, 28) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


METHODS = {
    "erm": lambda m, k: ERM(m),
    "dann": lambda m, k: DomainAdversarial(m, k),
    "coral": lambda m, k: CORAL(m),
    "mixup": lambda m, k: InterDomainMixup(m),
    "irm": lambda m, k: IRM(m, anneal_steps=1),
    "augment": lambda m, k: AugmentedERM(m),
    "adversarial": lambda m, k: AdversarialAugmentation(m, ascent_steps=1),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_on_one_minibatch_per_domain(name):
    seed_everything(0)
    domains = {n: fake_base(24, seed=i).to_rgb() for i, n in enumerate("abc")}
    train, val = split_domains(domains, 0.25, seed=0)
    model = build_classifier("lenet", num_classes=10)
    method = METHODS[name](model, len(train))
    seen = []
    original = method.update

    def spy(minibatches, progress):
        seen.append([len(x) for x, _ in minibatches])
        return original(minibatches, progress)

    method.update = spy
    before = [p.detach().clone() for p in model.parameters()]
    history = fit_domains(
        method, train, epochs=2, batch_size=8, val=val, select=True, progress=False, device=torch.device("cpu")
    )
    assert seen and all(sizes == [8, 8, 8] for sizes in seen)
    assert len(history) == 2 and history.best_epoch in (1, 2) and 0 <= history["val_acc"][0] <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no parameter moved"
