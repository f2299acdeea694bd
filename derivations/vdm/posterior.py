"""The forward posterior q(x_{t-1} | x_t, x_0) by Bayes and completing the square (eqs. (71)-(85)).

SymPy derivations of paper section 2.1 (Variational Diffusion Models); see
`udm.derivations.vdm` for the whole section."""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import (
    ClosedForm,
    Derivation,
    Step,
    complete_square,
    definition,
    lemma,
    normal_pdf,
)
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    x_0,
    x_prev,
    x_t,
)
from udm.derivations.vdm._common import ALPHA_BAR

# --- The forward posterior q(x_{t-1} | x_t, x_0), eqs. (71)-(85) --------------------------------


# Symbols of this region (NOTATION names). mu_q / mu_theta stand for the means when a step
# keeps them abstract; the facts of each derivation replace them by eqs. (93), (94).
mu_q, mu_theta = sp.symbols("mu_q mu_theta", real=True)
_POSTERIOR_FACTS = {alpha_bar_t: alpha_t * alpha_bar_prev}  # ALPHA_BAR as a substitution


class _Density(sp.Function):
    """q(a | b): an abstract conditional density, printed as the paper prints it."""

    nargs = 2

    def _latex(self, printer):
        a, b = (printer._print(arg) for arg in self.args)
        return rf"q({a} \mid {b})"


def _mu_q_expr(x_0_like):
    """The paper's form of eq. (84)/(93) (eq. (94) when x_0_like is x_0_hat)."""
    return (
        sp.sqrt(alpha_t) * (1 - alpha_bar_prev) * x_t
        + sp.sqrt(alpha_bar_prev) * (1 - alpha_t) * x_0_like
    ) / (1 - alpha_bar_t)


_VAR_Q_EXPR = (1 - alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)  # eq. (85)


