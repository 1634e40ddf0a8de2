"""Metrics for transfer learning: accuracy, how far apart two domains are, and how transferable features are.

Accuracy tells how well a model does on a domain; the maximum mean discrepancy (MMD) and the proxy
A-distance tell how different two domains look, before or after a feature extractor. The domain
adaptation bound of Ben-David et al. (2007, 2010) links the two: target error <= source error + a
distance between the domains + the error of the best joint hypothesis.

Transferability scores (`transferability_h_score`, `logme`) rank pre-trained feature extractors for a
labelled target task *before* any fine-tuning: each scores how well the frozen features of the target
images explain their labels, in one pass and without training a network.

All functions take tensors and return Python floats or tensors on the inputs' device; none of them
changes its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor


def _predicted_labels(outputs: Tensor, labels: Tensor) -> Tensor:
    """Class predictions ``(N,)`` from logits ``(N, K)`` or from predicted labels ``(N,)``."""
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}.")
    predictions = outputs.argmax(dim=1) if outputs.ndim == 2 else outputs
    if predictions.shape != labels.shape:
        raise ValueError(
            f"outputs of shape {tuple(outputs.shape)} do not match labels of shape {tuple(labels.shape)}: "
            "pass logits of shape (N, K) or predicted labels of shape (N,), with N = len(labels)."
        )
    return predictions


def accuracy(outputs: Tensor, labels: Tensor) -> float:
    """Fraction of correct predictions, in [0, 1].

    ``accuracy = (1/N) sum_i [yhat_i == y_i]`` with ``yhat_i = argmax_k outputs[i, k]``.

    Args:
        outputs: logits or scores ``(N, K)``, or predicted labels ``(N,)``.
        labels: true labels ``(N,)``, integers in ``[0, K)``.
    """
    predictions = _predicted_labels(outputs, labels)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined: got 0 labels.")
    return (predictions == labels).float().mean().item()


def per_class_accuracy(outputs: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Accuracy on the examples of each class (the recall of each class).

    ``acc_k = |{i : yhat_i = y_i = k}| / |{i : y_i = k}|``; NaN for a class that has no example in
    ``labels``. Their mean over classes is the balanced accuracy, the fair score under label shift.

    Args:
        outputs: logits ``(N, K)`` or predicted labels ``(N,)``.
        labels: true labels ``(N,)`` in ``[0, num_classes)``.
        num_classes: K.

    Returns:
        float tensor of shape ``(num_classes,)``.
    """
    predictions = _predicted_labels(outputs, labels)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}].")
    correct = (predictions == labels).double()
    hits = torch.bincount(labels, weights=correct, minlength=num_classes)
    counts = torch.bincount(labels, minlength=num_classes).double()
    return (hits / counts).float()  # 0 / 0 = NaN marks an absent class


def gaussian_kernel(x: Tensor, y: Tensor, bandwidth: float | Tensor) -> Tensor:
    """Gaussian (RBF) kernel matrix ``K[i, j] = exp(-||x_i - y_j||^2 / (2 sigma^2))``.

    Args:
        x: ``(n, d)``; y: ``(m, d)``.
        bandwidth: sigma > 0, in the units of the features.

    Returns:
        ``(n, m)`` kernel values in (0, 1].
    """
    if float(bandwidth) <= 0:
        raise ValueError(f"bandwidth must be positive, got {float(bandwidth)}.")
    # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b; rounding can make it slightly negative, hence the clamp.
    sq_dist = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2 * x @ y.T
    return torch.exp(-sq_dist.clamp_min(0) / (2 * bandwidth**2))


def median_bandwidth(x: Tensor, y: Tensor) -> float:
    """The median heuristic: sigma = median of ``||z_i - z_j||`` over pairs i != j of the pooled sample.

    Gretton et al. (2012, JMLR, section 8) use it as a default. Computed without gradient. Falls back to
    1.0 when at least half of the pairs coincide (a median distance of 0 would divide by zero).

    Args:
        x: ``(n, ...)``; y: ``(m, ...)``; each sample is flattened.
    """
    with torch.no_grad():
        z = torch.cat([x.reshape(len(x), -1), y.reshape(len(y), -1)]).double()
        distances = torch.cdist(z, z)
        off_diagonal = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
        median = distances[off_diagonal].median().item()
    return median if median > 0 else 1.0


