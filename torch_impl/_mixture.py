"""The Gaussian-mixture oracle of the torch layer: its one source.

p(x) = sum_k w_k N(x; m_k, diag(v_k)) (eq. (159)), and under the VP forward process
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps again a mixture (eq. (160)). Every
mixture formula of `udm.torch_impl.score`, `udm.torch_impl.interpretations` and `udm.torch_impl.guidance`
(log-density, score, component posterior, posterior mean E[x_0 | x_t]) is computed here;
those modules check their arguments and call these kernels. The same names in
`udm.reference._mixture` are the float64 twin (tests/test_mixture.py ties them).

Kernels take checked tensors: x [..., D], weights [K], means [..., K, D] and variances
broadcasting against means (diagonal covariances; leading dims: a per-sample mixture).
"""

from __future__ import annotations

import math

import torch

from udm.torch_impl._tensors import tensor_arg


def check(weights, means, variances):
    """weights [K] (positive, summing to 1), means [K, D], variances [K] or [K, D] (positive)
    as tensors of weights' dtype and device; variances returned as [K, D]."""
    weights = tensor_arg("weights", weights, "positive")
    means = tensor_arg("means", means, like=weights)
    variances = tensor_arg("variances", variances, "positive", like=weights)
    if weights.ndim != 1 or means.ndim != 2 or means.shape[0] != weights.shape[0]:
        raise ValueError(
            f"weights must be [K] and means [K, D]; got {tuple(weights.shape)} and "
            f"{tuple(means.shape)}"
        )
    if variances.shape not in (weights.shape, means.shape):
        raise ValueError(
            f"variances must be [K] or [K, D] like means {tuple(means.shape)}; "
            f"got {tuple(variances.shape)}"
        )
    if abs(float(weights.sum()) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, got {float(weights.sum())!r}")
    if variances.ndim == 1:
        variances = variances[:, None]
    return weights, means, variances.expand_as(means)


def check_batched(weights, means, variances):
    """Positive weights [K] and variances; means [..., K, D] may carry per-sample leading
    dims (a perturbed mixture); variances [..., K] become [..., K, 1]."""
    weights = tensor_arg("weights", weights, "positive")
    means = tensor_arg("means", means, like=weights)
    variances = tensor_arg("variances", variances, "positive", like=weights)
    if variances.ndim == means.ndim - 1:
        variances = variances.unsqueeze(-1)
    return weights, means, variances


def log_joint(x, weights, means, variances) -> torch.Tensor:
    """log w_k + log N(x; m_k, diag(v_k)) per component: [..., K]."""
    d = x.unsqueeze(-2) - means  # [..., K, D]
    log_n = -0.5 * (d**2 / variances + torch.log(2 * math.pi * variances)).sum(-1)
    return torch.log(weights) + log_n


def log_prob(x, weights, means, variances) -> torch.Tensor:
    """log p(x) = logsumexp_k (log w_k + log N(x; m_k, diag(v_k))): [...]."""
    return torch.logsumexp(log_joint(x, weights, means, variances), dim=-1)


def log_posterior(x, weights, means, variances) -> torch.Tensor:
    """log p(k | x), the components' responsibilities in log space (Bayes): [..., K]."""
    return torch.log_softmax(log_joint(x, weights, means, variances), dim=-1)


def component_scores(x, means, variances) -> torch.Tensor:
    """grad log N(x; m_k, diag(v_k)) = -(x - m_k) / v_k per component: [..., K, D]."""
    return -(x.unsqueeze(-2) - means) / variances


def score(x, weights, means, variances) -> torch.Tensor:
    """grad log p(x) = sum_k p(k | x) grad log N(x; m_k, diag(v_k)): [..., D]."""
    r = torch.softmax(log_joint(x, weights, means, variances), dim=-1)
    return (r.unsqueeze(-1) * component_scores(x, means, variances)).sum(-2)


def vp_perturbed(means, variances, alpha_bar_t, one_minus_alpha_bar_t):
    """Components N(m_k, v_k) under the VP process (eq. (160)): N(sqrt(alpha_bar_t) m_k,
    alpha_bar_t v_k + (1 - alpha_bar_t)), a sum of two positive terms. The noise level
    [...] (1 - alpha_bar_t given separately, exact from log-SNR) gives [..., K, D]."""
    ab = alpha_bar_t.reshape(*alpha_bar_t.shape, 1, 1)
    om = one_minus_alpha_bar_t.reshape(*one_minus_alpha_bar_t.shape, 1, 1)
    return ab.sqrt() * means, ab * variances + om


def vp_posterior_mean(x_t, weights, means, variances, alpha_bar_t, one_minus_alpha_bar_t):
    """E[x_0 | x_t] for x_0 from the mixture and x_t from the VP process at alpha_bar_t:
    sum_k p(k | x_t) [m_k + sqrt(alpha_bar_t) v_k / c_k (x_t - sqrt(alpha_bar_t) m_k)] with
    c_k = alpha_bar_t v_k + 1 - alpha_bar_t (per component, the Gaussian posterior mean)."""
    means_t, c = vp_perturbed(means, variances, alpha_bar_t, one_minus_alpha_bar_t)
    r = torch.softmax(log_joint(x_t, weights, means_t, c), dim=-1)  # [..., K]
    sa = alpha_bar_t.sqrt().reshape(*alpha_bar_t.shape, 1, 1)
    comp_mean = means + sa * variances / c * (x_t.unsqueeze(-2) - means_t)  # [..., K, D]
    return (r.unsqueeze(-1) * comp_mean).sum(-2)


def vp_posterior_moments(x_t, weights, means, variances, alpha_bar_t, one_minus_alpha_bar_t):
    """(E[x_0 | x_t], Var(x_0 | x_t) per coordinate) for x_0 from the mixture and x_t from the
    VP process: per component the Gaussian posterior, mean as in `vp_posterior_mean` and
    variance v_k (1 - alpha_bar_t) / c_k; then Var = sum_k p(k | x_t) var_k + sum_k p(k | x_t)
    (mean_k - mean)^2 (a sum of nonnegative terms: no cancellation). [..., D] each."""
    means_t, c = vp_perturbed(means, variances, alpha_bar_t, one_minus_alpha_bar_t)
    r = torch.softmax(log_joint(x_t, weights, means_t, c), dim=-1).unsqueeze(-1)  # [..., K, 1]
    sa = alpha_bar_t.sqrt().reshape(*alpha_bar_t.shape, 1, 1)
    om = one_minus_alpha_bar_t.reshape(*one_minus_alpha_bar_t.shape, 1, 1)
    comp_mean = means + sa * variances / c * (x_t.unsqueeze(-2) - means_t)  # [..., K, D]
    comp_var = variances * om / c
    mean = (r * comp_mean).sum(-2)
    var = (r * comp_var).sum(-2) + (r * (comp_mean - mean.unsqueeze(-2)) ** 2).sum(-2)
    return mean, var
