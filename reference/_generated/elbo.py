"""Evidence Lower Bound: closed forms generated from derivations/elbo.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference import _stable
from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['log_evidence', 'posterior_mean', 'posterior_var', 'elbo', 'kl_to_posterior']


@register(1)
def log_evidence(*, x_0, w, b, var_x):
    r"""Exact log-evidence log p(x) of the linear-Gaussian latent model, eq. (1).

    .. math:: \log p(x) = - \frac{\left(- b + x_0\right)^{2}}{2 s^2 + 2 w^{2}} - \frac{\log{\left(2 \pi \left(s^2 + w^{2}\right) \right)}}{2}

    Domains: x_0 real, w real, b real, var_x > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.elbo.evidence_marginal``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w = as_float64("w", w, "real")
    b = as_float64("b", b, "real")
    var_x = as_float64("var_x", var_x, "positive")
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x)
    return -(-b + x_0)**2/(2*var_x + 2*w**2) - 1/2*numpy.log(2*numpy.pi*(var_x + w**2))


@register(2)
def posterior_mean(*, x_0, w, b, var_x):
    r"""Mean of the true posterior p(z | x) of the linear-Gaussian latent model, eq. (2).

    .. math:: \mathbb{E}[z \mid x] = \frac{w \left(- b + x_0\right)}{s^2 + w^{2}}

    Domains: x_0 real, w real, b real, var_x > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.elbo.true_posterior``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w = as_float64("w", w, "real")
    b = as_float64("b", b, "real")
    var_x = as_float64("var_x", var_x, "positive")
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x)
    return w*(-b + x_0)/(var_x + w**2)


@register(2)
def posterior_var(*, w, var_x):
    r"""Variance of the true posterior p(z | x) of the linear-Gaussian latent model, eq. (2).

    .. math:: \mathrm{Var}[z \mid x] = \frac{s^2}{s^2 + w^{2}}

    Domains: w real, var_x > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.elbo.true_posterior``.
    """
    w = as_float64("w", w, "real")
    var_x = as_float64("var_x", var_x, "positive")
    check_broadcast(w=w, var_x=var_x)
    return var_x/(var_x + w**2)


@register(3)
def elbo(*, x_0, w, b, var_x, mean_q, var_q):
    r"""ELBO of the linear-Gaussian latent model for q(z | x) = N(mean_q, var_q), eq. (3).

    .. math:: \mathbb{E}_{q(z|x)}\left[\log\frac{p(x, z)}{q(z|x)}\right] = - \frac{\mu_q^{2}}{2} - \frac{\sigma_q^2}{2} + \frac{\log{\left(\sigma_q^2 \right)}}{2} - \frac{\log{\left(2 \pi s^2 \right)}}{2} + \frac{1}{2} - \frac{\sigma_q^2 w^{2} + \left(- b - \mu_q w + x_0\right)^{2}}{2 s^2}

    Domains: x_0 real, w real, b real, var_x > 0, mean_q real, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.elbo.elbo_closed_form``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w = as_float64("w", w, "real")
    b = as_float64("b", b, "real")
    var_x = as_float64("var_x", var_x, "positive")
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    return -1/2*mean_q**2 - 1/2*var_q + (1/2)*numpy.log(var_q) - 1/2*numpy.log(2*numpy.pi*var_x) + 1/2 - 1/2*(var_q*w**2 + (-b - mean_q*w + x_0)**2)/var_x


@register(15, 16)
def kl_to_posterior(*, x_0, w, b, var_x, mean_q, var_q):
    r"""KL(q(z | x) || p(z | x)) of the linear-Gaussian latent model, q(z | x) = N(mean_q, var_q), eqs. (15), (16).

    .. math:: D_{\mathrm{KL}}(q(z|x) \| p(z|x)) = \frac{\operatorname{expm1mx}\left(\log\frac{\sigma_q^2}{\frac{s^2}{s^2 + w^{2}}}\right)}{2} + \frac{\left(\mu_q - \frac{w \left(- b + x_0\right)}{s^2 + w^{2}}\right)^{2} \left(s^2 + w^{2}\right)}{2 s^2}

    Domains: x_0 real, w real, b real, var_x > 0, mean_q real, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.elbo.kl_to_posterior``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w = as_float64("w", w, "real")
    b = as_float64("b", b, "real")
    var_x = as_float64("var_x", var_x, "positive")
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    return (1/2)*_stable.expm1mx(_stable.log_ratio(var_q, var_x/(var_x + w**2))) + (1/2)*(mean_q - w*(-b + x_0)/(var_x + w**2))**2*(var_x + w**2)/var_x
