"""Three equivalent interpretations (paper section 2.3, eqs. (115)-(151)): SymPy derivations.

The denoising matching term can regress the clean sample x_0, the source noise eps
(eqs. (115)-(130)) or the score of p(x_t) (Tweedie's formula, eqs. (131)-(151)). Every
derivation starts from the forward sample x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
(eq. (69)) and, where the paper starts from the posterior mean mu_q (eqs. (116), (134)), from
the paper's expression for it, written out here. Beyond the paper's lines: the v-prediction
conversions (Salimans & Ho 2022) and a proof that the x_0, eps and score losses are the same
number for matching predictions.
"""

from __future__ import annotations

import functools

import sympy as sp

from udm import register
from udm.derivations._stable import one_minus_product
from udm.derivations.core import (
    ClosedForm,
    Derivation,
    Step,
    abbreviation,
    complete_square,
    definition,
    lemma,
    log_normal_pdf,
)
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    eps,
    eps_hat,
    mean,
    score,
    score_hat,
    v,
    v_hat,
    var,
    var_q,
    x_0,
    x_0_hat,
    x_t,
)

a, abp, ab = alpha_t, alpha_bar_prev, alpha_bar_t
ab_of = a * abp  # alpha_bar_t = alpha_t alpha_bar_{t-1}
sqrt_ab, sqrt_1m = sp.sqrt(ab), sp.sqrt(1 - ab)
# The forward sample (eq. (69)) with alpha_bar_t = alpha_t alpha_bar_{t-1} already inserted,
# so that facts never depend on the order SymPy substitutes them in.
x_t_of = sp.sqrt(ab_of) * x_0 + sp.sqrt(1 - ab_of) * eps
# sigma_q^2(t) of q(x_{t-1} | x_t, x_0) (the paper's eq. (85)), written out here.
var_q_of = (1 - a) * (1 - abp) / (1 - ab_of)


# x_t is the forward sample (eq. (69)); alpha_bar_t = alpha_t alpha_bar_{t-1}
FORWARD_SAMPLE = lemma(x_t, sqrt_ab * x_0 + sqrt_1m * eps, 69)
ALPHA_BAR = lemma(alpha_bar_t, ab_of, "udm.derivations.vdm.forward.alpha_bar_recursion")
# grad log q(x_t | x_0) evaluated at x_t: the conditional score of eqs. (132), (133), (149)-(151)
_y = sp.Symbol("y", real=True)
COND_SCORE = sp.Subs(sp.Derivative(log_normal_pdf(_y, sqrt_ab * x_0, 1 - ab), _y), _y, x_t)


def _mu_q(x0):
    """The paper's posterior mean mu_q(x_t, x_0) (eqs. (116), (134)) at a given x_0."""
    return (sp.sqrt(a) * (1 - abp) * x_t + sp.sqrt(abp) * (1 - a) * x0) / (1 - ab)


def _u(*args, op=sp.Add):
    return op(*args, evaluate=False)


_conv_domains = {
    "x_t": "real",
    "eps_hat": "real",
    "x_0_hat": "real",
    "score_hat": "real",
    "v_hat": "real",
    "alpha_bar_t": "open_unit",
    "alpha_t": "unit",
    "alpha_bar_prev": "open_unit",
    "x_0": "real",
    "eps": "real",
    "score": "real",
}


def _cf(name, eqs, expr, args, summary, lhs="", **tie):
    # 1 - alpha_bar_t = 1 - alpha_t alpha_bar_{t-1} evaluated without cancellation near 1
    expr = sp.sympify(expr).subs(1 - a * abp, one_minus_product(a, abp))
    return ClosedForm(name, eqs, expr, args, _conv_domains, summary, lhs=lhs, **tie)


# --- predicting the source noise, eqs. (115)-(130) -------------------------------------------


