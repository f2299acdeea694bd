"""The probability-flow ODE (Song et al. 2021, eq. (13), key sde.13) beside the paper: SymPy.

For the variance-preserving SDE dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw, the probability-flow
ODE is dx = [f - g^2 score / 2] dt = -beta (x + score) / 2 dt. In log-SNR time lambda
(alpha_bar = sigmoid(lambda), d lambda / dt = -beta / (1 - alpha_bar) since d log alpha_bar /
dt = -beta) and with score = -eps / sqrt(1 - alpha_bar) (eq. (151)) its drift is
dx / d lambda = ((1 - alpha_bar) x - sqrt(1 - alpha_bar) eps) / 2. DDIM's ODE
d(x / sqrt(alpha_bar)) = eps d sqrt((1 - alpha_bar) / alpha_bar) (the limit of ddim.13) has
the same drift: proved here by carrying out the derivatives in lambda.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import Derivation, Step, lemma
from udm.derivations.symbols import LATEX_NAMES, eps, score, x_t

lam = sp.Symbol("log_snr", real=True)
beta = sp.Symbol("beta", positive=True)
x_bar = sp.Symbol("x_bar", real=True)  # x / sqrt(alpha_bar): DDIM's variable
LATEX_NAMES.update({lam: r"\lambda", beta: r"\beta(t)", x_bar: r"\bar x"})
ab = 1 / (1 + sp.exp(-lam))  # alpha_bar = sigmoid(log SNR)
DRIFT = ((1 - ab) * x_t - sp.sqrt(1 - ab) * eps) / 2


@register("sde.13")
def vp_flow_in_log_snr() -> Derivation:
    """sde.13 for the VP SDE, per unit log SNR: -beta (x + score) / 2 divided by d lambda / dt.

    The first line states Song et al.'s drift f - g^2 score / 2 (f = -beta x / 2, g^2 = beta)
    over d lambda / dt = -beta / (1 - alpha_bar); the rate beta cancels, and the score of
    q(x_t | x_0) is -eps / sqrt(1 - alpha_bar) (eq. (151)).
    """
    steps = [
        Step(
            (-beta * x_t / 2 - beta * score / 2) / (-beta / (1 - ab)),
            "definition",
            "(f - g^2 score / 2) / (d lambda / dt) for the VP SDE",
        ),
        Step((1 - ab) * (x_t + score) / 2, "algebra", "beta cancels"),
        Step(DRIFT, "substitute", "score = -eps / sqrt(1 - alpha_bar) (eq. (151))", eq="sde.13"),
    ]
    facts = (lemma(score, -eps / sp.sqrt(1 - ab), 151),)
    return Derivation("the VP probability-flow ODE in log-SNR time", steps, facts)


@register("sde.13")
def ddim_ode_is_the_flow() -> Derivation:
    """DDIM's ODE (the limit of ddim.13) is the probability-flow ODE sde.13.

    x = sqrt(alpha_bar) x_bar with d x_bar / d sigma = eps, sigma = sqrt((1 - alpha_bar) /
    alpha_bar) = exp(-lambda / 2): dx / d lambda = x_bar d sqrt(alpha_bar) / d lambda +
    sqrt(alpha_bar) eps d sigma / d lambda, which is the drift of `vp_flow_in_log_snr`.
    It takes x_bar from ddim.13 as a lemma, so it proves sde.13, not ddim.13 (that is
    `udm.derivations.ddim.deterministic_step_is_euler`).
    """
    steps = [
        Step(
            sp.Derivative(sp.sqrt(ab), lam) * x_bar
            + sp.sqrt(ab) * eps * sp.Derivative(sp.exp(-lam / 2), lam),
            "definition",
            "d(sqrt(alpha_bar) x_bar) / d lambda with d x_bar = eps d sigma (product rule)",
        ),
        Step(
            (1 - ab) * sp.sqrt(ab) * x_bar / 2 - sp.sqrt(ab) * sp.exp(-lam / 2) * eps / 2,
            "differentiate",
            "d sqrt(alpha_bar) / d lambda = sqrt(alpha_bar)(1 - alpha_bar) / 2, d sigma = -sigma / 2",
        ),
        Step(
            DRIFT,
            "substitute",
            "x_bar = x / sqrt(alpha_bar); sqrt(alpha_bar) exp(-lambda / 2) = sqrt(1 - alpha_bar)",
            eq="sde.13",
        ),
    ]
    facts = (lemma(x_bar, x_t / sp.sqrt(ab), "ddim.13"),)
    return Derivation("DDIM's ODE is the probability-flow ODE", steps, facts)
