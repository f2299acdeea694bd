"""The Gaussian-mixture oracle of the reference layer: its one NumPy source.

p(x) = sum_k w_k N(x; m_k, diag(v_k)) (eq. (159)), and under the VP forward process
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps again a mixture (eq. (160)). Every
mixture formula of `udm.reference.score`, `udm.reference.interpretations` and `udm.reference.guidance`
(log-density, score, component posterior, posterior mean E[x_0 | x_t]) is computed here;
those modules check their arguments and call these kernels. `udm.torch_impl._mixture` is the
torch twin (tests/test_mixture.py ties the two, and this one to scipy.stats and to finite
differences).

Kernels take checked float64 arrays: x [..., D], weights [K], means [..., K, D] and
variances broadcasting against means (diagonal covariances; [K, 1] for isotropic ones).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from udm.reference._args import as_float64
from udm.reference._generated.score import vp_component_mean, vp_component_var


def check(weights, means, variances):
    """weights [K] (positive, summing to 1), means [K, D], variances [K] or [K, D] (positive)
    as float64 arrays; variances returned as [K, D]."""
    weights = as_float64("weights", weights, "positive")
    means = as_float64("means", means)
    variances = as_float64("variances", variances, "positive")
    if weights.ndim != 1 or means.ndim != 2 or means.shape[0] != weights.shape[0]:
        raise ValueError(
            f"weights must be [K] and means [K, D]; got {weights.shape} and {means.shape}"
        )
    if variances.shape not in (weights.shape, means.shape):
        raise ValueError(
            f"variances must be [K] or [K, D] like means {means.shape}; got {variances.shape}"
        )
    if abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, got {weights.sum()!r}")
    if variances.ndim == 1:
        variances = variances[:, None]
    return weights, means, np.broadcast_to(variances, means.shape)


def log_joint(x, weights, means, variances) -> np.ndarray:
    """log w_k + log N(x; m_k, diag(v_k)) per component: [..., K]."""
    d = x[..., None, :] - means  # [..., K, D]
    log_n = -0.5 * np.sum(d**2 / variances + np.log(2 * np.pi * variances), axis=-1)
    return np.log(weights) + log_n


def log_prob(x, weights, means, variances) -> np.ndarray:
    """log p(x) = logsumexp_k (log w_k + log N(x; m_k, diag(v_k))): [...]."""
    return logsumexp(log_joint(x, weights, means, variances), axis=-1)


def log_posterior(x, weights, means, variances) -> np.ndarray:
    """log p(k | x), the components' responsibilities in log space (Bayes): [..., K]."""
    lj = log_joint(x, weights, means, variances)
    return lj - logsumexp(lj, axis=-1, keepdims=True)


def component_scores(x, means, variances) -> np.ndarray:
    """grad log N(x; m_k, diag(v_k)) = -(x - m_k) / v_k per component: [..., K, D]."""
    return -(x[..., None, :] - means) / variances


def score(x, weights, means, variances) -> np.ndarray:
    """grad log p(x) = sum_k p(k | x) grad log N(x; m_k, diag(v_k)): [..., D]."""
    r = np.exp(log_posterior(x, weights, means, variances))
    return np.sum(r[..., None] * component_scores(x, means, variances), axis=-2)


def vp_perturbed(means, variances, alpha_bar_t):
    """Components N(m_k, v_k) under the VP process at alpha_bar_t (eq. (160)):
    N(sqrt(alpha_bar_t) m_k, alpha_bar_t v_k + 1 - alpha_bar_t), by the generated
    `vp_component_mean` / `vp_component_var`. alpha_bar_t [...] gives [..., K, D]."""
    ab = np.asarray(alpha_bar_t)[..., None, None]
    return vp_component_mean(mean=means, alpha_bar_t=ab), vp_component_var(
        var=variances, alpha_bar_t=ab
    )


def vp_posterior_mean(x_t, weights, means, variances, alpha_bar_t) -> np.ndarray:
    """E[x_0 | x_t] for x_0 from the mixture and x_t from the VP process at alpha_bar_t:
    sum_k p(k | x_t) [m_k + sqrt(alpha_bar_t) v_k / c_k (x_t - sqrt(alpha_bar_t) m_k)] with
    c_k = alpha_bar_t v_k + 1 - alpha_bar_t (per component, the Gaussian posterior mean)."""
    means_t, c = vp_perturbed(means, variances, alpha_bar_t)
    r = np.exp(log_posterior(x_t, weights, means_t, c))  # [..., K]
    sa = np.sqrt(np.asarray(alpha_bar_t))[..., None, None]
    comp_mean = means + sa * variances / c * (x_t[..., None, :] - means_t)  # [..., K, D]
    return np.sum(r[..., None] * comp_mean, axis=-2)
