"""Guidance (section 4, eqs. (162)-(170)): float64 reference.

The guided-score combinations are generated from `udm.derivations.guidance`; the analytic
Gaussian-mixture classifier (one Gaussian component per class y) is hand-written.
"""

from __future__ import annotations

import numpy as np

from udm import register
from udm.reference import _mixture
from udm.reference._args import as_float64
from udm.reference._generated.guidance import (  # noqa: F401
    cfg_score,
    classifier_guided_score,
    implicit_classifier_grad,
)


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
    weights, means, variances = _mixture.check(weights, means, variances)
    x = as_float64("x", x)
    y = _label(y, len(weights))
    log_post = _mixture.log_posterior(x, weights, means, variances)  # [..., K]
    y = np.broadcast_to(y, log_post.shape[:-1])[..., None]
    return np.take_along_axis(log_post, y, axis=-1)[..., 0]


@register(163, 165)
def mixture_conditional_score(*, x, y, weights, means, variances) -> np.ndarray:
    """grad log p(x | y) = -(x - means_y) / variances_y (class y is component y), eqs. (163), (165)."""
    weights, means, variances = _mixture.check(weights, means, variances)
    x = as_float64("x", x)
    y = np.broadcast_to(_label(y, len(weights)), x.shape[:-1])
    components = _mixture.component_scores(x, means, variances)  # [..., K, D]
    return np.take_along_axis(components, y[..., None, None], axis=-2)[..., 0, :]


@register(165, 167)
def mixture_classifier_grad(*, x, y, weights, means, variances) -> np.ndarray:
    """grad log p(y | x) of the mixture classifier, eqs. (165), (167).

    = grad log p(x | y) - grad log p(x): the conditional minus the unconditional score.
    """
    cond = mixture_conditional_score(x=x, y=y, weights=weights, means=means, variances=variances)
    weights, means, variances = _mixture.check(weights, means, variances)
    return cond - _mixture.score(as_float64("x", x), weights, means, variances)
