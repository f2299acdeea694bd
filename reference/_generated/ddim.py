"""Denoising Diffusion Implicit Models: closed forms generated from derivations/ddim.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['ddim_posterior_mean', 'ddim_variance', 'ddim_step']


@register('ddim.7')
def ddim_posterior_mean(*, x_t, x_0, eta, alpha_t, alpha_bar_prev):
    r"""Mean of DDIM's posterior q_sigma(x_{t-1} | x_t, x_0) with sigma_t = sigma_t(eta) (alpha_t = alpha_bar_t / alpha_bar_{t-1}), ddim.7.

    .. math:: \mu_\sigma(x_t, x_0) = \sqrt{\bar\alpha_{t-1}} x_0 + \frac{\left(- \sqrt{\bar\alpha_{t-1}} \sqrt{\alpha_t} x_0 + x_t\right) \sqrt{- \bar\alpha_{t-1} - \frac{\eta^{2} \left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1} + 1}}{\sqrt{- \bar\alpha_{t-1} \alpha_t + 1}}

    Domains: x_t real, x_0 real, eta in [0, 1], alpha_t in (0, 1), alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.ddim.marginal_preserved``.
    """
    x_t = as_float64("x_t", x_t, "real")
    x_0 = as_float64("x_0", x_0, "real")
    eta = as_float64("eta", eta, "closed_unit")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(x_t=x_t, x_0=x_0, eta=eta, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return numpy.sqrt(alpha_bar_prev)*x_0 + (-numpy.sqrt(alpha_bar_prev)*numpy.sqrt(alpha_t)*x_0 + x_t)*numpy.sqrt(-alpha_bar_prev - eta**2*(1 - alpha_bar_prev)*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1) + 1)/numpy.sqrt(-alpha_bar_prev*alpha_t + 1)


@register('ddim.16')
def ddim_variance(*, eta, alpha_t, alpha_bar_prev):
    r"""DDIM's variance sigma_t(eta)^2 between levels alpha_bar_t = alpha_t alpha_bar_prev and alpha_bar_prev (eta = 1: sigma_q^2, eta = 0: deterministic), ddim.16.

    .. math:: \sigma_t(\eta)^2 = \frac{\eta^{2} \left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1}

    Domains: eta in [0, 1], alpha_t in (0, 1), alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.ddim.eta_family``.
    """
    eta = as_float64("eta", eta, "closed_unit")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(eta=eta, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return eta**2*(1 - alpha_bar_prev)*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1)


@register('ddim.12')
def ddim_step(*, x_0_hat, eps_hat, eps, eta, alpha_t, alpha_bar_prev):
    r"""DDIM's step from alpha_bar_t = alpha_t alpha_bar_prev to alpha_bar_prev, sigma_t = sigma_t(eta), noise eps, ddim.12.

    .. math:: x_{t-1} = \sqrt{\bar\alpha_{t-1}} \hat x_\theta(x_t, t) + \epsilon_0 \eta \sqrt{\frac{\left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1}} + \hat\epsilon_\theta(x_t, t) \sqrt{- \bar\alpha_{t-1} - \frac{\eta^{2} \left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1} + 1}

    Domains: x_0_hat real, eps_hat real, eps real, eta in [0, 1], alpha_t in (0, 1), alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.ddim.sampling_step``.
    """
    x_0_hat = as_float64("x_0_hat", x_0_hat, "real")
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    eps = as_float64("eps", eps, "real")
    eta = as_float64("eta", eta, "closed_unit")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(x_0_hat=x_0_hat, eps_hat=eps_hat, eps=eps, eta=eta, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return numpy.sqrt(alpha_bar_prev)*x_0_hat + eps*eta*numpy.sqrt((1 - alpha_bar_prev)*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1)) + eps_hat*numpy.sqrt(-alpha_bar_prev - eta**2*(1 - alpha_bar_prev)*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1) + 1)
