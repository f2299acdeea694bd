"""Score-based Generative Models: closed forms generated from derivations/score.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['dsm_esm_gap', 'langevin_stationary_var', 'perturbed_var', 'vp_component_mean', 'vp_component_var', 'weighted_dsm_term', 'vp_beta', 'vp_alpha_bar']


@register(157, 161)
def dsm_esm_gap(*, var, sigma):
    r"""Denoising minus explicit score-matching objective for N(mean, var) data perturbed by N(0, sigma^2) (independent of the model), eqs. (157), (161).

    .. math:: J_{\mathrm{DSM}} - J_{\mathrm{ESM}} = - \frac{1}{\sigma^{2} + \sigma^2} + \frac{1}{\sigma^{2}}

    Domains: var > 0, sigma > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.dsm_esm_gap``.
    """
    var = as_float64("var", var, "positive")
    sigma = as_float64("sigma", sigma, "positive")
    check_broadcast(var=var, sigma=sigma)
    return -1/(sigma**2 + var) + sigma**(-2.0)


@register(158)
def langevin_stationary_var(*, var, step_size):
    r"""Stationary variance of Langevin dynamics with step size c < 2 var on the target N(mean, var), eq. (158).

    .. math:: \sigma_\infty^2 = \frac{2 \left(\sigma^2\right)^{2}}{- c + 2 \sigma^2}

    Domains: var > 0, step_size > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.langevin_stationary``.
    """
    var = as_float64("var", var, "positive")
    step_size = as_float64("step_size", step_size, "positive")
    check_broadcast(var=var, step_size=step_size)
    return 2*var**2/(-step_size + 2*var)


@register(160)
def perturbed_var(*, var, sigma):
    r"""Variance of a Gaussian (mixture component) perturbed with N(0, sigma^2), eq. (160).

    .. math:: \mathrm{Var}[x_t] = \sigma^{2} + \sigma^2

    Domains: var > 0, sigma > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.perturbed_laws``.
    """
    var = as_float64("var", var, "positive")
    sigma = as_float64("sigma", sigma, "positive")
    check_broadcast(var=var, sigma=sigma)
    return sigma**2 + var


@register(159, 160)
def vp_component_mean(*, mean, alpha_bar_t):
    r"""Mean of a Gaussian mixture component under the variance-preserving process, eqs. (159), (160).

    .. math:: \mathbb{E}[x_t] = \sqrt{\bar\alpha_t} \mu

    Domains: mean real, alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.perturbed_laws``.
    """
    mean = as_float64("mean", mean, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(mean=mean, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*mean


@register(159, 160)
def vp_component_var(*, var, alpha_bar_t):
    r"""Variance of a Gaussian mixture component under the variance-preserving process, eqs. (159), (160).

    .. math:: \mathrm{Var}[x_t] = \bar\alpha_t \sigma^2 - \bar\alpha_t + 1

    Domains: var > 0, alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.perturbed_laws``.
    """
    var = as_float64("var", var, "positive")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(var=var, alpha_bar_t=alpha_bar_t)
    return alpha_bar_t*var - alpha_bar_t + 1


@register(161)
def weighted_dsm_term(*, score_hat, eps, sigma):
    r"""Per-coordinate term of the sigma^2-weighted denoising objective, eq. (161).

    .. math:: \lambda(\sigma) \lVert s_\theta + \epsilon / \sigma \rVert^2 = \left(\epsilon_0 + s_\theta(x_t, t) \sigma\right)^{2}

    Domains: score_hat real, eps real, sigma > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.noise_weighting``.
    """
    score_hat = as_float64("score_hat", score_hat, "real")
    eps = as_float64("eps", eps, "real")
    sigma = as_float64("sigma", sigma, "positive")
    check_broadcast(score_hat=score_hat, eps=eps, sigma=sigma)
    return (eps + score_hat*sigma)**2


@register(161)
def vp_beta(*, t, beta_min=0.1, beta_max=20.0):
    r"""beta(t) of the VP SDE (its SDE view of eq. (161)), eq. (161).

    .. math:: \beta(t) = \beta_{min} + t \left(\beta_{max} - \beta_{min}\right)

    Domains: t in [0, 1], beta_min > 0, beta_max > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.vp_sde_levels``.
    """
    t = as_float64("t", t, "closed_unit")
    beta_min = as_float64("beta_min", beta_min, "positive")
    beta_max = as_float64("beta_max", beta_max, "positive")
    check_broadcast(t=t, beta_min=beta_min, beta_max=beta_max)
    return beta_min + t*(beta_max - beta_min)


@register(161)
def vp_alpha_bar(*, t, beta_min=0.1, beta_max=20.0):
    r"""alpha_bar(t) of the VP SDE: x_t | x_0 ~ N(sqrt(alpha_bar) x_0, (1 - alpha_bar) I), eq. (161).

    .. math:: \bar\alpha(t) = e^{- \beta_{min} t - \frac{t^{2} \left(\beta_{max} - \beta_{min}\right)}{2}}

    Domains: t in [0, 1], beta_min > 0, beta_max > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.score.vp_sde_levels``.
    """
    t = as_float64("t", t, "closed_unit")
    beta_min = as_float64("beta_min", beta_min, "positive")
    beta_max = as_float64("beta_max", beta_max, "positive")
    check_broadcast(t=t, beta_min=beta_min, beta_max=beta_max)
    return numpy.exp(-beta_min*t - 1/2*t**2*(beta_max - beta_min))
