"""Three equivalent interpretations (section 2.3, eqs. (115)-(151)): float64 reference.

The conversions between x_0, eps, score and v predictions, the means of p_theta and the three
losses are generated from `derivations.interpretations` and re-exported here. Hand-written
below: the exact score and posterior mean E[x_0 | x_t] for Gaussian-mixture data (x_t is again
a Gaussian mixture), the oracle for Tweedie's formula (eqs. (131)-(133)) and the optimal
denoiser.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from reference._args import as_float64
from reference._generated.interpretations import (  # noqa: F401
    eps_from_score,
    eps_from_v,
    eps_from_x_0,
    eps_loss,
    eps_loss_weight,
    mu_theta_from_eps,
    mu_theta_from_score,
    score_from_eps,
    score_from_v,
    score_from_x_0,
    score_loss,
    score_loss_weight,
    tweedie_mean,
    v_from_eps,
    v_from_score,
    v_from_x_0,
    x0_loss,
    x_0_from_eps,
    x_0_from_score,
    x_0_from_v,
)
from udm import register


def _mixture_terms(x_t, weights, means, variances, alpha_bar_t):
    """Validated arrays and, per component k, log(w_k N(x_t; a m_k, c_k I)), x_t - a m_k, c_k."""
    x_t = as_float64("x_t", x_t, "real")
    weights = as_float64("weights", weights, "positive")
    means = as_float64("means", means, "real")
    variances = as_float64("variances", variances, "positive")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    if weights.ndim != 1 or means.ndim != 2 or variances.shape != weights.shape:
        raise ValueError("weights [K], means [K, D] and variances [K] must agree in K")
    if means.shape[0] != weights.shape[0] or x_t.shape[-1:] != means.shape[1:]:
        raise ValueError(f"x_t [..., D] and means [K, D] disagree: {x_t.shape}, {means.shape}")
    if not np.isclose(weights.sum(), 1.0, rtol=1e-9, atol=0):
        raise ValueError("weights must sum to 1")
    a = np.sqrt(alpha_bar_t)[..., None, None]  # [..., 1, 1]
    ab = alpha_bar_t[..., None]  # [..., 1]
    c = ab * variances + (1 - ab)  # [..., K]: a^2 v_k + 1 - alpha_bar, two positive terms
    diff = x_t[..., None, :] - a * means  # [..., K, D]
    d = means.shape[1]
    log_comp = (
        np.log(weights) - 0.5 * d * np.log(2 * np.pi * c) - 0.5 * np.sum(diff**2, axis=-1) / c
    )
    return log_comp, diff, c, a, variances, means


@register(131)
def gaussian_mixture_log_prob(*, x_t, weights, means, variances, alpha_bar_t):
    r"""log p(x_t) for data x_0 ~ sum_k w_k N(m_k, v_k I), eq. (131)'s p(x_t).

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps is again a mixture:
    p(x_t) = sum_k w_k N(sqrt(alpha_bar_t) m_k, (alpha_bar_t v_k + 1 - alpha_bar_t) I), summed
    with logsumexp. Shapes: x_t [..., D]; weights [K] (sum 1); means [K, D]; variances [K];
    alpha_bar_t in (0, 1], shape broadcasting against x_t[..., 0]. Returns [...].
    """
    log_comp, *_ = _mixture_terms(x_t, weights, means, variances, alpha_bar_t)
    return logsumexp(log_comp, axis=-1)


@register(131)
def gaussian_mixture_score(*, x_t, weights, means, variances, alpha_bar_t):
    r"""Exact score grad log p(x_t) for Gaussian-mixture data, eq. (131).

    :math:`\nabla\log p(x_t) = -\sum_k r_k(x_t)\,(x_t - \sqrt{\bar\alpha_t} m_k) / c_k` with
    responsibilities r_k = softmax_k(log w_k + log N_k) (logsumexp) and c_k = alpha_bar_t v_k +
    1 - alpha_bar_t. Shapes as `gaussian_mixture_log_prob`; returns [..., D].
    """
    log_comp, diff, c, *_ = _mixture_terms(x_t, weights, means, variances, alpha_bar_t)
    r = np.exp(log_comp - logsumexp(log_comp, axis=-1, keepdims=True))
    return -np.sum((r / c)[..., None] * diff, axis=-2)


@register(131, 132)
def gaussian_mixture_posterior_mean(*, x_t, weights, means, variances, alpha_bar_t):
    r"""Exact E[x_0 | x_t] for Gaussian-mixture data: the optimal x_0 denoiser, eqs. (131), (132).

    Per component the posterior is Gaussian with mean m_k + sqrt(alpha_bar_t) v_k / c_k
    (x_t - sqrt(alpha_bar_t) m_k); the mixture posterior weights them by r_k(x_t).
    Shapes as `gaussian_mixture_log_prob`; returns [..., D].
    """
    log_comp, diff, c, a, variances, means = _mixture_terms(
        x_t, weights, means, variances, alpha_bar_t
    )
    r = np.exp(log_comp - logsumexp(log_comp, axis=-1, keepdims=True))
    comp_mean = means + (a[..., 0] * variances / c)[..., None] * diff  # [..., K, D]
    return np.sum(r[..., None] * comp_mean, axis=-2)
