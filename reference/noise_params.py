"""Learning diffusion noise parameters (section 2.2, eqs. (101)-(114)): float64 reference.

The closed forms are generated from `udm.derivations.noise_params` into
`udm.reference._generated.noise_params` and re-exported here. Hand-written below: the exact
continuous-time diffusion loss of the optimal denoiser for Gaussian data (the oracle of
VDM's invariance to the schedule's shape).
"""

from __future__ import annotations

import numpy as np

from udm import register
from udm.reference._args import as_float64, check_broadcast
from udm.reference._generated.noise_params import (  # noqa: F401
    alpha_bar_from_omega,
    omega_from_alpha_bar,
    one_minus_alpha_bar_from_omega,
    snr,
    snr_from_omega,
    x0_loss_weight_from_alpha_bars,
    x0_loss_weight_snr,
)


def __getattr__(name: str):
    # removed: eq. (99)'s one weight is x_0_loss_weight, in the notation's spelling
    moved = {
        "x0_loss_weight": "udm.reference.vdm.x_0_loss_weight (alpha_t, alpha_bar_t, alpha_bar_prev)"
    }
    why = f"was removed: use {moved[name]}" if name in moved else "does not exist"
    raise AttributeError(f"{__name__}.{name} {why}")


@register(110, 111)
def optimal_continuous_loss_gaussian(*, omega_min, omega_max, data_var):
    r"""Continuous-time diffusion loss of the optimal denoiser for N(0, data_var) data, eqs. (110), (111).

    Per coordinate, with SNR = exp(-omega) (eq. (111)) and the continuous limit of the
    weights of eq. (110): L = (1/2) int_0^1 omega'(t) E||eps - eps_hat*||^2 dt, and the
    minimum mean squared error of eps given x_t is data_var SNR / (1 + data_var SNR), so

    .. math:: L = \tfrac12\left[\log(1 + \sigma_0^2 e^{-\omega_{\min}})
              - \log(1 + \sigma_0^2 e^{-\omega_{\max}})\right]

    whatever the schedule's shape between the endpoints. Computed with log1p / logaddexp.
    Domains: omega_min, omega_max real (omega_min < omega_max), data_var > 0.
    """
    omega_min = as_float64("omega_min", omega_min, "real")
    omega_max = as_float64("omega_max", omega_max, "real")
    data_var = as_float64("data_var", data_var, "positive")
    check_broadcast(omega_min=omega_min, omega_max=omega_max, data_var=data_var)
    if np.any(omega_min >= omega_max):
        raise ValueError("omega_min must be < omega_max (SNR decreases from t = 0 to t = 1)")
    log_v = np.log(data_var)
    # log(1 + v exp(-w)) = logaddexp(0, log v - w): no overflow at w -> -oo
    return 0.5 * (np.logaddexp(0.0, log_v - omega_min) - np.logaddexp(0.0, log_v - omega_max))
