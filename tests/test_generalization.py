"""Domain generalization: domain families, CORAL, IRM's penalty, the augmentations and the two loops."""

import pytest
import torch

from tlcourse.library.data import Domain, colour_by_label, rotated_family, spurious_colour_family, style_family
from tlcourse.library.methods.generalization import (
    CORAL,
    ERM,
    IRM,
    AdversarialAugmentation,
    AugmentedERM,
    DomainAdversarial,
    InterDomainMixup,
    coral_loss,
    fit_domains,
    irm_penalty,
    leave_one_domain_out,
    random_colour_domain,
    randomize_domain,
    split_domains,
)
from tlcourse.library.models import build_classifier
from tlcourse.library.train import seed_everything


def fake_base(n: int = 120, seed: int = 0) -> Domain:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Domain("fake", x, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


# ------------------------------------------------------------------------------------------------ CORAL
def test_coral_is_zero_for_identical_features():
    f = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert coral_loss(f, f.clone()).item() == pytest.approx(0.0, abs=1e-10)
    # A shift of the mean alone does not change the covariance either.
    assert coral_loss(f, f + 3.0).item() == pytest.approx(0.0, abs=1e-8)


def test_coral_matches_a_hand_computed_case():
    # source covariance [[2, 0], [0, 0]], target [[0, 0], [0, 2]] (unbiased, n - 1 = 1):
    # ||C_s - C_t||_F^2 = 4 + 4 = 8, divided by 4 d^2 = 16.
    source = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    assert coral_loss(source, target).item() == pytest.approx(0.5)


def test_coral_is_differentiable_and_checks_shapes():
    a = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(coral_loss, (a, b))
    with pytest.raises(ValueError, match="same d"):
        coral_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        coral_loss(torch.randn(1, 3), torch.randn(4, 3))


# ------------------------------------------------------------------------------------------- data builders
@pytest.mark.parametrize("build", [rotated_family, style_family, spurious_colour_family])
def test_domain_builders_are_deterministic_per_seed(build):
    base = fake_base(120)
    n = 20
    a, b, c = build(base, n, seed=3), build(base, n, seed=3), build(base, n, seed=4)
    assert list(a) == list(b)
    for name in a:
        assert torch.equal(a[name].x, b[name].x) and torch.equal(a[name].y, b[name].y), name
    assert any(not torch.equal(a[name].x, c[name].x) for name in a), "another seed should give other domains"
    assert torch.equal(base.x, fake_base(120).x), "the base domain must not change"


def test_families_have_the_documented_domains_with_their_own_images():
    base = fake_base(120)
    rot = rotated_family(base, 20, seed=0)
    assert list(rot) == ["rot0", "rot15", "rot30", "rot45", "rot60", "rot75"]
    assert all(d.x.shape == (20, 3, 28, 28) and d.name == name for name, d in rot.items())
    style = style_family(base, 20, seed=0)
    assert list(style) == ["plain", "photo_blend", "colour", "invert", "noise"]
    # Disjoint images: no inverted image is the negative of a plain one.
    plain = style["plain"].x[:, 0].flatten(1)
    recovered = (1 - style["invert"].x[:, 0]).flatten(1)
    assert torch.cdist(plain, recovered).min() > 1e-3
    # rot0 is the plain image; rot15 turns other images.
    assert torch.equal(rot["rot0"].x[:, 0], rot["rot0"].x[:, 1])
    with pytest.raises(ValueError, match="need"):
        rotated_family(base, 30, seed=0)


def test_spurious_family_colour_agrees_with_the_label_as_documented():
    base = fake_base(4000)
    family = spurious_colour_family(base, 1300, seed=0)
    assert list(family) == ["train_90", "train_80", "test_10"]
    for name, expected in (("train_90", 0.9), ("train_80", 0.8), ("test_10", 0.1)):
        d = family[name]
        colour = d.x[:, 1].flatten(1).sum(1) > d.x[:, 0].flatten(1).sum(1)  # green = 1
        assert d.x[:, 2].abs().sum() == 0 and d.x.shape[1:] == (3, 14, 14)
        agreement = (colour.long() == d.y).float().mean().item()
        assert abs(agreement - expected) < 0.04, (name, agreement)
    # The shape (class >= 5) predicts the label 75% of the time: 25% label noise.
    one = colour_by_label(base, 0.5, seed=1, name="x")
    assert abs(((base.y >= 5).long() == one.y).float().mean().item() - 0.75) < 0.03


# ------------------------------------------------------------------------------------------------ IRM
def test_irm_penalty_is_the_squared_derivative_of_the_risk_in_the_scale():
    logits = torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randint(2, (30,), generator=torch.Generator().manual_seed(1))
    eps = 1e-6

    def risk(w):
        return torch.nn.functional.cross_entropy(logits * w, y).item()

    numeric = (risk(1 + eps) - risk(1 - eps)) / (2 * eps)
    assert irm_penalty(logits, y).item() == pytest.approx(numeric**2, rel=1e-5)


# ------------------------------------------------------------------------------------------ augmentations
def test_random_colour_domain_paints_each_image_with_its_own_colours():
    x = fake_base(16).to_rgb().x
    out = random_colour_domain(x, torch.Generator().manual_seed(0))
    again = random_colour_domain(x, torch.Generator().manual_seed(0))
    assert out.shape == (16, 3, 28, 28) and torch.equal(out, again)
    assert out.min() >= 0 and out.max() <= 1
    g = torch.Generator().manual_seed(0)
    fg, bg = torch.rand(16, 3, 1, 1, generator=g), torch.rand(16, 3, 1, 1, generator=g)
    assert torch.allclose(out, bg + (fg - bg) * x.mean(1, keepdim=True))
    assert not torch.allclose(out[0, :, 0, 0], out[1, :, 0, 0]), "every image needs its own colours"


def test_randomize_domain_is_seeded_and_stays_in_range():
    x = fake_base(24).x
    a = randomize_domain(x, torch.Generator().manual_seed(1))
    b = randomize_domain(x, torch.Generator().manual_seed(1))
    assert a.shape == (24, 3, 28, 28) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


# ---------------------------------------------------------------------------------------------- loops
def test_leave_one_domain_out_never_trains_on_the_held_out_domain():
    domains = {name: fake_base(10, seed=i) for i, name in enumerate("abcd")}
    calls = []

    def train_and_test(training, held_out):
        calls.append((list(training), held_out))
        return float(len(training))

    results = leave_one_domain_out(domains, train_and_test)
    assert list(results) == list("abcd") and set(results.values()) == {3.0}
    for (training, held_out), name in zip(calls, "abcd"):
        assert held_out is domains[name]
        assert training == [n for n in "abcd" if n != name]
    with pytest.raises(ValueError, match="at least two"):
        leave_one_domain_out({"a": domains["a"]}, train_and_test)


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
    history = fit_domains(method, train, epochs=2, batch_size=8, val=val, select=True, progress=False,
                          device=torch.device("cpu"))
    assert seen and all(sizes == [8, 8, 8] for sizes in seen)
    assert len(history) == 2 and history.best_epoch in (1, 2) and 0 <= history["val_acc"][0] <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no parameter moved"


def test_fit_domains_select_needs_a_validation_set():
    with pytest.raises(ValueError, match="val="):
        fit_domains(ERM(build_classifier()), [fake_base(16).to_rgb()], select=True, progress=False)


def test_split_domains_pools_validation_parts():
    domains = {n: fake_base(20, seed=i) for i, n in enumerate("ab")}
    train, val = split_domains(domains, 0.25, seed=0)
    assert [len(d) for d in train.values()] == [15, 15] and len(val) == 10
