"""Samplers, float64 NumPy reference: the timestep grids and the DDIM step in their simplest
form (the torch layer, torch_impl/sampling.py, is tested against these).

The DDIM step is the closed form generated from `udm.derivations.ddim.sampling_step` (ddim.12),
called with alpha_t = alpha_bar_t / alpha_bar_s; the grid is written with Python's exact
fractions where the definition is exact, and with NumPy's float64 operations where diffusers'
definition is a float computation.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from udm import register
from udm.reference._args import as_float64, check_broadcast
from udm.reference._generated.ddim import ddim_step as _ddim_step


@register("zt_snr.spacing")
def timestep_grid(T: int, k: int, spacing: str = "linspace") -> np.ndarray:
    """0-based timesteps, noisiest first, as diffusers computes them (zt_snr.spacing).

    linspace: np.linspace(0, T - 1, k) rounded half to even; leading: i (T // k);
    trailing: round(T + i d) - 1 with d = (T - T / k) - T, i = 0..k-1 (np.arange's values,
    without the extra -1 that np.arange(T, 0, -T / k) adds for some k).
    """
    if not (isinstance(T, int) and isinstance(k, int) and 1 <= k <= T):
        raise ValueError(f"need integers 1 <= k <= T, got T = {T!r}, k = {k!r}")
    if spacing == "linspace":
        grid = np.linspace(0, T - 1, k).round()
    elif spacing == "leading":
        grid = np.arange(k) * (T // k)
    elif spacing == "trailing":
        return (np.round(T + np.arange(k) * ((T + (-T / k)) - T)) - 1).astype(np.int64)
    else:
        raise ValueError(f"unknown spacing {spacing!r}")
    return grid[::-1].astype(np.int64)


@register("zt_snr.spacing")
def linspace_grid_exact(T: int, k: int) -> list[int]:
    """The linspace grid's definition in exact arithmetic (zt_snr.spacing): round(i (T - 1) /
    (k - 1)) half to even, i = k-1..0. Differs from the float64 grid only at exact .5 ties."""
    if k == 1:
        return [0]
    return [round(Fraction(i * (T - 1), k - 1)) for i in range(k - 1, -1, -1)]


@register("ddim.12")
def ddim_step(*, x_0_hat, eps_hat, eps, eta, alpha_bar_t, alpha_bar_s):
    """DDIM's step from level alpha_bar_t to alpha_bar_s > alpha_bar_t (ddim.12), sigma_t(eta):
    x_s = sqrt(alpha_bar_s) x_0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps_hat + sigma eps."""
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    alpha_bar_s = as_float64("alpha_bar_s", alpha_bar_s, "open_unit")
    check_broadcast(alpha_bar_t=alpha_bar_t, alpha_bar_s=alpha_bar_s)
    if np.any(alpha_bar_t >= alpha_bar_s):
        raise ValueError("need alpha_bar_t < alpha_bar_s (s less noisy than t)")
    return _ddim_step(
        x_0_hat=x_0_hat,
        eps_hat=eps_hat,
        eps=eps,
        eta=eta,
        alpha_t=alpha_bar_t / alpha_bar_s,
        alpha_bar_prev=alpha_bar_s,
    )
