"""Label priors: the target priors of label shift, and resampling a domain to one."""

from __future__ import annotations

import pytest
import torch

from tlcourse.library.data import Domain, dirichlet_prior, knock_out_prior, one_class_prior, resample_to_prior


def labelled_domain(per_class: list[int]) -> Domain:
    """A domain whose image i is the constant i / N, so every drawn image can be told apart."""
    y = torch.cat([torch.full((c,), k, dtype=torch.int64) for k, c in enumerate(per_class)])
    x = torch.arange(len(y), dtype=torch.float32)[:, None, None, None].expand(-1, 1, 2, 2) / len(y)
    return Domain("toy", x.contiguous(), y, tuple(str(k) for k in range(len(per_class))))


def test_priors_are_probability_vectors():
    p = dirichlet_prior(10, alpha=0.5, seed=0)
    assert p.shape == (10,) and (p >= 0).all() and abs(float(p.sum()) - 1) < 1e-9
    assert torch.equal(p, dirichlet_prior(10, alpha=0.5, seed=0))
    assert not torch.equal(p, dirichlet_prior(10, alpha=0.5, seed=1))
    assert dirichlet_prior(10, alpha=1e4, seed=0).sub(0.1).abs().max() < 0.01  # large alpha: near uniform


def test_one_class_and_knock_out_known_answers():
    torch.testing.assert_close(one_class_prior(4, 0, 0.7), torch.tensor([0.7, 0.1, 0.1, 0.1], dtype=torch.float64))
    torch.testing.assert_close(
        knock_out_prior(5, [1, 3]), torch.tensor([1 / 3, 0, 1 / 3, 0, 1 / 3], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="cls"):
        one_class_prior(4, 4, 0.5)
    with pytest.raises(ValueError, match="every class"):
        knock_out_prior(2, [0, 1])


def test_resample_hits_the_prior():
    source = labelled_domain([300] * 4)
    prior = torch.tensor([0.5, 0.3, 0.2, 0.0])
    target = resample_to_prior(source, prior, n=400, seed=0)
    assert target.name == "toy[shifted]" and len(target) == 400
    assert target.class_counts().tolist() == [200, 120, 80, 0]
    ids = torch.round(target.x[:, 0, 0, 0] * len(source)).long()
    assert len(ids.unique()) == 400  # without replacement
    assert torch.equal(source.y[ids], target.y)  # each image keeps its own label
    assert not torch.equal(target.y, target.y.sort().values)  # shuffled, not grouped by class
    assert torch.equal(target.x, resample_to_prior(source, prior, n=400, seed=0).x)
    assert not torch.equal(target.x, resample_to_prior(source, prior, n=400, seed=1).x)


def test_resample_rounds_to_n():
    source = labelled_domain([100] * 3)
    target = resample_to_prior(source, torch.full((3,), 1 / 3), n=100, seed=0)
    assert len(target) == 100 and sorted(target.class_counts().tolist()) == [33, 33, 34]


@pytest.mark.parametrize(
    "prior, message",
    [
        ([0.5, 0.5], "3 classes"),
        ([0.6, 0.6, -0.2], "non-negative"),
        ([0.2, 0.2, 0.2], "sum to 1"),
        ([[0.5, 0.5, 0.0]], "shape"),
    ],
)
def test_bad_priors_are_refused(prior, message):
    with pytest.raises(ValueError, match=message):
        resample_to_prior(labelled_domain([10] * 3), torch.tensor(prior), n=6, seed=0)


def test_too_few_images_needs_replace():
    source = labelled_domain([5, 50])
    prior = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="replace=True"):
        resample_to_prior(source, prior, n=40, seed=0)
    target = resample_to_prior(source, prior, n=40, seed=0, replace=True)
    assert target.class_counts().tolist() == [20, 20]
    ids = torch.round(target.x[:, 0, 0, 0] * len(source)).long()
    assert len(ids[target.y == 1].unique()) == 20  # a class with enough images still draws without replacement
