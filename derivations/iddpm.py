"""Improved DDPM (Nichol and Dhariwal 2021, arXiv:2102.09672) beside the paper: SymPy.

The learned reverse variance interpolates the two fixed choices in the log domain (eq. (15),
key iddpm.15): Sigma = exp(v log beta_t + (1 - v) log sigma_q^2(t)). Proved here: sigma_q^2(t)
= beta_t / (1 + beta_t SNR(t - 1)), so sigma_q^2(t) <= beta_t, and for every v in [0, 1] the
interpolation lies between them (iddpm.between): log Sigma - log sigma_q^2 = v log(1 + beta_t
SNR(t - 1)) >= 0 and log beta_t - log Sigma = (1 - v) log(1 + beta_t SNR(t - 1)) >= 0.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step, definition, lemma
from udm.derivations.symbols import LATEX_NAMES, alpha_bar_prev, snr_s, var_q

beta_t = sp.Symbol("beta_t", positive=True)
v_interp = sp.Symbol("v_interp", nonnegative=True)  # iDDPM's v (v >= 0 here; <= 1 below)
w = sp.Symbol("w", nonnegative=True)  # 1 - v >= 0, for the upper bound
LATEX_NAMES.update({beta_t: r"\beta_t", v_interp: "v", w: "(1 - v)"})
abp = alpha_bar_prev
VAR_Q = lemma(var_q, beta_t / (1 + beta_t * snr_s), "udm.derivations.iddpm.var_q_through_beta")


def _log_sigma(v):
    return v * sp.log(beta_t) + (1 - v) * sp.log(var_q)


@register("iddpm.15")
def interpolated_variance() -> Derivation:
    """iddpm.15: Sigma_theta = exp(v log beta_t + (1 - v) log sigma_q^2(t)) (a definition)."""
    steps = [
        Step(sp.exp(_log_sigma(v_interp)), "definition", "iDDPM's eq. (15)", eq="iddpm.15"),
    ]
    results = (
        ClosedForm(
            "interpolated_variance",
            ("iddpm.15",),
            sp.exp(_log_sigma(v_interp)),
            ("v_interp", "beta_t", "var_q"),
            {"v_interp": "real", "beta_t": "positive", "var_q": "positive"},
            "iDDPM's learned reverse variance between sigma_q^2(t) (v = 0) and beta_t (v = 1)",
            lhs=r"\Sigma_\theta(x_t, t)",
            line="iddpm.15",
        ),
    )
    return Derivation("iDDPM's interpolated variance", steps, results=results)


@register("iddpm.between")
def var_q_through_beta() -> Derivation:
    """sigma_q^2(t) = beta_t / (1 + beta_t SNR(t - 1)), from eqs. (85), (109), beta_t = 1 - alpha_t.

    1 - alpha_bar_t = (1 - alpha_bar_{t-1}) + beta_t alpha_bar_{t-1}: divide by
    1 - alpha_bar_{t-1}. Hence sigma_q^2(t) <= beta_t (iddpm.between at v = 0 and v = 1).
    """
    steps = [
        Step(var_q, "definition", "the posterior variance of eq. (85)"),
        Step(
            beta_t / (1 + beta_t * snr_s),
            "substitute",
            "alpha_t = 1 - beta_t; SNR(t - 1) = alpha_bar_{t-1} / (1 - alpha_bar_{t-1})",
        ),
    ]
    # eq. (85) with alpha_t = 1 - beta_t; eq. (109) at t - 1
    facts = (
        definition(var_q, beta_t * (1 - abp) / (1 - (1 - beta_t) * abp), 85),
        definition(snr_s, abp / (1 - abp), 109),
    )
    return Derivation("sigma_q^2 through beta and SNR", steps, facts=facts)


@register("iddpm.between")
def sigma_q_below_beta() -> Derivation:
    """sigma_q^2(t) <= beta_t: beta_t - beta_t / (1 + beta_t SNR(t - 1)) >= 0 (iddpm.between)."""
    steps = [
        Step(beta_t, "definition", "beta_t"),
        Step(
            beta_t / (1 + beta_t * snr_s),
            "jensen",
            "the gap beta_t^2 SNR(t - 1) / (1 + beta_t SNR(t - 1)) is >= 0",
            gap=beta_t**2 * snr_s / (1 + beta_t * snr_s),
        ),
        Step(var_q, "substitute", "sigma_q^2(t) through beta_t", eq="iddpm.between"),
    ]
    return Derivation("sigma_q^2 <= beta", steps, facts=(VAR_Q,))


@register("iddpm.between")
def interpolation_above_var_q() -> Derivation:
    """log Sigma >= log sigma_q^2(t) for v >= 0 (iddpm.between, lower half).

    log Sigma - log sigma_q^2 = v (log beta_t - log sigma_q^2) = v log(1 + beta_t SNR(t - 1)).
    """
    steps = [
        Step(_log_sigma(v_interp) - sp.log(var_q), "definition", "log Sigma - log sigma_q^2"),
        Step(
            v_interp * sp.log(1 + beta_t * snr_s),
            "substitute",
            "sigma_q^2(t) = beta_t / (1 + beta_t SNR(t - 1))",
        ),
        Step(
            sp.Integer(0),
            "jensen",
            "v >= 0 and 1 + beta_t SNR(t - 1) > 1",
            gap=v_interp * sp.log(1 + beta_t * snr_s),
            eq="iddpm.between",
        ),
    ]
    return Derivation("the interpolated variance is at least sigma_q^2", steps, facts=(VAR_Q,))


@register("iddpm.between")
def interpolation_below_beta() -> Derivation:
    """log beta_t >= log Sigma for v <= 1 (iddpm.between, upper half), with w = 1 - v >= 0.

    log beta_t - log Sigma = (1 - v)(log beta_t - log sigma_q^2) = w log(1 + beta_t SNR(t - 1)).
    """
    steps = [
        Step(sp.log(beta_t) - _log_sigma(1 - w), "definition", "log beta_t - log Sigma, v = 1 - w"),
        Step(
            w * sp.log(1 + beta_t * snr_s),
            "substitute",
            "sigma_q^2(t) = beta_t / (1 + beta_t SNR(t - 1))",
        ),
        Step(
            sp.Integer(0),
            "jensen",
            "w = 1 - v >= 0 and 1 + beta_t SNR(t - 1) > 1",
            gap=w * sp.log(1 + beta_t * snr_s),
            eq="iddpm.between",
        ),
    ]
    return Derivation("the interpolated variance is at most beta_t", steps, facts=(VAR_Q,))
