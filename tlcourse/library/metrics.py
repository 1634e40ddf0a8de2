"""Metrics for transfer learning: accuracy, and how far apart two domains are.

Accuracy tells how well a model does on a domain; the maximum mean discrepancy (MMD) and the proxy
A-distance tell how different two domains look, before or after a feature extractor. The domain
adaptation bound of Ben-David et al. (2007, 2010) links the two: target error <= source error + a
distance between the domains + the error of the best joint hypothesis.

All functions take tensors and return Python floats or tensors on the inputs' device; none of them
changes its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
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
    mean of `mmd2_unbiased` over the ``U`` bandwidths (DAN, Long et al., ICML 2015, eq. 2-3). The
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
