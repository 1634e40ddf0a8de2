"""Known answers, error messages and statistical properties of tlcourse.library.metrics."""

import math

import numpy as np
import pytest
import torch

from tlcourse.library.metrics import (
    accuracy,
    gaussian_kernel,
    h_score,
    logme,
    logme_evidence,
    median_bandwidth,
    mk_mmd2_unbiased,
    mmd2_unbiased,
    per_class_accuracy,
    proxy_a_distance,
    transferability_h_score,
)


def _mmd2_double_loop(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    """Gretton et al. 2012, eq. 3, written term by term."""

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * sigma**2))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def _mmd2_biased(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    """The V-statistic: keeps the i == j terms, so it is biased upwards."""
    return float(
        gaussian_kernel(x, x, sigma).mean()
        + gaussian_kernel(y, y, sigma).mean()
        - 2 * gaussian_kernel(x, y, sigma).mean()
    )


# ---------------------------------------------------------------- accuracy


def test_accuracy_on_logits_known_answer():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [4.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 2])  # argmax is [0, 1, 2, 0]: 2 of 4 right
    assert accuracy(logits, labels) == pytest.approx(0.5)


def test_accuracy_on_predicted_labels_known_answer():
    assert accuracy(torch.tensor([0, 1, 2, 2, 1]), torch.tensor([0, 1, 2, 1, 0])) == pytest.approx(0.6)
    assert accuracy(torch.tensor([3, 3]), torch.tensor([3, 3])) == 1.0


def test_accuracy_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        accuracy(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        accuracy(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long))


def test_per_class_accuracy_known_answer_with_missing_class():
    labels = torch.tensor([0, 0, 0, 1, 1, 3])  # class 2 never appears
    predictions = torch.tensor([0, 1, 0, 1, 1, 2])
    result = per_class_accuracy(predictions, labels, num_classes=4)
    assert result.shape == (4,)
    assert result[0] == pytest.approx(2 / 3)
    assert result[1] == pytest.approx(1.0)
    assert torch.isnan(result[2])
    assert result[3] == pytest.approx(0.0)


def test_per_class_accuracy_from_logits_matches_labels():
    logits = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 5, (50,), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(per_class_accuracy(logits, labels, 5), per_class_accuracy(logits.argmax(1), labels, 5))


def test_per_class_accuracy_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        per_class_accuracy(torch.tensor([0, 1]), torch.tensor([0, 3]), num_classes=3)


# ---------------------------------------------------------------- kernel and MMD


def test_gaussian_kernel_known_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    # squared distances: [[0, 25], [1, 20]]; sigma = 2 -> exp(-d2 / 8)
    expected = torch.tensor([[1.0, math.exp(-25 / 8)], [math.exp(-1 / 8), math.exp(-20 / 8)]])
    result = gaussian_kernel(x, y, 2.0)
    assert result.shape == (2, 2)
    torch.testing.assert_close(result, expected)


def test_gaussian_kernel_rejects_nonpositive_bandwidth():
    with pytest.raises(ValueError, match="bandwidth"):
        gaussian_kernel(torch.zeros(2, 2), torch.zeros(2, 2), 0.0)


def test_median_bandwidth_known_answer():
    # pooled points 0, 1, 3 on a line: pairwise distances 1, 3, 2 -> median 2
    assert median_bandwidth(torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0]])) == pytest.approx(2.0)


def test_mmd2_unbiased_matches_double_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.5
    for sigma in (0.7, 1.5):
        assert mmd2_unbiased(x, y, sigma).item() == pytest.approx(_mmd2_double_loop(x, y, sigma), abs=1e-12)
    median = median_bandwidth(x, y)
    assert mmd2_unbiased(x, y).item() == pytest.approx(_mmd2_double_loop(x, y, median), abs=1e-12)


def test_mmd2_unbiased_flattens_images():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 1, 3, 3, generator=g), torch.rand(5, 1, 3, 3, generator=g)
    result = mmd2_unbiased(x, y, 1.0)
    assert result.ndim == 0
    torch.testing.assert_close(result, mmd2_unbiased(x.flatten(1), y.flatten(1), 1.0))


def test_mmd2_near_zero_for_same_distribution_and_positive_for_shift():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(500, 5, generator=g), torch.randn(500, 5, generator=g)
    same = mmd2_unbiased(x, y).item()
    shifted = mmd2_unbiased(x, y + 1.0).item()
    assert abs(same) < 0.01
    assert shifted > 0.1