@register(115)
def x_0_from_noise() -> Derivation:
    """x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), eq. (115).

    Solve the forward sample x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps for x_0
    (and for eps: the inverse conversion).
    """
    steps = [
        Step(x_0, "definition", "the clean sample"),
        Step((x_t - sqrt_1m * eps) / sqrt_ab, "substitute", "x_t from eq. (69)", eq=115),
    ]
    results = (
        _cf(
            "x_0_from_eps",
            (115,),
            (x_t - sqrt_1m * eps_hat) / sqrt_ab,
            ("x_t", "eps_hat", "alpha_bar_t"),
            "Clean-sample prediction from a noise prediction",
            lhs=r"\hat x_\theta(x_t, t)",
            line=115,
            rename={eps: eps_hat},
        ),
    )
    return Derivation(
        "x_0 from x_t and the source noise",
        steps,
        facts=(FORWARD_SAMPLE,),
        results=results,
    )


@register(115)
def eps_from_forward_sample() -> Derivation:
    """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t): eq. (115) solved for eps."""
    steps = [
        Step(eps, "definition", "the source noise"),
        Step((x_t - sqrt_ab * x_0) / sqrt_1m, "substitute", "x_t from eq. (69)", name="eps"),
    ]
    results = (
        _cf(
            "eps_from_x_0",
            (115,),
            (x_t - sqrt_ab * x_0_hat) / sqrt_1m,
            ("x_t", "x_0_hat", "alpha_bar_t"),
            "Noise prediction from a clean-sample prediction (eq. (115) solved for eps)",
            lhs=r"\hat\epsilon_\theta(x_t, t)",
            line="eps",
            rename={x_0: x_0_hat},
        ),
    )
    return Derivation("eps from x_t and x_0", steps, facts=(FORWARD_SAMPLE,), results=results)


@functools.cache
def _completed_mean():
    """The mean of q(x_{t-1} | x_t, x_0): the square of eq. (72)'s exponent completed (cached)."""
    xp = sp.Symbol("x_{t-1}", real=True)
    exponent = -((x_t - sp.sqrt(a) * xp) ** 2) / (2 * (1 - a)) - (xp - sp.sqrt(abp) * x_0) ** 2 / (
        2 * (1 - abp)
    )
    return complete_square(exponent, xp)[0]


def _mean_in_terms_of(kind: str):
    """Steps of eqs. (116)-(124) (kind='eps') or (134)-(142) (kind='score')."""
    sa = sp.sqrt(a)
    if kind == "eps":
        noise_term = -sqrt_1m * eps  # x_0 = (x_t + noise_term) / sqrt(alpha_bar_t)
        n0 = 116
    else:
        noise_term = (1 - ab) * score
        n0 = 134
    x0_expr = (x_t + noise_term) / sqrt_ab
    last = x_t / sa + (1 - a) / (sa * (1 - ab)) * noise_term
    base = [
        Step(
            _completed_mean(), "definition", "the mean of q(x_{t-1} | x_t, x_0), square completed"
        ),
        Step(_mu_q(x_0), "complete_square", "the paper's posterior mean", eq=n0),
        Step(
            _mu_q(x0_expr),
            "substitute",
            f"x_0 from eq. ({115 if kind == 'eps' else 133})",
            eq=n0 + 1,
        ),
        Step(
            (sa * (1 - abp) * x_t + (1 - a) * (x_t + noise_term) / sa) / (1 - ab),
            "algebra",
            "sqrt(alpha_bar_{t-1}) / sqrt(alpha_bar_t) = 1 / sqrt(alpha_t)",
            eq=n0 + 2,
        ),
        Step(
            _u(
                sa * (1 - abp) * x_t / (1 - ab),
                (1 - a) * x_t / ((1 - ab) * sa),
                (1 - a) * noise_term / ((1 - ab) * sa),
            ),
            "algebra",
            "split the terms",
            eq=n0 + 3,
        ),
        Step(
            (sa * (1 - abp) / (1 - ab) + (1 - a) / ((1 - ab) * sa)) * x_t
            + (1 - a) * noise_term / ((1 - ab) * sa),
            "algebra",
            "collect the x_t coefficients",
            eq=n0 + 4,
        ),
        Step(
            (a * (1 - abp) / ((1 - ab) * sa) + (1 - a) / ((1 - ab) * sa)) * x_t
            + (1 - a) * noise_term / ((1 - ab) * sa),
            "algebra",
            "common denominator",
            eq=n0 + 5,
        ),
        Step(
            _u(a, -ab, 1, -a) / ((1 - ab) * sa) * x_t + (1 - a) * noise_term / ((1 - ab) * sa),
            "algebra",
            "alpha_t alpha_bar_{t-1} = alpha_bar_t",
            eq=n0 + 6,
        ),
        Step(
            _u(1 - ab, 1 / ((1 - ab) * sa), op=sp.Mul) * x_t
            + (1 - a) * noise_term / ((1 - ab) * sa),
            "algebra",
            "simplify",
            eq=n0 + 7,
        ),
        Step(last, "algebra", "cancel 1 - alpha_bar_t", eq=n0 + 8),
    ]
    # eq. (115) / (133) as the fact x_0 = ..., with alpha_bar_t = alpha_t alpha_bar_{t-1} inserted
    facts = (lemma(x_0, x0_expr.subs(alpha_bar_t, ab_of), 115 if kind == "eps" else 133), ALPHA_BAR)
    return base, facts, last


