"""Variational Autoencoders: closed forms generated from derivations/vae.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference import _stable
from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['reconstruction_term', 'kl_standard_normal', 'reparameterize']


@register(19)
def reconstruction_term(*, x_0, w, b, var_x, mean_q, var_q):
    r"""Reconstruction term E_q[log p_theta(x | z)] of the linear-Gaussian decoder, eq. (19).

    .. math:: \mathbb{E}_{q(z|x)}[\log p_\theta(x|z)] = - \frac{\log{\left(2 \pi s^2 \right)}}{2} - \frac{\sigma_q^2 w^{2} + \left(- b - \mu_q w + x_0\right)^{2}}{2 s^2}

    Domains: x_0 real, w real, b real, var_x > 0, mean_q real, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vae.reconstruction_term``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w = as_float64("w", w, "real")
    b = as_float64("b", b, "real")
    var_x = as_float64("var_x", var_x, "positive")
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    return -1/2*numpy.log(2*numpy.pi*var_x) - 1/2*(var_q*w**2 + (-b - mean_q*w + x_0)**2)/var_x


@register(19, 20, 21)
def kl_standard_normal(*, mean_q, var_q):
    r"""Prior-matching KL(N(mean_q, var_q) || N(0, 1)) per latent coordinate (sum over coordinates for a diagonal Gaussian encoder), eqs. (19), (20), (21).

    .. math:: D_{\mathrm{KL}}(\mathcal{N}(\mu, \sigma^2) \| \mathcal{N}(0, 1)) = \frac{\mu_q^{2}}{2} + \frac{\operatorname{expm1mx}\left(\log{\left(\sigma_q^2 \right)}\right)}{2}

    Domains: mean_q real, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vae.prior_matching_kl``.
    """
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(mean_q=mean_q, var_q=var_q)
    return (1/2)*mean_q**2 + (1/2)*_stable.expm1mx(numpy.log(var_q))


@register(20, 22)
def reparameterize(*, mean_q, var_q, eps):
    r"""Reparameterized sample z = mean_q + sqrt(var_q) eps of the encoder, eqs. (20), (22).

    .. math:: z = \epsilon_0 \sqrt{\sigma_q^2} + \mu_q

    Domains: mean_q real, var_q > 0, eps real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vae.reparameterized_sample``.
    """
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    eps = as_float64("eps", eps, "real")
    check_broadcast(mean_q=mean_q, var_q=var_q, eps=eps)
    return eps*numpy.sqrt(var_q) + mean_q
