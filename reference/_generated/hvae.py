"""Hierarchical Variational Autoencoders: closed forms generated from derivations/hvae.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['log_evidence', 'hvae_elbo', 'posterior_kl']


@register(25)
def log_evidence(*, x_0, w_1, b_1, var_1, w_2, b_2, var_2):
    r"""Exact log-evidence log p(x) of the two-level linear-Gaussian HVAE, eq. (25).

    .. math:: \log p(x) = - \frac{\log{\left(2 \pi \left(var_{1} + w_{1}^{2} \left(var_{2} + w_{2}^{2}\right)\right) \right)}}{2} - \frac{\left(- b_{1} - b_{2} w_{1} + x_0\right)^{2}}{2 var_{1} + 2 w_{1}^{2} \left(var_{2} + w_{2}^{2}\right)}

    Domains: x_0 real, w_1 real, b_1 real, var_1 > 0, w_2 real, b_2 real, var_2 > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.hvae.hvae_log_evidence``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w_1 = as_float64("w_1", w_1, "real")
    b_1 = as_float64("b_1", b_1, "real")
    var_1 = as_float64("var_1", var_1, "positive")
    w_2 = as_float64("w_2", w_2, "real")
    b_2 = as_float64("b_2", b_2, "real")
    var_2 = as_float64("var_2", var_2, "positive")
    check_broadcast(x_0=x_0, w_1=w_1, b_1=b_1, var_1=var_1, w_2=w_2, b_2=b_2, var_2=var_2)
    return -1/2*numpy.log(2*numpy.pi*(var_1 + w_1**2*(var_2 + w_2**2))) - (-b_1 - b_2*w_1 + x_0)**2/(2*var_1 + 2*w_1**2*(var_2 + w_2**2))