@register(116, 117, 118, 119, 120, 121, 122, 123, 124, 125)
def posterior_mean_from_eps() -> Derivation:
    """mu_q(x_t, x_0) in terms of x_t and the source noise, eqs. (116)-(124); mu_theta, eq. (125).

    Insert x_0 from eq. (115) into the paper's posterior mean (eq. (116)); with
    alpha_bar_t = alpha_t alpha_bar_{t-1} the x_t coefficient collapses to 1 / sqrt(alpha_t).
    Matching mu_theta uses the same form with eps_hat (eq. (125)).
    """
    steps, facts, _ = _mean_in_terms_of("eps")
    sa = sp.sqrt(a)
    results = (
        _cf(
            "mu_theta_from_eps",
            (124, 125),
            x_t / sa - (1 - a) / (sqrt_1m * sa) * eps_hat,
            ("x_t", "eps_hat", "alpha_t", "alpha_bar_t"),
            "Mean of p_theta(x_{t-1} | x_t) from a noise prediction",
            lhs=r"\mu_\theta(x_t, t)",
            line=124,
            rename={eps: eps_hat},
        ),
    )
    return Derivation(
        "the posterior mean through the source noise",
        steps,
        facts=facts,
        results=results,
    )


def _kl_chain(kind: str):
    """Steps of eqs. (126)-(130) (kind='eps') or (144)-(148) (kind='score')."""
    sa = sp.sqrt(a)
    x = sp.Symbol("x_{t-1}", real=True)
    _, _, mean = _mean_in_terms_of(kind)  # eq. (124) / (142), as derived
    if kind == "eps":
        c = (1 - a) / (sqrt_1m * sa)  # the paper's coefficient, typed as printed
        true, pred, n0 = eps, eps_hat, 126
        paper_weight = (1 - a) ** 2 / ((1 - ab) * a)  # eq. (130)
        sign = -1
    else:
        c = (1 - a) / sa
        true, pred, n0 = score, score_hat, 144
        paper_weight = (1 - a) ** 2 / a  # eq. (148)
        sign = 1
    mu_q, mu_p = mean, mean.subs(true, pred)  # mu_theta: eq. (125) / (143)
    steps = [
        Step(
            log_normal_pdf(x, mu_q, var_q) - log_normal_pdf(x, mu_p, var_q),
            "definition",
            "log q(x_{t-1} | x_t, x_0) - log p_theta(x_{t-1} | x_t), same variance sigma_q^2(t)",
        ),
        Step(
            (mu_p - mu_q) ** 2 / (2 * var_q),
            "expectation",
            "the KL of two Gaussians with equal variance (eq. (86)), per coordinate",
            eq=n0,
            over=(x, mu_q, var_q),
        ),
        Step(
            _u(x_t / sa, sign * c * pred, -x_t / sa, -sign * c * true) ** 2 / (2 * var_q),
            "substitute",
            "insert both means",
            eq=n0 + 1,
        ),
        Step(
            (sign * c * pred - sign * c * true) ** 2 / (2 * var_q),
            "algebra",
            "the x_t terms cancel",
            eq=n0 + 2,
        ),
        Step(
            _u(c, pred - true, op=sp.Mul) ** 2 / (2 * var_q),
            "algebra",
            "factor the coefficient",
            eq=n0 + 3,
        ),
        Step(
            paper_weight / (2 * var_q) * (true - pred) ** 2,
            "algebra",
            "the weight times the squared error",
            eq=n0 + 4,
        ),
    ]
    return steps, paper_weight / (2 * var_q)


