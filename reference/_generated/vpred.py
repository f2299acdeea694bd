"""Progressive Distillation for Fast Sampling of Diffusion Models: closed forms generated from derivations/vpred.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['v_target', 'v_loss_weight_x0', 'v_loss_weight_eps']


@register('v.pred')
def v_target(*, x_0, eps, alpha_bar_t):
    r"""The v-prediction target from the clean sample and the noise, v.pred.

    .. math:: v = \sqrt{\bar\alpha_t} \epsilon_0 - x_0 \sqrt{1 - \bar\alpha_t}

    Domains: x_0 real, eps real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vpred.v_definition``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    eps = as_float64("eps", eps, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_0=x_0, eps=eps, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*eps - x_0*numpy.sqrt(1 - alpha_bar_t)


@register('v.loss')
def v_loss_weight_x0(*, alpha_bar_t):
    r"""Weight of ||x_0 - x_0_hat||^2 that equals the v loss: 1 + SNR(t), v.loss.

    .. math:: \frac{\lVert v - \hat v\rVert^2}{\lVert x_0 - \hat x_\theta\rVert^2} = \frac{1}{1 - \bar\alpha_t}

    Domains: alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vpred.v_loss_as_x0_loss``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return (1 - alpha_bar_t)**(-1.0)


@register('v.loss')
def v_loss_weight_eps(*, alpha_bar_t):
    r"""Weight of ||eps - eps_hat||^2 that equals the v loss: 1 / alpha_bar_t, v.loss.

    .. math:: \frac{\lVert v - \hat v\rVert^2}{\lVert \epsilon - \hat\epsilon_\theta\rVert^2} = \frac{1}{\bar\alpha_t}

    Domains: alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vpred.v_loss_as_eps_loss``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return alpha_bar_t**(-1.0)
