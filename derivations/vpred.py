"""v-prediction (Salimans and Ho 2022, arXiv:2202.00512) beside the paper: SymPy derivations.

v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (key v.pred) is (x_0, eps) rotated by
the angle whose cosine is sqrt(alpha_bar_t), so x_0 and eps are read back from (x_t, v)
(v.x0, v.eps). A prediction v_hat converted to x_0_hat and eps_hat the same way has errors
x_0 - x_0_hat = -sqrt(1 - alpha_bar_t)(v - v_hat) and eps - eps_hat = sqrt(alpha_bar_t)(v -
v_hat): the v loss is the x_0 loss weighted by 1 + SNR(t) and the eps loss weighted by
1 / alpha_bar_t (v.loss), which is why it stays finite at both ends of the schedule.
The conversions themselves are generated from `udm.derivations.interpretations.v_prediction`
(registered under eq. (115) and v.x0, v.eps): one formula, one function.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step, definition, lemma
from udm.derivations.symbols import alpha_bar_t, eps, eps_hat, snr_t, v, v_hat, x_0, x_0_hat, x_t

ab = alpha_bar_t
sqrt_ab, sqrt_1m = sp.sqrt(ab), sp.sqrt(1 - ab)
X_T = lemma(x_t, sqrt_ab * x_0 + sqrt_1m * eps, 69)
V_DEF = definition(v, sqrt_ab * eps - sqrt_1m * x_0, "v.pred")


@register("v.pred")
def v_definition() -> Derivation:
    """The velocity target v.pred: v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0."""
    steps = [Step(sqrt_ab * eps - sqrt_1m * x_0, "definition", "Salimans and Ho's v", eq="v.pred")]
    results = (
        ClosedForm(
            "v_target",
            ("v.pred",),
            sqrt_ab * eps - sqrt_1m * x_0,
            ("x_0", "eps", "alpha_bar_t"),
            {"x_0": "real", "eps": "real", "alpha_bar_t": "open_unit"},
            "The v-prediction target from the clean sample and the noise",
            lhs="v",
            line="v.pred",
        ),
    )
    return Derivation("the v target", steps, results=results)


@register("v.x0")
def x0_from_v() -> Derivation:
    """v.x0: x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v, from v.pred and eq. (69)."""
    steps = [
        Step(x_0, "definition", "the clean sample"),
        Step(
            sqrt_ab * x_t - sqrt_1m * v,
            "substitute",
            "insert x_t (eq. (69)) and v (v.pred); alpha_bar + (1 - alpha_bar) = 1",
            eq="v.x0",
        ),
    ]
    return Derivation("x_0 from x_t and v", steps, facts=(X_T, V_DEF))


@register("v.eps")
def eps_from_v() -> Derivation:
    """v.eps: eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v, from v.pred and eq. (69)."""
    steps = [
        Step(eps, "definition", "the noise"),
        Step(
            sqrt_1m * x_t + sqrt_ab * v,
            "substitute",
            "insert x_t (eq. (69)) and v (v.pred); alpha_bar + (1 - alpha_bar) = 1",
            eq="v.eps",
        ),
    ]
    return Derivation("eps from x_t and v", steps, facts=(X_T, V_DEF))


@register("v.loss")
def v_loss_as_x0_loss() -> Derivation:
    """v.loss: (v - v_hat)^2 = (1 + SNR(t)) (x_0 - x_0_hat)^2 ('SNR+1' weighting).

    x_0_hat is v_hat converted by v.x0 (the same x_t), so x_0 - x_0_hat = -sqrt(1 -
    alpha_bar_t)(v - v_hat), and 1 / (1 - alpha_bar_t) = 1 + SNR(t) (eq. (109)).
    """
    steps = [
        Step((v - v_hat) ** 2, "definition", "the v regression error"),
        Step((x_0 - x_0_hat) ** 2 / (1 - ab), "substitute", "x_0_hat from v_hat (v.x0)"),
        Step(
            (1 + snr_t) * (x_0 - x_0_hat) ** 2,
            "substitute",
            "1 / (1 - alpha_bar_t) = 1 + SNR(t) (eq. (109))",
            eq="v.loss",
            name="x0",
        ),
    ]
    facts = (
        X_T,
        V_DEF,
        lemma(x_0_hat, sqrt_ab * x_t - sqrt_1m * v_hat, "v.x0"),
        definition(snr_t, ab / (1 - ab), 109),
    )
    results = (
        ClosedForm(
            "v_loss_weight_x0",
            ("v.loss",),
            1 / (1 - ab),
            ("alpha_bar_t",),
            {"alpha_bar_t": "open_unit"},
            "Weight of ||x_0 - x_0_hat||^2 that equals the v loss: 1 + SNR(t)",
            lhs=r"\frac{\lVert v - \hat v\rVert^2}{\lVert x_0 - \hat x_\theta\rVert^2}",
            line="x0",
            rename={x_0_hat: x_0 - 1},  # the weight: the line at a unit error
        ),
    )
    return Derivation("the v loss as a weighted x_0 loss", steps, facts=facts, results=results)


@register("v.loss")
def v_loss_as_eps_loss() -> Derivation:
    """v.loss: (v - v_hat)^2 = (eps - eps_hat)^2 / alpha_bar_t.

    eps_hat is v_hat converted by v.eps (the same x_t), so eps - eps_hat = sqrt(alpha_bar_t)
    (v - v_hat).
    """
    steps = [
        Step((v - v_hat) ** 2, "definition", "the v regression error"),
        Step(
            (eps - eps_hat) ** 2 / ab,
            "substitute",
            "eps_hat from v_hat (v.eps)",
            eq="v.loss",
            name="eps",
        ),
    ]
    facts = (X_T, V_DEF, lemma(eps_hat, sqrt_1m * x_t + sqrt_ab * v_hat, "v.eps"))
    results = (
        ClosedForm(
            "v_loss_weight_eps",
            ("v.loss",),
            1 / ab,
            ("alpha_bar_t",),
            {"alpha_bar_t": "open_unit"},
            "Weight of ||eps - eps_hat||^2 that equals the v loss: 1 / alpha_bar_t",
            lhs=r"\frac{\lVert v - \hat v\rVert^2}{\lVert \epsilon - \hat\epsilon_\theta\rVert^2}",
            line="eps",
            rename={eps_hat: eps - 1},
        ),
    )
    return Derivation("the v loss as a weighted eps loss", steps, facts=facts, results=results)