@register(126, 127, 128, 129, 130)
def noise_prediction_loss() -> Derivation:
    """Denoising matching as weighted noise regression, eqs. (126)-(130).

    The KL between q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t) with equal variances
    sigma_q^2(t), taken by moments, is (1 / (2 sigma_q^2)) (1 - alpha_t)^2 /
    ((1 - alpha_bar_t) alpha_t) (eps - eps_hat)^2 per coordinate (family: one coordinate of
    diagonal Gaussians; the d-dimensional KL is the sum).
    """
    steps, _ = _kl_chain("eps")
    weight = (1 - a) ** 2 / (2 * var_q_of * (1 - ab_of) * a)
    results = (
        _cf(
            "eps_loss_weight",
            (130,),
            weight,
            ("alpha_t", "alpha_bar_prev"),
            "Weight of ||eps - eps_hat||^2 at step t >= 2, with sigma_q^2(t) inserted",
            lhs=r"\frac{1}{2\sigma_q^2(t)}\frac{(1-\alpha_t)^2}{(1-\bar\alpha_t)\alpha_t}",
            line=130,
            rename={eps_hat: eps + 1},  # the weight: the line at a unit error
        ),
        _cf(
            "eps_loss",
            (130,),
            weight * (eps - eps_hat) ** 2,
            ("eps", "eps_hat", "alpha_t", "alpha_bar_prev"),
            "Noise-prediction loss per coordinate (sum over coordinates for ||.||^2)",
            lhs=r"\mathcal{L}_\epsilon",
            line=130,
        ),
    )
    return Derivation(
        "denoising matching as noise prediction",
        steps,
        facts=(definition(var_q, var_q_of, 85), ALPHA_BAR),
        family="one coordinate of diagonal Gaussians with equal variances",
        results=results,
    )


# --- Tweedie's formula and the score, eqs. (131)-(151) ----------------------------------------


@register(131)
def tweedie_gaussian() -> Derivation:
    """Tweedie's formula, eq. (131), proved for Gaussian data x_0 ~ N(mean, var).

    x_t ~ N(sqrt(alpha_bar_t) mean, alpha_bar_t var + 1 - alpha_bar_t); its score by
    differentiating the log-density; the posterior mean E[x_0 | x_t] by completing the square
    in log q(x_t | x_0) + log p(x_0). Then sqrt(alpha_bar_t) E[x_0 | x_t], the posterior mean
    of x_t's mean, equals x_t + (1 - alpha_bar_t) grad log p(x_t).
    """
    c = ab * var + 1 - ab
    log_p_xt = log_normal_pdf(x_t, sqrt_ab * mean, c)
    score_xt = sp.diff(log_p_xt, x_t)
    log_joint = log_normal_pdf(x_t, sqrt_ab * x_0, 1 - ab) + log_normal_pdf(x_0, mean, var)
    post_mean, _, _ = complete_square(log_joint, x_0)
    steps = [
        Step(sqrt_ab * post_mean, "definition", "sqrt(alpha_bar_t) E[x_0 | x_t], completed square"),
        Step(
            x_t + (1 - ab) * score_xt,
            "algebra",
            "score of p(x_t) = N(sqrt(alpha_bar_t) mean, alpha_bar_t var + 1 - alpha_bar_t)",
            eq=131,
        ),
        Step(
            x_t - (1 - ab) * (x_t - sqrt_ab * mean) / c,
            "differentiate",
            "d/dx_t of the Gaussian log-density",
        ),
    ]
    return Derivation(
        "Tweedie's formula",
        steps,
        family="Gaussian data x_0 ~ N(mean, var)",
    )


