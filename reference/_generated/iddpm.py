"""Improved Denoising Diffusion Probabilistic Models: closed forms generated from derivations/iddpm.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['interpolated_variance']


@register('iddpm.15')
def interpolated_variance(*, v_interp, beta_t, var_q):
    r"""iDDPM's learned reverse variance between sigma_q^2(t) (v = 0) and beta_t (v = 1), iddpm.15.

    .. math:: \Sigma_\theta(x_t, t) = e^{v \log{\left(\beta_t \right)} + \left(1 - v\right) \log{\left(\sigma_q^2 \right)}}

    Domains: v_interp real, beta_t > 0, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.iddpm.interpolated_variance``.
    """
    v_interp = as_float64("v_interp", v_interp, "real")
    beta_t = as_float64("beta_t", beta_t, "positive")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(v_interp=v_interp, beta_t=beta_t, var_q=var_q)
    return numpy.exp(v_interp*numpy.log(beta_t) + (1 - v_interp)*numpy.log(var_q))
