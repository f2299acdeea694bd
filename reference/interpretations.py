"""Three equivalent interpretations (section 2.3, eqs. (115)-(151)): float64 reference.

The conversions between x_0, eps, score and v predictions, the means of p_theta and the three
losses are generated from `udm.derivations.interpretations` and re-exported here. Hand-written
below: the exact score and posterior mean E[x_0 | x_t] for Gaussian-mixture data (x_t is again
a Gaussian mixture), the oracle for Tweedie's formula (eqs. (131)-(133)) and the optimal
denoiser.
"""

from __future__ import annotations

from udm import register
from udm.reference import _mixture
from udm.reference._args import as_float64
from udm.reference._generated.interpretations import (  # noqa: F401
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


def _mixture_args(x_t, weights, means, variances, alpha_bar_t):
    """Checked arrays: x_t [..., D], weights [K] (sum 1), means [K, D], variances [K] -> [K, D]."""
    x_t = as_float64("x_t", x_t, "real")
    weights = as_float64("weights", weights, "positive")
    means = as_float64("means", means, "real")
    variances = as_float64("variances", variances, "positive")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    if weights.ndim != 1 or means.ndim != 2 or variances.shape != weights.shape:
        raise ValueError("weights [K], means [K, D] and variances [K] must agree in K")
    if means.shape[0] != weights.shape[0] or x_t.shape[-1:] != means.shape[1:]:
        raise ValueError(f"x_t [..., D] and means [K, D] disagree: {x_t.shape}, {means.shape}")
    return (x_t, *_mixture.check(weights, means, variances), alpha_bar_t)


@register(131)
def gaussian_mixture_log_prob(*, x_t, weights, means, variances, alpha_bar_t):
    r"""log p(x_t) for data x_0 ~ sum_k w_k N(m_k, v_k I), eq. (131)'s p(x_t).

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps is again a mixture:
    p(x_t) = sum_k w_k N(sqrt(alpha_bar_t) m_k, (alpha_bar_t v_k + 1 - alpha_bar_t) I), summed
    with logsumexp (`udm.reference._mixture`). Shapes: x_t [..., D]; weights [K] (sum 1); means
    [K, D]; variances [K]; alpha_bar_t in (0, 1], shape broadcasting against x_t[..., 0].
    Returns [...].
    """
    x_t, weights, means, variances, ab = _mixture_args(x_t, weights, means, variances, alpha_bar_t)
    return _mixture.log_prob(x_t, weights, *_mixture.vp_perturbed(means, variances, ab))


@register(131)
def gaussian_mixture_score(*, x_t, weights, means, variances, alpha_bar_t):
    r"""Exact score grad log p(x_t) for Gaussian-mixture data, eq. (131).

    :math:`\nabla\log p(x_t) = -\sum_k r_k(x_t)\,(x_t - \sqrt{\bar\alpha_t} m_k) / c_k` with
    responsibilities r_k = softmax_k(log w_k + log N_k) (logsumexp) and c_k = alpha_bar_t v_k +
    1 - alpha_bar_t. Shapes as `gaussian_mixture_log_prob`; returns [..., D].
    """
    x_t, weights, means, variances, ab = _mixture_args(x_t, weights, means, variances, alpha_bar_t)
    return _mixture.score(x_t, weights, *_mixture.vp_perturbed(means, variances, ab))


@register(131, 132)
def gaussian_mixture_posterior_mean(*, x_t, weights, means, variances, alpha_bar_t):
    r"""Exact E[x_0 | x_t] for Gaussian-mixture data: the optimal x_0 denoiser, eqs. (131), (132).

    Per component the posterior is Gaussian with mean m_k + sqrt(alpha_bar_t) v_k / c_k
    (x_t - sqrt(alpha_bar_t) m_k); the mixture posterior weights them by r_k(x_t).
    Shapes as `gaussian_mixture_log_prob`; returns [..., D].
    """
    x_t, weights, means, variances, ab = _mixture_args(x_t, weights, means, variances, alpha_bar_t)
    return _mixture.vp_posterior_mean(x_t, weights, means, variances, ab)