@register(132)
def x_0_from_score_derivation() -> Derivation:
    """Eq. (132) for the conditional score: sqrt(alpha_bar_t) x_0 = x_t + (1 - alpha_bar_t) grad log q(x_t | x_0).

    The mean of q(x_t | x_0) is sqrt(alpha_bar_t) x_0; differentiating the Gaussian
    log-density gives the identity exactly, for every x_t. For the marginal score grad log
    p(x_t) the same line is Tweedie's formula (eq. (131)): a posterior mean, proved on
    Gaussian data in `tweedie_gaussian` (see the erratum).
    """
    steps = [
        Step(sqrt_ab * x_0, "definition", "the mean of q(x_t | x_0)"),
        Step(x_t + (1 - ab) * COND_SCORE, "differentiate", "the Gaussian score", eq=132),
    ]
    results = (
        _cf(
            "tweedie_mean",
            (131, 132),
            x_t + (1 - ab) * score,
            ("x_t", "score", "alpha_bar_t"),
            "Posterior mean of sqrt(alpha_bar_t) x_0 given x_t (Tweedie)",
            lhs=r"\mathbb{E}[\mu_{x_t} \mid x_t]",
            line=132,
            rename={COND_SCORE: score},
        ),
    )
    return Derivation("the mean through the conditional score", steps, results=results)


@register(133)
def x_0_through_score() -> Derivation:
    """Eq. (133) for the conditional score: x_0 = (x_t + (1 - alpha_bar_t) grad log q(x_t | x_0)) / sqrt(alpha_bar_t)."""
    steps = [
        Step(x_0, "definition", "the clean sample"),
        Step((x_t + (1 - ab) * COND_SCORE) / sqrt_ab, "differentiate", "", eq=133),
    ]
    results = (
        _cf(
            "x_0_from_score",
            (133,),
            (x_t + (1 - ab) * score_hat) / sqrt_ab,
            ("x_t", "score_hat", "alpha_bar_t"),
            "Clean-sample prediction from a score prediction",
            lhs=r"\hat x_\theta(x_t, t)",
            line=133,
            rename={COND_SCORE: score_hat},
        ),
    )
    return Derivation("x_0 through the conditional score", steps, results=results)


@register(133)
def conditional_score() -> Derivation:
    """grad log q(x_t | x_0) = (sqrt(alpha_bar_t) x_0 - x_t) / (1 - alpha_bar_t): eq. (133) solved."""
    steps = [
        Step(COND_SCORE, "definition", "the conditional score"),
        Step((sqrt_ab * x_0 - x_t) / (1 - ab), "differentiate", "", name="score"),
    ]
    results = (
        _cf(
            "score_from_x_0",
            (133,),
            (sqrt_ab * x_0_hat - x_t) / (1 - ab),
            ("x_t", "x_0_hat", "alpha_bar_t"),
            "Score prediction from a clean-sample prediction (eq. (133) solved)",
            lhs=r"s_\theta(x_t, t)",
            line="score",
            rename={x_0: x_0_hat},
        ),
    )
    return Derivation("the conditional score", steps, results=results)


@register(134, 135, 136, 137, 138, 139, 140, 141, 142, 143)
def posterior_mean_from_score() -> Derivation:
    """mu_q(x_t, x_0) in terms of x_t and the score, eqs. (134)-(142); mu_theta, eq. (143).

    Insert x_0 from eq. (133) into the paper's posterior mean (eq. (134)).
    """
    steps, facts, _ = _mean_in_terms_of("score")
    sa = sp.sqrt(a)
    results = (
        _cf(
            "mu_theta_from_score",
            (142, 143),
            x_t / sa + (1 - a) / sa * score_hat,
            ("x_t", "score_hat", "alpha_t"),
            "Mean of p_theta(x_{t-1} | x_t) from a score prediction",
            lhs=r"\mu_\theta(x_t, t)",
            line=142,
            rename={score: score_hat},
        ),
    )
    return Derivation(
        "the posterior mean through the score",
        steps,
        facts=facts,
        results=results,
    )


