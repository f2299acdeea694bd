"""Zero terminal SNR (Lin, Liu, Li, Yang 2023, arXiv:2305.08891) beside the paper: SymPy.

Algorithm 1 (key zt_snr.1) shifts sqrt(alpha_bar_t) by its last value and scales it back to
its first: sqrt(alpha_bar_t)' = (sqrt(alpha_bar_t) - sqrt(alpha_bar_T)) sqrt(alpha_bar_1) /
(sqrt(alpha_bar_1) - sqrt(alpha_bar_T)). Proved: alpha_bar_T' = 0 (SNR(T) = 0, the last
latent is pure noise) and alpha_bar_1' = alpha_bar_1; the map is affine and increasing in
sqrt(alpha_bar_t), so the schedule stays monotone.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step
from udm.derivations.symbols import LATEX_NAMES

# sqrt(alpha_bar) at t, at the first step and at the last step (positive, s_1 > s_T)
s_t, s_1, s_T = sp.symbols("sqrt_alpha_bar_t sqrt_alpha_bar_1 sqrt_alpha_bar_T", positive=True)
LATEX_NAMES.update(
    {s_t: r"\sqrt{\bar\alpha_t}", s_1: r"\sqrt{\bar\alpha_1}", s_T: r"\sqrt{\bar\alpha_T}"}
)


def _rescaled(s, evaluate=True):
    """Algorithm 1 at sqrt(alpha_bar) = s; evaluate=False keeps the visible terms (SymPy would
    otherwise cancel s_T - s_T and (s_1 - s_T) / (s_1 - s_T) as it builds the line)."""
    if evaluate:
        return (s - s_T) * s_1 / (s_1 - s_T)
    shift = sp.Add(s, -s_T, evaluate=False)
    return sp.Mul(shift, s_1, sp.Pow(sp.Add(s_1, -s_T, evaluate=False), -1), evaluate=False)


@register("zt_snr.1")
def rescale_endpoints() -> Derivation:
    """zt_snr.1 keeps alpha_bar_1 and makes alpha_bar_T zero.

    Squared (alpha_bar = sqrt(alpha_bar)^2), Algorithm 1 at t = 1 and t = T gives
    (alpha_bar_1, 0).
    """
    steps = [
        Step(
            sp.Tuple(
                _rescaled(s_t),
                sp.Pow(_rescaled(s_1, False), 2, evaluate=False),
                sp.Pow(_rescaled(s_T, False), 2, evaluate=False),
            ),
            "definition",
            "Algorithm 1 at t, and squared at t = 1 and t = T",
            eq="zt_snr.1",
        ),
        Step(
            sp.Tuple(_rescaled(s_t), s_1**2, sp.Integer(0)),
            "algebra",
            "at t = 1 the factors cancel; at t = T the shift vanishes",
            eq="zt_snr.1",
        ),
    ]
    results = (
        ClosedForm(
            "zero_terminal_snr_sqrt_alpha_bar",
            ("zt_snr.1",),
            _rescaled(s_t),
            ("sqrt_alpha_bar_t", "sqrt_alpha_bar_1", "sqrt_alpha_bar_T"),
            {
                "sqrt_alpha_bar_t": "open_unit",
                "sqrt_alpha_bar_1": "open_unit",
                "sqrt_alpha_bar_T": "open_unit",
            },
            "sqrt(alpha_bar_t) rescaled to zero terminal SNR (needs sqrt_alpha_bar_1 > "
            "sqrt_alpha_bar_T)",
            lhs=r"\sqrt{\bar\alpha_t}'",
            line="zt_snr.1",
            component=0,
        ),
    )
    return Derivation("zero terminal SNR keeps alpha_bar_1", steps, results=results)


@register("zt_snr.1")
def rescale_is_increasing() -> Derivation:
    """zt_snr.1 is increasing in sqrt(alpha_bar_t): its slope sqrt(alpha_bar_1) /
    (sqrt(alpha_bar_1) - sqrt(alpha_bar_T)) is positive (written with d = s_1 - s_T > 0)."""
    d = sp.Symbol("d", positive=True)
    steps = [
        Step(
            sp.Derivative(_rescaled(s_t).subs(s_T, s_1 - d), s_t),
            "definition",
            "the slope of Algorithm 1, with sqrt(alpha_bar_T) = sqrt(alpha_bar_1) - d",
        ),
        Step(s_1 / d, "differentiate", "an affine map: its slope", eq="zt_snr.1"),
        Step(sp.Integer(0), "jensen", "s_1 / d > 0", gap=s_1 / d),
    ]
    return Derivation("zero terminal SNR keeps the order", steps)