def mmd2_unbiased(x: Tensor, y: Tensor, bandwidth: float | None = None) -> Tensor:
    """Unbiased estimate of the squared maximum mean discrepancy with a Gaussian kernel k.

    Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, eq. (3):

        MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(mn) sum_{i, j} k(x_i, y_j)

    Leaving out the i = j terms removes the bias, so the estimate can be slightly negative when both
    samples come from the same distribution. Differentiable in x and y: usable as a training loss.

    Args:
        x: ``(m, ...)`` samples of the source, m >= 2; y: ``(n, ...)`` of the target, n >= 2.
            Each sample is flattened to a vector; both must have the same number of features.
        bandwidth: sigma of the kernel; None uses ``median_bandwidth(x, y)``.

    Returns:
        0-dim tensor.
    """
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 samples per set, got {len(x)} and {len(y)}.")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features, got {x.shape[1]} and {y.shape[1]}.")
    sigma = median_bandwidth(x, y) if bandwidth is None else bandwidth
    k_xx, k_yy, k_xy = (gaussian_kernel(a, b, sigma) for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return (
        (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
        + (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
        - 2 * k_xy.mean()
    )


def mk_mmd2_unbiased(x: Tensor, y: Tensor, bandwidths: Sequence[float]) -> Tensor:
    """Quadratic-time unbiased estimate of the multi-kernel MMD^2, with equal weights on the kernels.

    ``MK-MMD^2 = (1/U) sum_u MMD_u^2``: MMD^2 is linear in the kernel, so the mixture's estimate is the
    mean of `mmd2_unbiased` over the ``U`` bandwidths (DAN, Long et al., ICML 2015). The
    linear-time estimate that DAN trains with is `tlcourse.library.modules.mk_mmd_linear`; this one has
    a smaller variance and costs ``O(n^2)`` kernel evaluations per bandwidth.

    Args:
        x: ``(m, d)``, m >= 2; y: ``(n, d)``, n >= 2; bandwidths: the sigmas, each > 0.

    Returns:
        0-dim tensor, differentiable in x and y.
    """
    if not bandwidths:
        raise ValueError("mk_mmd2_unbiased needs at least one bandwidth.")
    return torch.stack([mmd2_unbiased(x, y, float(sigma)) for sigma in bandwidths]).mean()


def proxy_a_distance(source: Tensor, target: Tensor, seed: int = 0, test_fraction: float = 0.5) -> float:
    """Proxy A-distance ``d_A = 2 (1 - 2 eps)`` between two domains, in [-2, 2].

    eps is the held-out error of a linear classifier trained to tell source from target samples
    (Ben-David et al., NIPS 2007; Ganin et al., JMLR 2016, section 5.1.5). The two domains are balanced
    first, so chance is eps = 0.5 and d_A = 0: indistinguishable domains give about 0, linearly
    separable ones about 2.

    Args:
        source: ``(n_s, ...)`` features or images; target: ``(n_t, ...)``; each sample is flattened.
        seed: fixes the balancing subsample and the train / test split.
        test_fraction: share of the balanced samples held out to measure eps.
    """
    xs = source.detach().reshape(len(source), -1).cpu().double().numpy()
    xt = target.detach().reshape(len(target), -1).cpu().double().numpy()
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(
            f"source and target must have the same number of features, got {xs.shape[1]} and {xt.shape[1]}."
        )
    n = min(len(xs), len(xt))
    if n < 2:
        raise ValueError(f"proxy_a_distance needs at least 2 samples per domain, got {len(xs)} and {len(xt)}.")
    rng = np.random.default_rng(seed)  # subsample the larger domain so that both have n samples
    features = np.concatenate([rng.permutation(xs)[:n], rng.permutation(xt)[:n]])
    is_target = np.repeat([0, 1], n)
    x_train, x_test, d_train, d_test = train_test_split(
        features, is_target, test_size=test_fraction, stratify=is_target, random_state=seed
    )
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    eps = 1.0 - classifier.fit(x_train, d_train).score(x_test, d_test)
    return 2.0 * (1.0 - 2.0 * eps)


def h_score(predictions: Tensor, labels: Tensor, unknown: int) -> float:
    """H-score of open-set / universal adaptation: the harmonic mean of known and unknown accuracy.

    ``acc_known`` is the accuracy on the images whose label is a known class (``label != unknown``);
    ``acc_unknown`` is the fraction of the images labelled ``unknown`` that are predicted ``unknown``.
    ``H = 2 acc_known acc_unknown / (acc_known + acc_unknown)`` (Fu et al., ECCV 2020), 0 when both
    are 0. Unlike plain accuracy, it is low unless a method does *both* jobs: calling every image
    "unknown", or never saying "unknown", both score 0.

    Args:
        predictions: predicted labels ``(N,)`` (or logits ``(N, K + 1)``), ``unknown`` for "unknown".
        labels: true labels ``(N,)``, with every unknown class mapped to ``unknown``.
        unknown: the label index that stands for "unknown".
    """
    predictions = _predicted_labels(predictions, labels)
    is_unknown = labels == unknown
    if is_unknown.all() or not is_unknown.any():
        raise ValueError("h_score needs images of known classes and images labelled unknown in `labels`.")
    acc_known = (predictions[~is_unknown] == labels[~is_unknown]).double().mean().item()
    acc_unknown = (predictions[is_unknown] == unknown).double().mean().item()
    if acc_known + acc_unknown == 0:
        return 0.0
    return 2 * acc_known * acc_unknown / (acc_known + acc_unknown)


# ------------------------------------------------------------------------------ transferability scores
def _features_and_labels(features: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float64 features and ``(n,)`` integer labels as numpy arrays, checked."""
    f = features.detach().reshape(len(features), -1).cpu().double().numpy()
    y = labels.detach().cpu().numpy()
    if y.ndim != 1 or len(y) != len(f):
        raise ValueError(f"labels must have shape ({len(f)},) to match the features, got {tuple(labels.shape)}.")
    if len(np.unique(y)) < 2:
        raise ValueError("a transferability score needs labels of at least 2 classes.")
    return f, y


def transferability_h_score(features: Tensor, labels: Tensor, shrinkage: bool = False) -> float:
    """The H-score of features for a classification task (Bao et al., ICIP 2019), higher is better.

    ``H(f) = tr(cov(f)^-1 cov(E[f | y]))``: the variance of the features *between* the classes, measured
    in units of their total variance (a multi-class Fisher ratio). Bao et al. derive it from the
    asymptotic error of deciding the label from ``f``, so it ranks feature extractors for a target task
    without training any. Invariant to any invertible linear map of the features; at most
    ``min(d, K - 1)``, for K classes.

    ``cov(f)`` is inverted: with many features and few images its sample estimate is ill-conditioned, and
    the score is then mostly noise. ``shrinkage=True`` uses the Ledoit-Wolf estimate
    ``cov_a = (1 - a) cov(f) + a mu I`` (scikit-learn's `LedoitWolf`, with ``a`` chosen in closed form)
    and scores ``tr(cov_a^-1 (1 - a) cov(E[f | y]))``, the regularised H-score of Ibrahim, Ponomareva &
    Mazumder ("Newer is not always better: rethinking transferability metrics", 2022).

    Not `h_score`, chapter 4's harmonic mean of known and unknown accuracy in open-set adaptation: the
    two share a name in the literature and nothing else.

    Args:
        features: ``(n, d)`` features of the target images (each row flattened); labels: ``(n,)`` classes.
        shrinkage: use the Ledoit-Wolf estimate of ``cov(f)``.

    Returns:
        the score, a float >= 0 (dimensionless).
    """
    f, y = _features_and_labels(features, labels)
    f = f - f.mean(0)
    class_means = np.zeros_like(f)  # row i: the mean feature of i's class, E[f | y_i]
    for k in np.unique(y):
        class_means[y == k] = f[y == k].mean(0)
    between = class_means.T @ class_means / len(f)  # cov(E[f | y]): its mean is 0, as f's is
    if shrinkage:
        estimator = LedoitWolf(assume_centered=True, store_precision=False).fit(f)
        covariance, between = estimator.covariance_, (1 - estimator.shrinkage_) * between
    else:
        covariance = f.T @ f / len(f)
    return float(np.trace(np.linalg.pinv(covariance, rcond=1e-15, hermitian=True) @ between))


def logme_evidence(
    features: np.ndarray | Tensor, target: np.ndarray | Tensor, max_iter: int = 100, tol: float = 1e-6
) -> tuple[float, float, float]:
    """LogME for one regression target: maximise the evidence of a Bayesian linear model over alpha, beta.

    The model (You et al., ICML 2021): ``y = F w + noise``, ``w ~ N(0, alpha^-1 I_d)``,
    ``noise ~ N(0, beta^-1 I_n)``. Its evidence (marginal likelihood) is

        ``log p(y | F, alpha, beta) = n/2 log beta + d/2 log alpha - n/2 log 2 pi
                                      - beta/2 ||F m - y||^2 - alpha/2 ||m||^2 - 1/2 log det A``,

    with ``A = alpha I + beta F^T F`` and the posterior mean ``m = beta A^-1 F^T y``. MacKay's fixed point
    (the paper's Algorithm 1) maximises it: with ``s_i`` the eigenvalues of ``F^T F``,
    ``gamma = sum_i beta s_i / (alpha + beta s_i)`` (the number of well-determined directions),
    ``alpha <- gamma / ||m||^2`` and ``beta <- (n - gamma) / ||F m - y||^2``, until alpha / beta settles.
    One SVD of ``F`` makes each iteration ``O(n d)``.

    Args:
        features: ``(n, d)``; target: ``(n,)`` (arrays or CPU tensors; computed in float64).
        max_iter: the most fixed-point iterations; tol: the relative change of alpha / beta that stops them.

    Returns:
        ``(evidence / n, alpha, beta)`` at the fixed point.
    """
    features, target = np.asarray(features, dtype=np.float64), np.asarray(target, dtype=np.float64)
    n, d = features.shape
    u, sigma, vt = np.linalg.svd(features, full_matrices=False)  # F = U diag(sigma) V^T, r = min(n, d)
    if not sigma.any():  # features all zero (a network whose ReLUs all died): only the noise model is left,
        # alpha -> infinity and w = 0, where the evidence tends to n/2 (log beta - log 2 pi - 1), beta = n / ||y||^2
        beta = n / max(float(target @ target), 1e-12)
        return float((np.log(beta) - np.log(2 * np.pi) - 1) / 2), float("inf"), beta
    s = sigma**2  # the nonzero eigenvalues of F^T F (and zeros)
    projected = u.T @ target  # (r,): y in the basis of F's left singular vectors
    alpha, beta = 1.0, 1.0

    def posterior(alpha: float, beta: float) -> tuple[float, float]:
        """``||m||^2`` and ``||F m - y||^2`` for the posterior mean ``m = beta A^-1 F^T y``, ``(d,)``."""
        m = vt.T @ (beta * sigma * projected / (alpha + beta * s))
        return float(m @ m), float(((features @ m - target) ** 2).sum())

    for _ in range(max_iter):
        m_sq, residual = posterior(alpha, beta)
        gamma = float((beta * s / (alpha + beta * s)).sum())
        new_alpha, new_beta = gamma / max(m_sq, 1e-12), (n - gamma) / max(residual, 1e-12)
        settled = abs(new_alpha / new_beta - alpha / beta) <= tol * alpha / beta
        alpha, beta = new_alpha, new_beta
        if settled:
            break
    m_sq, residual = posterior(alpha, beta)
    # log det A: the r eigenvalues alpha + beta s_i, and d - r more equal to alpha.
    log_det = np.log(alpha + beta * s).sum() + (d - len(s)) * np.log(alpha)
    evidence = (
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * residual
        - alpha / 2 * m_sq
        - log_det / 2
    )
    return float(evidence / n), alpha, beta


def logme(features: Tensor, labels: Tensor) -> float:
    """LogME, the log of the maximum evidence of a linear model on the features (You et al., ICML 2021).

    How well a *Bayesian* linear model on the frozen features explains the labels: for each class k the
    one-vs-rest target ``y_k = [y == k]`` (``(n,)``, 0 or 1) gets its evidence maximised over the prior
    precision alpha and the noise precision beta (`logme_evidence`), and LogME is the mean over classes
    of ``evidence / n``. Integrating over the weights, rather than fitting them, is what keeps it from
    rewarding features that merely allow overfitting: no validation split, no hyperparameter, and
    deterministic. Higher is better; a log-likelihood per image (nats), often negative.

    Args:
        features: ``(n, d)`` features of the target images (each row flattened); labels: ``(n,)`` classes.
    """
    matrix, y = _features_and_labels(features, labels)
    return float(np.mean([logme_evidence(matrix, (y == k).astype(np.float64))[0] for k in np.unique(y)]))