@register(144, 145, 146, 147, 148)
def score_prediction_loss() -> Derivation:
    """Denoising matching as weighted score regression, eqs. (144)-(148).

    As eqs. (126)-(130), with the means of eqs. (142), (143): the weight is
    (1 / (2 sigma_q^2(t))) (1 - alpha_t)^2 / alpha_t (family: one coordinate of diagonal
    Gaussians with equal variances).
    """
    steps, _ = _kl_chain("score")
    weight = (1 - a) ** 2 / (2 * var_q_of * a)
    results = (
        _cf(
            "score_loss_weight",
            (148,),
            weight,
            ("alpha_t", "alpha_bar_prev"),
            "Weight of ||score_hat - score||^2 at step t >= 2, with sigma_q^2(t) inserted",
            lhs=r"\frac{1}{2\sigma_q^2(t)}\frac{(1-\alpha_t)^2}{\alpha_t}",
            line=148,
            rename={score_hat: score + 1},
        ),
        _cf(
            "score_loss",
            (148,),
            weight * (score_hat - score) ** 2,
            ("score", "score_hat", "alpha_t", "alpha_bar_prev"),
            "Score-prediction loss per coordinate (sum over coordinates for ||.||^2)",
            lhs=r"\mathcal{L}_s",
            line=148,
        ),
    )
    return Derivation(
        "denoising matching as score prediction",
        steps,
        facts=(definition(var_q, var_q_of, 85), ALPHA_BAR),
        family="one coordinate of diagonal Gaussians with equal variances",
        results=results,
    )


@register(150, 151)
def score_is_scaled_noise() -> Derivation:
    """grad log q(x_t | x_0) = -eps / sqrt(1 - alpha_bar_t) at x_t = forward sample, eqs. (150), (151).

    Exact for the conditional score (the erratum); for the marginal score grad log p(x_t) it
    holds in expectation, E[eps | x_t] = -sqrt(1 - alpha_bar_t) grad log p(x_t) (Tweedie).
    """
    steps = [
        Step(COND_SCORE, "definition", "the conditional score at the forward sample"),
        Step(
            -sqrt_1m * eps / (1 - ab),
            "differentiate",
            "eq. (150) divided by 1 - alpha_bar_t",
            eq=150,
        ),
        Step(-eps / sqrt_1m, "algebra", "cancel sqrt(1 - alpha_bar_t)", eq=151),
    ]
    results = (
        _cf(
            "score_from_eps",
            (151,),
            -eps_hat / sqrt_1m,
            ("eps_hat", "alpha_bar_t"),
            "Score prediction from a noise prediction",
            lhs=r"s_\theta(x_t, t)",
            line=151,
            rename={eps: eps_hat},
        ),
    )
    return Derivation(
        "the conditional score is the scaled negative source noise",
        steps,
        facts=(FORWARD_SAMPLE,),
        results=results,
    )


@register(151)
def eps_from_conditional_score() -> Derivation:
    """eps = -sqrt(1 - alpha_bar_t) grad log q(x_t | x_0): eq. (151) solved for eps."""
    steps = [
        Step(eps, "definition", "the source noise"),
        Step(-sqrt_1m * COND_SCORE, "differentiate", "", name="eps"),
    ]
    results = (
        _cf(
            "eps_from_score",
            (151,),
            -sqrt_1m * score_hat,
            ("score_hat", "alpha_bar_t"),
            "Noise prediction from a score prediction",
            lhs=r"\hat\epsilon_\theta(x_t, t)",
            line="eps",
            rename={COND_SCORE: score_hat},
        ),
    )
    return Derivation(
        "eps from the conditional score", steps, facts=(FORWARD_SAMPLE,), results=results
    )


