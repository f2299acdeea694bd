"""Guidance (section 4, eqs. (162)-(170)): float64 reference.

The guided-score combinations are generated from `derivations.guidance`; the analytic
Gaussian-mixture classifier (one Gaussian component per class y) is hand-written.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from reference._args import as_float64
from reference._generated.guidance import (  # noqa: F401
    cfg_score,
    classifier_guided_score,
    implicit_classifier_grad,
)
from reference.score import _component_log_probs, _mixture
from udm import register


def _label(y, K: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must be integer class labels, got dtype {y.dtype}")
    if np.any(y < 0) or np.any(y >= K):
        raise ValueError(f"y must lie in 0..{K - 1}")
    return y


@register(163, 164, 165)
def mixture_class_log_prob(*, x, y, weights, means, variances) -> np.ndarray:
    """log p(y | x) of the Bayes classifier of a Gaussian mixture, eqs. (163)-(165).

    Class y is component y: log p(y | x) = log c_y N(x; means_y, variances_y) - log p(x).
    x [..., D], y broadcastable to x[..., 0] -> [...].
    """
    weights, means, variances = _mixture(weights, means, variances)
    x = as_float64("x", x)
    y = _label(y, len(weights))
    logits = np.log(weights) + _component_log_probs(x, means, variances)
    chosen = np.take_along_axis(logits, np.broadcast_to(y, logits.shape[:-1])[..., None], -1)
    return chosen[..., 0] - logsumexp(logits, axis=-1)


@register(163, 165)
def mixture_conditional_score(*, x, y, weights, means, variances) -> np.ndarray:
    """grad log p(x | y) = -(x - means_y) / variances_y (class y is component y), eqs. (163), (165)."""
    weights, means, variances = _mixture(weights, means, variances)
    x = as_float64("x", x)
    y = np.broadcast_to(_label(y, len(weights)), x.shape[:-1])
    return -(x - means[y]) / variances[y]


@register(165, 167)
def mixture_classifier_grad(*, x, y, weights, means, variances) -> np.ndarray:
    """grad log p(y | x) of the mixture classifier, eqs. (165), (167).

    = grad log p(x | y) - grad log p(x): the conditional minus the unconditional score.
    """
    from reference.score import gaussian_mixture_score

    return mixture_conditional_score(
        x=x, y=y, weights=weights, means=means, variances=variances
    ) - gaussian_mixture_score(x=x, weights=weights, means=means, variances=variances)