def test_mmd2_unbiased_is_unbiased_where_the_v_statistic_is_not():
    g = torch.Generator().manual_seed(0)
    unbiased, biased = [], []
    for _ in range(2000):
        x, y = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
        unbiased.append(mmd2_unbiased(x, y, 1.0).item())
        biased.append(_mmd2_biased(x, y, 1.0))
    mean_u, mean_v = sum(unbiased) / len(unbiased), sum(biased) / len(biased)
    assert abs(mean_u) < 0.01, mean_u
    assert mean_v > 0.1, mean_v


def test_mmd2_unbiased_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: mmd2_unbiased(a, b, 1.3), (x, y))
    mmd2_unbiased(x, y).backward()  # the median bandwidth is a constant: gradient still flows
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_mmd2_unbiased_clear_errors():
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd2_unbiased(torch.randn(1, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd2_unbiased(torch.randn(4, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"same number of features.*3.*4"):
        mmd2_unbiased(torch.randn(4, 3), torch.randn(4, 4))


# ---------------------------------------------------------------- proxy A-distance


def test_proxy_a_distance_separated_domains_near_two():
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(300, 10, generator=g), torch.randn(200, 10, generator=g) + 5.0
    assert proxy_a_distance(source, target) > 1.9


def test_proxy_a_distance_same_distribution_near_zero():
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(400, 10, generator=g), torch.randn(400, 10, generator=g)
    value = proxy_a_distance(source, target)
    assert abs(value) < 0.3, value


def test_proxy_a_distance_balances_the_domains():
    # same distribution, 4x more source: without balancing, "always source" would score eps = 0.2, d_A = 1.2
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(800, 10, generator=g), torch.randn(200, 10, generator=g)
    value = proxy_a_distance(source, target)
    assert abs(value) < 0.4, value


def test_proxy_a_distance_deterministic_per_seed_and_bounded():
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(120, 1, 4, 4, generator=g), torch.rand(90, 1, 4, 4, generator=g) + 0.2
    values = [proxy_a_distance(source, target, seed=s) for s in (0, 0, 1, 2, 3)]
    assert values[0] == values[1]
    assert len(set(values)) > 1  # other seeds draw other splits
    assert all(-2.0 <= v <= 2.0 for v in values)


def test_proxy_a_distance_errors():
    with pytest.raises(ValueError, match="same number of features"):
        proxy_a_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        proxy_a_distance(torch.randn(1, 3), torch.randn(10, 3))


def test_h_score_by_hand():
    labels = torch.tensor([0, 1, 1, 2, 2, 2])  # 2 = unknown
    predictions = torch.tensor([0, 0, 1, 2, 2, 0])
    # known: 2 of 3 right; unknown: 2 of 3 rejected -> H = 2/3
    assert h_score(predictions, labels, unknown=2) == pytest.approx(2 / 3)
    predictions = torch.tensor([0, 1, 1, 2, 0, 0])  # known 3/3, unknown 1/3 -> 2 * 1 * 1/3 / (4/3) = 1/2
    assert h_score(predictions, labels, unknown=2) == pytest.approx(0.5)


def test_h_score_punishes_both_trivial_answers():
    labels = torch.tensor([0, 1, 2, 2])
    assert h_score(torch.tensor([2, 2, 2, 2]), labels, unknown=2) == 0.0  # all "unknown"
    assert h_score(torch.tensor([0, 1, 0, 1]), labels, unknown=2) == 0.0  # never "unknown"
    with pytest.raises(ValueError, match="unknown"):
        h_score(torch.tensor([0, 1]), torch.tensor([0, 1]), unknown=2)


# ---------------------------------------------------------------- multi-kernel MMD


def test_mk_mmd2_unbiased_is_the_mean_of_the_single_kernel_estimates():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, generator=g), torch.randn(15, 3, generator=g) + 0.5
    assert mk_mmd2_unbiased(x, y, [1.5]).item() == mmd2_unbiased(x, y, 1.5).item()
    expected = (mmd2_unbiased(x, y, 0.5) + mmd2_unbiased(x, y, 2.0)) / 2
    assert mk_mmd2_unbiased(x, y, [0.5, 2.0]).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="at least one bandwidth"):
        mk_mmd2_unbiased(x, y, [])


# ---------------------------------------------------------------- transferability: H-score and LogME


def informative_and_random_features(seed: int = 0, n: int = 120, d: int = 6, classes: int = 3):
    """Labels, features whose first ``classes`` dimensions carry the class, and features that do not."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    informative = torch.randn(n, d, generator=g, dtype=torch.float64)
    informative[:, :classes] += 3 * torch.nn.functional.one_hot(labels, classes)
    return labels, informative, torch.randn(n, d, generator=g, dtype=torch.float64)


def test_transferability_h_score_by_hand_on_one_feature():
    # f = (0, 2, 4, 6), classes (0, 0, 1, 1): mean 3, cov(f) = (9 + 1 + 1 + 9) / 4 = 5; class means 1 and 5,
    # so E[f | y] = (1, 1, 5, 5) with covariance (4 * 4) / 4 = 4: H = 4 / 5. In one dimension the
    # Ledoit-Wolf target is cov(f) itself, no shrinkage: the same score.
    features, labels = torch.tensor([[0.0], [2.0], [4.0], [6.0]]), torch.tensor([0, 0, 1, 1])
    assert transferability_h_score(features, labels) == pytest.approx(0.8)
    assert transferability_h_score(features, labels, shrinkage=True) == pytest.approx(0.8)


def test_transferability_h_score_ignores_the_features_scale():
    labels, f, _ = informative_and_random_features()
    mixing = torch.randn(6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    plain = transferability_h_score(f, labels)
    # Any invertible linear map of the features, for the plain score; a common scale, with shrinkage.
    assert transferability_h_score(f @ mixing + 5.0, labels) == pytest.approx(plain, rel=1e-6)
    shrunk = transferability_h_score(f, labels, shrinkage=True)
    assert transferability_h_score(100 * f, labels, shrinkage=True) == pytest.approx(shrunk, rel=1e-6)


def test_transferability_h_score_prefers_features_that_separate_the_classes():
    labels, informative, random = informative_and_random_features()
    for shrinkage in (False, True):
        good = transferability_h_score(informative, labels, shrinkage=shrinkage)
        bad = transferability_h_score(random, labels, shrinkage=shrinkage)
        assert good > 5 * bad + 0.5
        assert good <= 2 + 1e-9  # at most K - 1 = 2
    with pytest.raises(ValueError, match="at least 2 classes"):
        transferability_h_score(informative, torch.zeros(120, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        transferability_h_score(informative, labels[:10])


def gaussian_log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, C) / n with ``C = I / beta + F F^T / alpha``: the evidence by brute force, weights integrated out."""
    n = len(target)
    covariance = np.eye(n) / beta + features @ features.T / alpha
    _, log_det = np.linalg.slogdet(covariance)
    return float(-0.5 * (n * np.log(2 * np.pi) + log_det + target @ np.linalg.solve(covariance, target)) / n)


@pytest.mark.parametrize("n, d", [(30, 4), (8, 12)])  # more images than features, and fewer
def test_logme_evidence_is_the_marginal_likelihood_at_its_maximum(n, d):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, d))
    # A target the features explain in part (useless features would send alpha to infinity: no interior maximum).
    target = features @ rng.normal(size=d) + 0.5 * rng.normal(size=n)
    evidence, alpha, beta = logme_evidence(features, target)
    assert evidence == pytest.approx(gaussian_log_evidence(features, target, alpha, beta), rel=1e-8)
    # MacKay's fixed point is a maximum of the evidence in alpha and in beta.
    for a, b in ((1.2 * alpha, beta), (alpha / 1.2, beta), (alpha, 1.2 * beta), (alpha, beta / 1.2)):
        assert gaussian_log_evidence(features, target, a, b) < evidence


def test_logme_prefers_informative_features_and_is_finite_and_deterministic():
    labels, informative, random = informative_and_random_features()
    good, bad = logme(informative, labels), logme(random, labels)
    assert math.isfinite(good) and math.isfinite(bad)
    assert good > bad + 0.1
    assert logme(informative, labels) == good
    # One-vs-rest: the score is the mean of the classes' evidences.
    f = informative.numpy()
    per_class = [logme_evidence(f, (labels.numpy() == k).astype(float))[0] for k in range(3)]
    assert good == pytest.approx(float(np.mean(per_class)))


def test_logme_of_all_zero_features_is_the_noise_models_evidence():
    # A network whose ReLUs all died gives zero features: the limit alpha -> infinity (w = 0), not NaN.
    labels = torch.arange(20) % 4  # 5 per class: ||y_k||^2 = 5, beta = 20 / 5
    value = logme(torch.zeros(20, 8), labels)
    assert value == pytest.approx((np.log(4.0) - np.log(2 * np.pi) - 1) / 2)
    assert value < logme(torch.nn.functional.one_hot(labels, 4).double() + 0.1 * torch.randn(20, 4).double(), labels)
