"""Variational Diffusion Models: closed forms generated from derivations/vdm.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['q_mean', 'q_var', 'q_sample', 'kl_normal']


@register(70)
def q_mean(*, x_0, alpha_bar_t):
    r"""Mean of q(x_t | x_0), eq. (70).

    .. math:: \mathbb{E}[x_t \mid x_0] = \sqrt{\bar\alpha_t} x_0

    Domains: x_0 real, alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``derivations.vdm.forward_marginal``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*x_0


@register(70)
def q_var(*, alpha_bar_t):
    r"""Variance of q(x_t | x_0) (per coordinate), eq. (70).

    .. math:: \mathrm{Var}[x_t \mid x_0] = 1 - \bar\alpha_t

    Domains: alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``derivations.vdm.forward_marginal``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return 1 - alpha_bar_t


@register(69)
def q_sample(*, x_0, alpha_bar_t, eps):
    r"""Reparameterized sample of q(x_t | x_0) from standard normal noise eps, eq. (69).

    .. math:: x_t = \sqrt{\bar\alpha_t} x_0 + \epsilon_0 \sqrt{1 - \bar\alpha_t}

    Domains: x_0 real, alpha_bar_t in (0, 1], eps real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``derivations.vdm.forward_marginal``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    eps = as_float64("eps", eps, "real")
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    return numpy.sqrt(alpha_bar_t)*x_0 + eps*numpy.sqrt(1 - alpha_bar_t)


@register(86)
def kl_normal(*, mean_q, var_q, mean_p, var_p):
    r"""KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate (sum over coordinates for a diagonal covariance), eq. (86).

    .. math:: D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_p, \sigma_p^2)) = \frac{\log{\left(\frac{\sigma_p^2}{\sigma_q^2} \right)}}{2} - \frac{1}{2} + \frac{\sigma_q^2 + \left(- \mu_p + \mu_q\right)^{2}}{2 \sigma_p^2}

    Domains: mean_q real, var_q > 0, mean_p real, var_p > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``derivations.vdm.gaussian_kl``.
    """
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    mean_p = as_float64("mean_p", mean_p, "real")
    var_p = as_float64("var_p", var_p, "positive")
    check_broadcast(mean_q=mean_q, var_q=var_q, mean_p=mean_p, var_p=var_p)
    return (1/2)*numpy.log(var_p/var_q) - 1/2 + (1/2)*(var_q + (-mean_p + mean_q)**2)/var_p