@register(28, 29)
def hvae_elbo(*, x_0, w_1, b_1, var_1, w_2, b_2, var_2, mean_q1, var_q1, a_2, c_2, var_q2):
    r"""ELBO of the two-level linear-Gaussian Markovian HVAE, eqs. (28), (29).

    .. math:: \mathbb{E}_{q(z_{1:2}|x)}\left[\log\frac{p(x, z_{1:2})}{q(z_{1:2}|x)}\right] = - \frac{a_{2}^{2} var_{q1}}{2} - \frac{var_{q2}}{2} - \frac{\left(a_{2} mean_{q1} + c_{2}\right)^{2}}{2} - \frac{\log{\left(2 \pi var_{1} \right)}}{2} - \frac{\log{\left(2 \pi var_{2} \right)}}{2} + \frac{\log{\left(2 e \pi var_{q1} \right)}}{2} + \frac{\log{\left(2 e \pi var_{q2} \right)}}{2} - \frac{\log{\left(2 \pi \right)}}{2} - \frac{var_{q1} \left(- a_{2} w_{2} + 1\right)^{2} + var_{q2} w_{2}^{2} + \left(- b_{2} - c_{2} w_{2} + mean_{q1} \left(- a_{2} w_{2} + 1\right)\right)^{2}}{2 var_{2}} - \frac{var_{q1} w_{1}^{2} + \left(- b_{1} - mean_{q1} w_{1} + x_0\right)^{2}}{2 var_{1}}

    Domains: x_0 real, w_1 real, b_1 real, var_1 > 0, w_2 real, b_2 real, var_2 > 0, mean_q1 real, var_q1 > 0, a_2 real, c_2 real, var_q2 > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.hvae.hvae_elbo_markov``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w_1 = as_float64("w_1", w_1, "real")
    b_1 = as_float64("b_1", b_1, "real")
    var_1 = as_float64("var_1", var_1, "positive")
    w_2 = as_float64("w_2", w_2, "real")
    b_2 = as_float64("b_2", b_2, "real")
    var_2 = as_float64("var_2", var_2, "positive")
    mean_q1 = as_float64("mean_q1", mean_q1, "real")
    var_q1 = as_float64("var_q1", var_q1, "positive")
    a_2 = as_float64("a_2", a_2, "real")
    c_2 = as_float64("c_2", c_2, "real")
    var_q2 = as_float64("var_q2", var_q2, "positive")
    check_broadcast(x_0=x_0, w_1=w_1, b_1=b_1, var_1=var_1, w_2=w_2, b_2=b_2, var_2=var_2, mean_q1=mean_q1, var_q1=var_q1, a_2=a_2, c_2=c_2, var_q2=var_q2)
    return -1/2*a_2**2*var_q1 - 1/2*var_q2 - 1/2*(a_2*mean_q1 + c_2)**2 - 1/2*numpy.log(2*numpy.pi*var_1) - 1/2*numpy.log(2*numpy.pi*var_2) + (1/2)*numpy.log(2*numpy.e*numpy.pi*var_q1) + (1/2)*numpy.log(2*numpy.e*numpy.pi*var_q2) - 1/2*numpy.log(2*numpy.pi) - 1/2*(var_q1*(-a_2*w_2 + 1)**2 + var_q2*w_2**2 + (-b_2 - c_2*w_2 + mean_q1*(-a_2*w_2 + 1))**2)/var_2 - 1/2*(var_q1*w_1**2 + (-b_1 - mean_q1*w_1 + x_0)**2)/var_1


@register(28)
def posterior_kl(*, x_0, w_1, b_1, var_1, w_2, b_2, var_2, mean_q1, var_q1, a_2, c_2, var_q2):
    r"""KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)), the gap of the HVAE ELBO, eq. (28).

    .. math:: D_{\mathrm{KL}}(q(z_{1:2}|x) \| p(z_{1:2}|x)) = - \frac{a_{2} var_{q1} w_{2}}{var_{2}} + \frac{b_{2} w_{2} \left(a_{2} mean_{q1} + c_{2}\right)}{var_{2}} + \frac{mean_{q1} \left(mean_{q1} \left(\frac{1}{var_{2}} + \frac{w_{1}^{2}}{var_{1}}\right) - \frac{w_{2} \left(a_{2} mean_{q1} + c_{2}\right)}{var_{2}}\right)}{2} - mean_{q1} \left(- \frac{b_{1} w_{1}}{var_{1}} + \frac{b_{2}}{var_{2}} + \frac{w_{1} x_0}{var_{1}}\right) + \frac{var_{q1} \left(\frac{1}{var_{2}} + \frac{w_{1}^{2}}{var_{1}}\right)}{2} + \frac{\left(1 + \frac{w_{2}^{2}}{var_{2}}\right) \left(a_{2}^{2} var_{q1} + var_{q2}\right)}{2} + \frac{\left(a_{2} mean_{q1} + c_{2}\right) \left(- \frac{mean_{q1} w_{2}}{var_{2}} + \left(1 + \frac{w_{2}^{2}}{var_{2}}\right) \left(a_{2} mean_{q1} + c_{2}\right)\right)}{2} + \frac{\log{\left(var_{1} \right)}}{2} + \frac{\log{\left(var_{2} \right)}}{2} - \frac{\log{\left(var_{q1} \right)}}{2} - \frac{\log{\left(var_{q2} \right)}}{2} - \frac{\log{\left(var_{1} + w_{1}^{2} \left(var_{2} + w_{2}^{2}\right) \right)}}{2} - 1 + \frac{b_{1}^{2} var_{2}^{2} w_{1}^{2} + b_{1}^{2} var_{2} w_{1}^{2} w_{2}^{2} - 2 b_{1} b_{2} var_{1} var_{2} w_{1} - 2 b_{1} var_{2}^{2} w_{1}^{2} x_0 - 2 b_{1} var_{2} w_{1}^{2} w_{2}^{2} x_0 + b_{2}^{2} var_{1}^{2} + b_{2}^{2} var_{1} w_{1}^{2} w_{2}^{2} + 2 b_{2} var_{1} var_{2} w_{1} x_0 + var_{2}^{2} w_{1}^{2} x_0^{2} + var_{2} w_{1}^{2} w_{2}^{2} x_0^{2}}{2 \left(var_{1}^{2} var_{2} + var_{1} var_{2}^{2} w_{1}^{2} + var_{1} var_{2} w_{1}^{2} w_{2}^{2}\right)}

    Domains: x_0 real, w_1 real, b_1 real, var_1 > 0, w_2 real, b_2 real, var_2 > 0, mean_q1 real, var_q1 > 0, a_2 real, c_2 real, var_q2 > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.hvae.hvae_posterior_kl``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    w_1 = as_float64("w_1", w_1, "real")
    b_1 = as_float64("b_1", b_1, "real")
    var_1 = as_float64("var_1", var_1, "positive")
    w_2 = as_float64("w_2", w_2, "real")
    b_2 = as_float64("b_2", b_2, "real")
    var_2 = as_float64("var_2", var_2, "positive")
    mean_q1 = as_float64("mean_q1", mean_q1, "real")
    var_q1 = as_float64("var_q1", var_q1, "positive")
    a_2 = as_float64("a_2", a_2, "real")
    c_2 = as_float64("c_2", c_2, "real")
    var_q2 = as_float64("var_q2", var_q2, "positive")
    check_broadcast(x_0=x_0, w_1=w_1, b_1=b_1, var_1=var_1, w_2=w_2, b_2=b_2, var_2=var_2, mean_q1=mean_q1, var_q1=var_q1, a_2=a_2, c_2=c_2, var_q2=var_q2)
    return -a_2*var_q1*w_2/var_2 + b_2*w_2*(a_2*mean_q1 + c_2)/var_2 + (1/2)*mean_q1*(mean_q1*(var_2**(-1.0) + w_1**2/var_1) - w_2*(a_2*mean_q1 + c_2)/var_2) - mean_q1*(-b_1*w_1/var_1 + b_2/var_2 + w_1*x_0/var_1) + (1/2)*var_q1*(var_2**(-1.0) + w_1**2/var_1) + (1/2)*(1 + w_2**2/var_2)*(a_2**2*var_q1 + var_q2) + (1/2)*(a_2*mean_q1 + c_2)*(-mean_q1*w_2/var_2 + (1 + w_2**2/var_2)*(a_2*mean_q1 + c_2)) + (1/2)*numpy.log(var_1) + (1/2)*numpy.log(var_2) - 1/2*numpy.log(var_q1) - 1/2*numpy.log(var_q2) - 1/2*numpy.log(var_1 + w_1**2*(var_2 + w_2**2)) - 1 + (1/2)*(b_1**2*var_2**2*w_1**2 + b_1**2*var_2*w_1**2*w_2**2 - 2*b_1*b_2*var_1*var_2*w_1 - 2*b_1*var_2**2*w_1**2*x_0 - 2*b_1*var_2*w_1**2*w_2**2*x_0 + b_2**2*var_1**2 + b_2**2*var_1*w_1**2*w_2**2 + 2*b_2*var_1*var_2*w_1*x_0 + var_2**2*w_1**2*x_0**2 + var_2*w_1**2*w_2**2*x_0**2)/(var_1**2*var_2 + var_1*var_2**2*w_1**2 + var_1*var_2*w_1**2*w_2**2)