def _posterior_steps():
    """The lines of eqs. (71)-(84) (see `forward_posterior`)."""
    a, ab, abp, x = alpha_t, alpha_bar_t, alpha_bar_prev, x_prev
    sq = sp.sqrt
    half = sp.Rational(1, 2)
    q = _Density
    lin = sq(a) * x_t / (1 - a) + sq(abp) * x_0 / (1 - abp)  # coefficient of -2 x_{t-1}
    precision = (1 - ab) / ((1 - a) * (1 - abp))
    mean = _mu_q_expr(x_0)
    C = x_t**2 / (1 - a) + abp * x_0**2 / (1 - abp) - (x_t - sq(ab) * x_0) ** 2 / (1 - ab)
    steps = [
        Step(
            q(x_t, x) * q(x, x_0) / q(x_t, x_0),
            "definition",
            "Bayes' rule; q(x_t | x_{t-1}, x_0) = q(x_t | x_{t-1}) by the Markov property",
            eq=71,
        ),
        Step(
            normal_pdf(x_t, sq(a) * x, 1 - a)
            * normal_pdf(x, sq(abp) * x_0, 1 - abp)
            / normal_pdf(x_t, sq(ab) * x_0, 1 - ab),
            "substitute",
            "insert the Gaussians of eqs. (31) and (70)",
            eq=72,
        ),
        Step(
            sp.exp(
                -(
                    (x_t - sq(a) * x) ** 2 / (2 * (1 - a))
                    + (x - sq(abp) * x_0) ** 2 / (2 * (1 - abp))
                    - (x_t - sq(ab) * x_0) ** 2 / (2 * (1 - ab))
                )
            ),
            "proportional",
            "drop the normalizing constants (free of x_{t-1})",
            eq=73,
            wrt=x,
        ),
        Step(
            sp.exp(
                -half
                * (
                    (x_t - sq(a) * x) ** 2 / (1 - a)
                    + (x - sq(abp) * x_0) ** 2 / (1 - abp)
                    - (x_t - sq(ab) * x_0) ** 2 / (1 - ab)
                )
            ),
            "algebra",
            "factor out one half",
            eq=74,
        ),
        Step(
            sp.exp(
                -half
                * (
                    (-2 * sq(a) * x_t * x + a * x**2) / (1 - a)
                    + (x**2 - 2 * sq(abp) * x * x_0) / (1 - abp)
                    + C
                )
            ),
            "algebra",
            "expand the squares; C(x_t, x_0) collects the terms free of x_{t-1}",
            eq=75,
        ),
        Step(
            sp.exp(
                -half
                * (
                    -2 * sq(a) * x_t * x / (1 - a)
                    + a * x**2 / (1 - a)
                    + x**2 / (1 - abp)
                    - 2 * sq(abp) * x * x_0 / (1 - abp)
                )
            ),
            "proportional",
            "drop exp(-C/2), a factor free of x_{t-1}",
            eq=76,
            wrt=x,
        ),
        Step(
            sp.exp(-half * ((a / (1 - a) + 1 / (1 - abp)) * x**2 - 2 * lin * x)),
            "algebra",
            "group the quadratic and linear terms in x_{t-1}",
            eq=77,
        ),
        Step(
            sp.exp(-half * ((a * (1 - abp) + 1 - a) / ((1 - a) * (1 - abp)) * x**2 - 2 * lin * x)),
            "algebra",
            "common denominator",
            eq=78,
        ),
        Step(
            sp.exp(
                -half
                # unevaluated, to show the paper's line before 1 - alpha_bar_t is collected
                * (
                    sp.Add(a, -ab, 1, -a, evaluate=False) / ((1 - a) * (1 - abp)) * x**2
                    - 2 * lin * x
                )
            ),
            "algebra",
            "alpha_t alpha_bar_{t-1} = alpha_bar_t",
            eq=79,
        ),
        Step(
            sp.exp(-half * (precision * x**2 - 2 * lin * x)),
            "algebra",
            "simplify the precision",
            eq=80,
        ),
        Step(
            sp.exp(-half * precision * (x**2 - 2 * lin / precision * x)),
            "algebra",
            "factor out the precision",
            eq=81,
        ),
        Step(
            sp.exp(-half * precision * (x**2 - 2 * lin * (1 - a) * (1 - abp) / (1 - ab) * x)),
            "algebra",
            "invert the fraction",
            eq=82,
        ),
        Step(
            sp.exp(-half / _VAR_Q_EXPR * (x**2 - 2 * mean * x)),
            "algebra",
            "identify the variance and the mean",
            eq=83,
        ),
        Step(
            normal_pdf(x, mean, _VAR_Q_EXPR),
            "proportional",
            "complete the square (see `posterior_complete_square`): a Gaussian density in "
            "x_{t-1} with mean mu_q (eq. (93)) and variance sigma_q^2 (eq. (85))",
            eq=84,
            wrt=x,
        ),
    ]
    return steps