@register(149, 150, 151)
def marginal_noise_tweedie() -> Derivation:
    """The marginal-score reading of eqs. (149)-(151), proved on Gaussian data: Tweedie.

    For x_0 ~ N(mean, var) the score of the marginal p(x_t) is not -eps / sqrt(1 - alpha_bar_t)
    sample by sample; what holds is E[eps | x_t] = -sqrt(1 - alpha_bar_t) grad log p(x_t),
    with E[x_0 | x_t] by completing the square (as in `tweedie_gaussian`).
    """
    c = ab * var + 1 - ab
    score_xt = sp.diff(log_normal_pdf(x_t, sqrt_ab * mean, c), x_t)
    log_joint = log_normal_pdf(x_t, sqrt_ab * x_0, 1 - ab) + log_normal_pdf(x_0, mean, var)
    post_mean, _, _ = complete_square(log_joint, x_0)
    steps = [
        Step(
            (x_t - sqrt_ab * post_mean) / sqrt_1m, "definition", "E[eps | x_t], eps from eq. (115)"
        ),
        Step(-sqrt_1m * score_xt, "algebra", "-sqrt(1 - alpha_bar_t) grad log p(x_t)"),
    ]
    return Derivation(
        "Tweedie for the noise: the marginal score",
        steps,
        family="Gaussian data x_0 ~ N(mean, var)",
    )


@register(149)
def two_expressions_of_x_0() -> Derivation:
    """The two expressions of x_0 agree, eq. (149), for the conditional score at the forward sample."""
    steps = [
        Step((x_t + (1 - ab) * COND_SCORE) / sqrt_ab, "definition", "x_0 by eq. (133)"),
        Step((x_t - sqrt_1m * eps) / sqrt_ab, "differentiate", "the score of q(x_t | x_0)", eq=149),
    ]
    return Derivation("two expressions of x_0", steps, facts=(FORWARD_SAMPLE,))


# --- the three losses are one number; v-prediction ---------------------------------------------


@register(110, 130, 148)
def three_losses_agree() -> Derivation:
    """The x_0, eps and score losses are equal for matching predictions, eqs. (110), (130), (148).

    With eps_hat = eps_from_x_0(x_0_hat) (eq. (115)) and score_hat = -eps_hat /
    sqrt(1 - alpha_bar_t) (eq. (151)): w_x (x_0 - x_0_hat)^2 = w_eps (eps - eps_hat)^2 =
    w_s (score - score_hat)^2, with w_eps = w_x / SNR(t) and w_s = w_eps (1 - alpha_bar_t).
    """
    sab, s1m = sp.sqrt(ab_of), sp.sqrt(1 - ab_of)
    w_x = abp * (1 - a) / (2 * (1 - abp) * (1 - ab_of))  # eq. (103)
    w_eps = (1 - a) ** 2 / (2 * var_q_of * (1 - ab_of) * a)
    w_s = (1 - a) ** 2 / (2 * var_q_of * a)
    facts = (
        lemma(x_0_hat, (x_t_of - s1m * eps_hat) / sab, 115),  # the x_0_hat matching eps_hat
        lemma(score_hat, -eps_hat / s1m, 151),  # the score_hat matching eps_hat
        lemma(score, -eps / s1m, 151),
        lemma(x_t, x_t_of, 69),
    )
    steps = [
        # the lines are the losses of eqs. (110), (130), (148), not those equations' chains
        Step(
            w_x * (x_0 - x_0_hat) ** 2, "definition", "the x_0 loss (eqs. (103), (110))", name="x0"
        ),
        Step(w_eps * (eps - eps_hat) ** 2, "substitute", "x_0_hat from eps_hat (eq. (115))"),
        Step(w_s * (score - score_hat) ** 2, "substitute", "scores from noises (eq. (151))"),
    ]
    results = (
        _cf(
            "x0_loss",
            (110,),
            w_x * (x_0 - x_0_hat) ** 2,
            ("x_0", "x_0_hat", "alpha_t", "alpha_bar_prev"),
            "x_0-prediction loss per coordinate (the weight of eq. (110))",
            lhs=r"\mathcal{L}_{x_0}",
            line="x0",
        ),
    )
    return Derivation("the three losses agree", steps, facts=facts, results=results)


