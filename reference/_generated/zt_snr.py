"""Common Diffusion Noise Schedules and Sample Steps are Flawed: closed forms generated from derivations/zt_snr.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['zero_terminal_snr_sqrt_alpha_bar']


@register('zt_snr.1')
def zero_terminal_snr_sqrt_alpha_bar(*, sqrt_alpha_bar_t, sqrt_alpha_bar_1, sqrt_alpha_bar_T):
    r"""sqrt(alpha_bar_t) rescaled to zero terminal SNR (needs sqrt_alpha_bar_1 > sqrt_alpha_bar_T), zt_snr.1.

    .. math:: \sqrt{\bar\alpha_t}' = \frac{\sqrt{\bar\alpha_1} \left(- \sqrt{\bar\alpha_T} + \sqrt{\bar\alpha_t}\right)}{\sqrt{\bar\alpha_1} - \sqrt{\bar\alpha_T}}

    Domains: sqrt_alpha_bar_t in (0, 1), sqrt_alpha_bar_1 in (0, 1), sqrt_alpha_bar_T in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.zt_snr.rescale_endpoints``.
    """
    sqrt_alpha_bar_t = as_float64("sqrt_alpha_bar_t", sqrt_alpha_bar_t, "open_unit")
    sqrt_alpha_bar_1 = as_float64("sqrt_alpha_bar_1", sqrt_alpha_bar_1, "open_unit")
    sqrt_alpha_bar_T = as_float64("sqrt_alpha_bar_T", sqrt_alpha_bar_T, "open_unit")
    check_broadcast(sqrt_alpha_bar_t=sqrt_alpha_bar_t, sqrt_alpha_bar_1=sqrt_alpha_bar_1, sqrt_alpha_bar_T=sqrt_alpha_bar_T)
    return sqrt_alpha_bar_1*(-sqrt_alpha_bar_T + sqrt_alpha_bar_t)/(sqrt_alpha_bar_1 - sqrt_alpha_bar_T)
