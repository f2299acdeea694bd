"""Guidance (paper section 4, eqs. (162)-(170)): SymPy derivations.

Every identity of the section is about scores of arbitrary densities; SymPy states them
with generic positive functions p(x_t), p(y | x_t) and a constant p(y), so each proof holds
for every density (status 'symbolic').
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step
from udm.derivations.symbols import guidance_scale, score, x_t

p_x = sp.Function("p", positive=True)  # p(x_t): the unconditional density
p_y_given_x = sp.Function("p_y", positive=True)  # p(y | x_t): the classifier, y fixed
p_y = sp.Symbol("p(y)", positive=True)  # the evidence: does not depend on x_t
gamma = guidance_scale
score_cond = sp.Symbol("score_cond", real=True)  # grad log p(x_t | y)
grad_log_classifier = sp.Symbol("grad_log_classifier", real=True)  # grad log p(y | x_t)


def _grad_log(expr):
    return sp.Derivative(sp.log(expr), x_t)


_p_cond = p_x(x_t) * p_y_given_x(x_t) / p_y  # Bayes: p(x_t | y)


@register(162)
def conditional_joint() -> Derivation:
    """The conditional diffusion model, eq. (162).

    p(x_{0:T} | y) = p(x_T) prod_t p_theta(x_{t-1} | x_t, y): the unconditional chain with
    each reverse transition conditioned on y (shown for T = 2).
    """
    x_0, x_1, x_2, y = sp.symbols("x_0 x_1 x_2 y", real=True)
    p_T = sp.Function("p")
    p_theta = sp.Function("p_theta")
    steps = [
        Step(p_T(x_2) * p_theta(x_1, x_2, y) * p_theta(x_0, x_1, y), "definition", eq=162),
    ]
    return Derivation("conditional diffusion joint", steps)


@register(163, 164, 165)
def conditional_score() -> Derivation:
    """The conditional score is the unconditional score plus the classifier's, eqs. (163)-(165).

    Bayes (eq. (163)): p(x_t | y) = p(x_t) p(y | x_t) / p(y); the log splits (eq. (164));
    p(y) does not depend on x_t, so its gradient vanishes (eq. (165)). For every density.
    """
    steps = [
        Step(_grad_log(_p_cond), "definition", "Bayes' rule inside the score", eq=163),
        Step(
            _grad_log(p_x(x_t)) + _grad_log(p_y_given_x(x_t)) - _grad_log(p_y),
            "log_rules",
            "log of a product and a quotient",
            eq=164,
        ),
        Step(
            _grad_log(p_x(x_t)) + _grad_log(p_y_given_x(x_t)),
            "differentiate",
            "grad log p(y) = 0",
            eq=165,
        ),
    ]
    return Derivation("conditional score by Bayes' rule", steps)


@register(166)
def classifier_guidance() -> Derivation:
    """Classifier guidance with scale gamma, eq. (166), is the score of a tilted density.

    grad log p(x_t) + gamma grad log p(y | x_t) (eq. (166)) is the score of
    p(x_t) p(y | x_t)^gamma / Z_gamma, whatever the normalizer Z_gamma (gamma = 1 gives the
    conditional density of eq. (165); gamma = 0 the unconditional one).
    """
    Zg = sp.Symbol("Z_gamma", positive=True)
    steps = [
        Step(
            _grad_log(p_x(x_t) * p_y_given_x(x_t) ** gamma / Zg),
            "definition",
            "score of the tilted density",
        ),
        Step(
            _grad_log(p_x(x_t)) + gamma * _grad_log(p_y_given_x(x_t)),
            "differentiate",
            "log rules; Z_gamma is constant",
            eq=166,
        ),
    ]
    return Derivation(
        "classifier guidance",
        steps,
        results=(
            ClosedForm(
                "classifier_guided_score",
                (166,),
                score + gamma * grad_log_classifier,
                ("score", "grad_log_classifier", "guidance_scale"),
                {"score": "real", "grad_log_classifier": "real", "guidance_scale": "real"},
                "Classifier-guided score",
                lhs=r"\nabla\log p_\gamma(x_t \mid y)",
                line=166,
                rename={
                    _grad_log(p_x(x_t)): score,
                    _grad_log(p_y_given_x(x_t)): grad_log_classifier,
                },
            ),
        ),
    )


@register(167)
def implicit_classifier() -> Derivation:
    """The implicit classifier, eq. (167): grad log p(y | x_t) = grad log p(x_t | y) - grad log p(x_t).

    Eq. (165) solved for the classifier's gradient; for every density.
    """
    steps = [
        Step(_grad_log(p_y_given_x(x_t)), "definition", "the classifier's gradient"),
        Step(
            _grad_log(_p_cond) - _grad_log(p_x(x_t)),
            "differentiate",
            "Bayes, eq. (165): the p(x_t) terms cancel, grad log p(y) = 0",
            eq=167,
        ),
    ]
    results = (
        ClosedForm(
            "implicit_classifier_grad",
            (167,),
            score_cond - score,
            ("score_cond", "score"),
            {"score_cond": "real", "score": "real"},
            "Implicit classifier gradient from conditional and unconditional scores",
            lhs=r"\nabla\log p(y \mid x_t)",
            line=167,
            rename={_grad_log(_p_cond): score_cond, _grad_log(p_x(x_t)): score},
        ),
    )
    return Derivation("implicit classifier", steps, results=results)


@register(167, 168, 169, 170)
def classifier_free_guidance() -> Derivation:
    """Classifier-free guidance, eqs. (167)-(170), and the density it samples.

    The implicit classifier gradient is grad log p(x_t | y) - grad log p(x_t) (eq. (167),
    from eq. (165)); substituted into classifier guidance (eq. (168)) and rearranged
    (eqs. (169), (170)) it is gamma grad log p(x_t | y) + (1 - gamma) grad log p(x_t):
    the score of p(x_t)^(1 - gamma) p(x_t | y)^gamma, i.e. of the tilted density
    p(x_t) p(y | x_t)^gamma up to normalization. For every density and every gamma.
    """
    s_u = _grad_log(p_x(x_t))
    s_c = _grad_log(_p_cond)
    steps = [
        Step(
            s_u + gamma * _grad_log(p_y_given_x(x_t)),
            "definition",
            "classifier guidance, eq. (166)",
        ),
        Step(s_u + gamma * (s_c - s_u), "substitute", "eq. (167): Bayes, eq. (165)", eq=168),
        Step(s_u + gamma * s_c - gamma * s_u, "algebra", "expand", eq=169),
        Step(gamma * s_c + (1 - gamma) * s_u, "algebra", "collect", eq=170),
        Step(
            _grad_log(p_x(x_t) ** (1 - gamma) * _p_cond**gamma),
            "log_rules",
            "a geometric mixture of the two densities",
        ),
        Step(
            _grad_log(p_x(x_t) * p_y_given_x(x_t) ** gamma),
            "differentiate",
            "= the tilted density times p(y)^(-gamma), a constant",
        ),
    ]
    return Derivation(
        "classifier-free guidance",
        steps,
        results=(
            ClosedForm(
                "cfg_score",
                (170,),
                gamma * score_cond + (1 - gamma) * score,
                ("score", "score_cond", "guidance_scale"),
                {"score": "real", "score_cond": "real", "guidance_scale": "real"},
                "Classifier-free guided score",
                lhs=r"\tilde\nabla\log p(x_t \mid y)",
                line=170,
                rename={s_c: score_cond, s_u: score},
            ),
        ),
    )


__all__ = [
    "classifier_free_guidance",
    "classifier_guidance",
    "conditional_joint",
    "conditional_score",
    "implicit_classifier",
]