def _posterior_results():
    """The closed forms mu_q and sigma_q^2, tied to `posterior_moments`."""
    a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev  # noqa: F841
    mean = _mu_q_expr(x_0)
    domains = {
        "x_t": "real",
        "x_0": "real",
        "alpha_t": "unit",
        "alpha_bar_t": "open_unit",
        "alpha_bar_prev": "unit",
    }
    results = (
        ClosedForm(
            "mu_q",
            (84, 93),
            mean,
            ("x_t", "x_0", "alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            domains,
            "Mean of the forward posterior q(x_{t-1} | x_t, x_0)",
            lhs=r"\mu_q(x_t, x_0)",
            line="moments",
            component=0,
        ),
        ClosedForm(
            "var_q",
            (85,),
            _VAR_Q_EXPR,
            ("alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            domains,
            "Variance of the forward posterior q(x_{t-1} | x_t, x_0) (per coordinate)",
            lhs=r"\sigma_q^2(t)",
            line="moments",
            component=1,
        ),
    )
    return results


@register(71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 93)
def forward_posterior() -> Derivation:
    """The forward posterior q(x_{t-1} | x_t, x_0) by completing the square, eqs. (71)-(85).

    Bayes' rule (eq. (71)) with the Gaussians q(x_t | x_{t-1}) (eq. (31)) and q(x_{t-1} | x_0),
    q(x_t | x_0) (eq. (70)) inserted (eq. (72)); normalizers dropped wrt x_{t-1} (eq. (73));
    the exponent expanded and grouped (eqs. (74)-(80), using alpha_bar_t = alpha_t
    alpha_bar_{t-1} at eq. (79)); the precision factored out (eqs. (81)-(83)); the square
    completed, identifying the mean mu_q (eqs. (84), (93)) and variance sigma_q^2 (eq. (85)).
    One coordinate: the covariance is isotropic, so every coordinate is the same 1-D problem.
    """
    a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev
    sq, q = sp.sqrt, _Density
    return Derivation(
        "the forward posterior by completing the square",
        _posterior_steps(),
        facts=(
            ALPHA_BAR,
            definition(q(x_t, x_prev), normal_pdf(x_t, sq(a) * x_prev, 1 - a), 31),
            lemma(q(x_prev, x_0), normal_pdf(x_prev, sq(abp) * x_0, 1 - abp), 70),
            lemma(q(x_t, x_0), normal_pdf(x_t, sq(ab) * x_0, 1 - ab), 70),
        ),
    )


@register(84, 85, 93)
def posterior_moments() -> Derivation:
    """Mean mu_q (eqs. (84), (93)) and variance sigma_q^2 (eq. (85)) of q(x_{t-1} | x_t, x_0).

    The engine completes the square in x_{t-1} of the exponent of q(x_t | x_{t-1})
    q(x_{t-1} | x_0) (eq. (72)); with alpha_bar_t = alpha_t alpha_bar_{t-1} its mean and
    variance are the paper's.
    """
    a, abp, x = alpha_t, alpha_bar_prev, x_prev
    exponent = -((x_t - sp.sqrt(a) * x) ** 2) / (2 * (1 - a)) - (x - sp.sqrt(abp) * x_0) ** 2 / (
        2 * (1 - abp)
    )
    mean_, var_, _ = complete_square(exponent, x)
    steps = [
        Step(sp.Tuple(mean_, var_), "definition", "(mean, variance) of the completed square"),
        Step(
            sp.Tuple(_mu_q_expr(x_0), _VAR_Q_EXPR),
            "complete_square",
            "written as the paper writes them",
            name="moments",
        ),
    ]
    return Derivation(
        "the forward posterior's mean and variance",
        steps,
        facts=(ALPHA_BAR,),
        results=_posterior_results(),
    )


@register(83, 84, 85)
def posterior_complete_square() -> Derivation:
    """Completing the square in the exponent of eq. (83) gives eqs. (84), (85).

    The exponent -(x^2 - 2 mu_q x) / (2 sigma_q^2) equals -(x - mu_q)^2 / (2 sigma_q^2) plus
    a term free of x_{t-1}: the kernel of N(mu_q, sigma_q^2). Checked on the exponent (a
    rational function) rather than on exp(...), where the engine's expand cannot cancel
    exp(mu^2) exp(-mu^2).
    """
    x, half = x_prev, sp.Rational(1, 2)
    mean = _mu_q_expr(x_0)
    steps = [
        Step(
            -half / _VAR_Q_EXPR * (x**2 - 2 * mean * x),
            "definition",
            "the exponent of eq. (83)",
            eq=83,
        ),
        Step(
            -((x - mean) ** 2) / (2 * _VAR_Q_EXPR) + mean**2 / (2 * _VAR_Q_EXPR),
            "complete_square",
            "x^2 - 2 mu x = (x - mu)^2 - mu^2: mean mu_q (eq. (84)), variance sigma_q^2 (eq. (85))",
        ),
    ]
    return Derivation(
        "complete the square in the posterior's exponent",
        steps,
        facts=(ALPHA_BAR,),
    )
