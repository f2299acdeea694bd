"""Learning Diffusion Noise Parameters: closed forms generated from derivations/noise_params.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['x0_loss_weight_from_alpha_bars', 'x0_loss_weight_snr', 'snr', 'alpha_bar_from_omega', 'snr_from_omega', 'omega_from_alpha_bar', 'one_minus_alpha_bar_from_omega']


@register(108)
def x0_loss_weight_from_alpha_bars(*, alpha_bar_prev, alpha_bar_t):
    r"""The same weight as half the drop of SNR = alpha_bar / (1 - alpha_bar) from step t - 1 to step t, the right side, eq. (108).

    .. math:: \frac{1}{2}\left(\frac{\bar\alpha_{t-1}}{1-\bar\alpha_{t-1}} - \frac{\bar\alpha_t}{1-\bar\alpha_t}\right) = \frac{\bar\alpha_{t-1}}{2 \left(1 - \bar\alpha_{t-1}\right)} - \frac{\bar\alpha_t}{2 \left(1 - \bar\alpha_t\right)}

    Domains: alpha_bar_prev in (0, 1), alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.x0_weight_as_snr_drop``.
    """
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(alpha_bar_prev=alpha_bar_prev, alpha_bar_t=alpha_bar_t)
    return (1/2)*alpha_bar_prev/(1 - alpha_bar_prev) - 1/2*alpha_bar_t/(1 - alpha_bar_t)


@register(110)
def x0_loss_weight_snr(*, snr_s, snr_t):
    r"""The same weight as half the SNR drop from s = t - 1 to t, eq. (110).

    .. math:: \frac{1}{2}(\mathrm{SNR}(t-1) - \mathrm{SNR}(t)) = \frac{\mathrm{SNR}(s)}{2} - \frac{\mathrm{SNR}(t)}{2}

    Domains: snr_s > 0, snr_t > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.x0_weight_as_snr_drop``.
    """
    snr_s = as_float64("snr_s", snr_s, "positive")
    snr_t = as_float64("snr_t", snr_t, "positive")
    check_broadcast(snr_s=snr_s, snr_t=snr_t)
    return (1/2)*snr_s - 1/2*snr_t


@register(109)
def snr(*, alpha_bar_t):
    r"""Signal-to-noise ratio of q(x_t | x_0), eq. (109).

    .. math:: \mathrm{SNR}(t) = \frac{\bar\alpha_t}{1 - \bar\alpha_t}

    Domains: alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.snr_definition``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return alpha_bar_t/(1 - alpha_bar_t)


@register(113)
def alpha_bar_from_omega(*, omega):
    r"""alpha_bar_t = sigmoid(-omega), eq. (113).

    .. math:: \bar\alpha_t = \frac{1}{e^{\omega_\eta(t)} + 1}

    Domains: omega real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.alpha_bar_from_omega``.
    """
    omega = as_float64("omega", omega, "real")
    check_broadcast(omega=omega)
    return (numpy.exp(omega) + 1)**(-1.0)


@register(111)
def snr_from_omega(*, omega):
    r"""SNR(t) from the monotone network's output omega_eta(t), eq. (111).

    .. math:: \mathrm{SNR}(t) = e^{- \omega_\eta(t)}

    Domains: omega real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.omega_definition``.
    """
    omega = as_float64("omega", omega, "real")
    check_broadcast(omega=omega)
    return numpy.exp(-omega)


@register(111, 112)
def omega_from_alpha_bar(*, alpha_bar_t):
    r"""omega = -log SNR(t) from alpha_bar_t (the inverse of eq. (113)), eqs. (111), (112).

    .. math:: \omega_\eta(t) = \log{\left(\frac{1 - \bar\alpha_t}{\bar\alpha_t} \right)}

    Domains: alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.omega_from_alpha_bar``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return numpy.log((1 - alpha_bar_t)/alpha_bar_t)


@register(114)
def one_minus_alpha_bar_from_omega(*, omega):
    r"""1 - alpha_bar_t = sigmoid(omega), eq. (114).

    .. math:: 1 - \bar\alpha_t = \frac{1}{1 + e^{- \omega_\eta(t)}}

    Domains: omega real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.noise_params.one_minus_alpha_bar_from_omega``.
    """
    omega = as_float64("omega", omega, "real")
    check_broadcast(omega=omega)
    return (1 + numpy.exp(-omega))**(-1.0)