@register(115, 151)
def v_prediction() -> Derivation:
    """v-prediction (Salimans & Ho 2022) and its conversions, from eqs. (115), (151).

    v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0. Then x_0 = sqrt(alpha_bar_t) x_t -
    sqrt(1 - alpha_bar_t) v and eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v: a
    rotation of (x_0, eps) by the angle with cos = sqrt(alpha_bar_t).
    """
    facts = (FORWARD_SAMPLE, abbreviation(v, sqrt_ab * eps - sqrt_1m * x_0))
    steps = [
        Step(sp.Tuple(x_0, eps, v, v, v, COND_SCORE), "definition", "each quantity"),
        Step(
            sp.Tuple(
                sqrt_ab * x_t - sqrt_1m * v,
                sqrt_1m * x_t + sqrt_ab * v,
                (sqrt_ab * x_t - x_0) / sqrt_1m,
                (eps - sqrt_1m * x_t) / sqrt_ab,
                -sqrt_1m * (COND_SCORE + x_t) / sqrt_ab,
                -(x_t + sqrt_ab * v / sqrt_1m),
            ),
            "differentiate",
            "insert x_t (eq. (69)) and v; alpha_bar + (1 - alpha_bar) = 1",
            name="conversions",
        ),
    ]
    results = (
        _cf(
            "x_0_from_v",
            (115, "v.x0"),
            sqrt_ab * x_t - sqrt_1m * v_hat,
            ("x_t", "v_hat", "alpha_bar_t"),
            "Clean-sample prediction from a v prediction",
            lhs=r"\hat x_\theta(x_t, t)",
            line="conversions",
            component=0,
            rename={v: v_hat},
        ),
        _cf(
            "eps_from_v",
            (115, "v.eps"),
            sqrt_1m * x_t + sqrt_ab * v_hat,
            ("x_t", "v_hat", "alpha_bar_t"),
            "Noise prediction from a v prediction",
            lhs=r"\hat\epsilon_\theta(x_t, t)",
            line="conversions",
            component=1,
            rename={v: v_hat},
        ),
        _cf(
            "v_from_x_0",
            (115,),
            (sqrt_ab * x_t - x_0_hat) / sqrt_1m,
            ("x_t", "x_0_hat", "alpha_bar_t"),
            "v prediction from a clean-sample prediction",
            lhs=r"\hat v_\theta(x_t, t)",
            line="conversions",
            component=2,
            rename={x_0: x_0_hat},
        ),
        _cf(
            "v_from_eps",
            (115,),
            (eps_hat - sqrt_1m * x_t) / sqrt_ab,
            ("x_t", "eps_hat", "alpha_bar_t"),
            "v prediction from a noise prediction",
            lhs=r"\hat v_\theta(x_t, t)",
            line="conversions",
            component=3,
            rename={eps: eps_hat},
        ),
        _cf(
            "v_from_score",
            (115, 151),
            -sqrt_1m * (score_hat + x_t) / sqrt_ab,
            ("x_t", "score_hat", "alpha_bar_t"),
            "v prediction from a score prediction",
            lhs=r"\hat v_\theta(x_t, t)",
            line="conversions",
            component=4,
            rename={COND_SCORE: score_hat},
        ),
        _cf(
            "score_from_v",
            (115, 151),
            -(x_t + sqrt_ab * v_hat / sqrt_1m),
            ("x_t", "v_hat", "alpha_bar_t"),
            "Score prediction from a v prediction",
            lhs=r"s_\theta(x_t, t)",
            line="conversions",
            component=5,
            rename={v: v_hat},
        ),
    )
    return Derivation("v-prediction", steps, facts=facts, results=results)
