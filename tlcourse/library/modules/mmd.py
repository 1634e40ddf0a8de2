"""Multi-kernel maximum mean discrepancy (MK-MMD) as a training loss, in linear time (DAN's estimate).

DAN (Long et al., ICML 2015) adds ``MK-MMD^2(features of the source, features of the target)`` to the
source cross-entropy, so that the feature extractor learns features whose two distributions match.
The kernel is a mixture of Gaussian kernels of several bandwidths, ``k = sum_u beta_u k_{sigma_u}``:
one bandwidth sees differences at one scale only, a family of them sees all scales; MMD^2 is linear in
the kernel, so ``MK-MMD^2 = sum_u beta_u MMD^2_u`` (here ``beta_u = 1 / U``, equal weights; DAN learns
them by maximising the test power, which many implementations skip).

The quadratic-time unbiased estimate is chapter 1's `tlcourse.library.metrics.mmd2_unbiased` (one
kernel; `tlcourse.library.metrics.mk_mmd2_unbiased` averages it over bandwidths). A training step
would pay ``O(B^2)`` kernel evaluations for it; DAN uses instead the **linear-time** unbiased estimate
of Gretton et al. (JMLR 2012, section 6), `mk_mmd_linear`, ``O(B)`` per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pairwise_gaussian(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """The multi-kernel ``k(a_i, b_i) = (1/U) sum_u exp(-||a_i - b_i||^2 / (2 sigma_u^2))`` of *paired* rows.

    Row ``i`` of ``a`` meets row ``i`` of ``b`` only (no ``n x m`` matrix).

    Args:
        a, b: ``(n, d)``; bandwidths: the ``U`` values of sigma, each > 0, in the units of the features.

    Returns:
        ``(n,)`` kernel values in (0, 1].
    """
    sq_dist = (a - b).pow(2).sum(1, keepdim=True)  # (n, 1)
    sigmas = torch.as_tensor(list(bandwidths), dtype=a.dtype, device=a.device)  # (U,)
    return torch.exp(-sq_dist / (2 * sigmas**2)).mean(1)


def mk_mmd_linear(source: torch.Tensor, target: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """Linear-time unbiased estimate of MK-MMD^2 (Gretton et al., JMLR 2012, section 6; used by DAN).

    The batch is cut into quad-tuples ``z_i = (s_{2i-1}, s_{2i}, t_{2i-1}, t_{2i})``, ``i = 1 .. n/2``, and

        ``MMD_l^2 = (2 / n) sum_i g(z_i)``,
        ``g(z_i) = k(s_{2i-1}, s_{2i}) + k(t_{2i-1}, t_{2i}) - k(s_{2i-1}, t_{2i}) - k(s_{2i}, t_{2i-1})``.

    Each ``g(z_i)`` has expectation MMD^2, so the mean does too (unbiased), with ``n/2`` independent
    terms (a variance of order ``1/n``, against ``1/n^2`` for the quadratic estimate, for ``O(n)``
    instead of ``O(n^2)`` kernel evaluations). It can be negative; with ``source == target`` every
    ``g`` is exactly 0. Differentiable in both inputs: DAN back-propagates it into the features.

    Args:
        source: ``(n_s, d)`` features; target: ``(n_t, d)``. The first ``n = min(n_s, n_t)`` rows of
            each are used, rounded down to an even number (at least 2).
        bandwidths: the kernels' sigmas (see `pairwise_gaussian`).

    Returns:
        0-dim tensor.
    """
    shapes = (tuple(source.shape), tuple(target.shape))
    if len(shapes[0]) != 2 or len(shapes[1]) != 2 or shapes[0][1] != shapes[1][1]:
        raise ValueError(f"mk_mmd_linear needs two (n, d) features of one d, got {shapes[0]} and {shapes[1]}.")
    n = min(len(source), len(target)) // 2 * 2
    if n < 2:
        raise ValueError(f"mk_mmd_linear needs at least 2 samples per set, got {len(source)} and {len(target)}.")
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError(f"bandwidths must be a non-empty sequence of positive sigmas, got {list(bandwidths)}.")
    s1, s2 = source[0:n:2], source[1:n:2]  # (n/2, d) each
    t1, t2 = target[0:n:2], target[1:n:2]
    g = (
        pairwise_gaussian(s1, s2, bandwidths)
        + pairwise_gaussian(t1, t2, bandwidths)
        - pairwise_gaussian(s1, t2, bandwidths)
        - pairwise_gaussian(s2, t1, bandwidths)
    )
    return g.mean()


def scaled_bandwidths(source: torch.Tensor, target: torch.Tensor, multipliers: Sequence[float]) -> list[float]:
    """A family of sigmas ``sigma_u = m_u * sqrt(mean ||z_i - z_j||^2)`` scaled to the pooled batch.

    Features change scale while they are trained, so fixed sigmas would drift out of range; DAN takes
    its sigmas as multiples of a typical distance between the training features. This one is the root
    mean squared distance between the pooled points, ``2 * total variance`` under the root, computed in
    ``O(n d)`` and without gradient (the sigmas are constants of the loss, not something to learn).

    Args:
        source: ``(n_s, d)``; target: ``(n_t, d)``; multipliers: the ``m_u`` (DAN spans ``2^-8 .. 2^8``
            in steps of ``sqrt(2)``; a few powers of 2 around 1 do for small features).

    Returns:
        the ``U`` sigmas, floats (1.0 each times ``m_u`` when all points coincide).
    """
    with torch.no_grad():
        z = torch.cat([source, target]).double()
        mean_sq_dist = 2 * z.var(0, unbiased=False).sum().item()  # mean over all pairs of ||z_i - z_j||^2
    scale = mean_sq_dist**0.5 if mean_sq_dist > 0 else 1.0
    return [m * scale for m in multipliers]
