"""Variational diffusion models (paper section 2.1, eqs. (30)-(100)): SymPy derivations.

Worked examples of the pattern every section follows: q(x_t | x_0) by induction over t
(eqs. (59)-(70)) and the Gaussian KL divergence by the expectation of a quadratic (eq. (86)).
"""

from __future__ import annotations

import sympy as sp

from derivations.core import ClosedForm, Derivation, Step, log_normal_pdf
from derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    eps,
    mean_p,
    mean_q,
    var_p,
    var_q,
    x_0,
)
from udm import register

# --- Forward process and the two ELBO derivations, eqs. (30)-(58) ---------------------------
# (region: VDM ELBO)


# --- q(x_t | x_0) by recursive reparameterization, eqs. (59)-(70) ------------------------------

# Independent standard normals of the reparameterization (eqs. (59)-(66)).
eps_t, eps_prev = sp.symbols("epsilon_t^* epsilon_{t-1}^*", real=True)
x_t_minus_2 = sp.Symbol("x_{t-2}", real=True)
alpha_t_minus_1 = sp.Symbol("alpha_{t-1}", positive=True)


@register(59, 60, 61, 62, 63, 64, 65, 66, status="symbolic")
def forward_two_steps() -> Derivation:
    """Two forward steps collapse into one Gaussian step, eqs. (59)-(66).

    x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps (eq. (59)), applied twice, has the law
    of sqrt(alpha_t alpha_{t-1}) x_{t-2} + sqrt(1 - alpha_t alpha_{t-1}) eps.
    """
    a, a1 = alpha_t, alpha_t_minus_1
    x_t_minus_1 = sp.Symbol("x_{t-1}", real=True)
    x_prev = sp.sqrt(a1) * x_t_minus_2 + sp.sqrt(1 - a1) * eps_prev  # eq. (60)
    noise = (eps_t, eps_prev)
    steps = [
        Step(
            sp.sqrt(a) * x_t_minus_1 + sp.sqrt(1 - a) * eps_t,
            "definition",
            "one forward step, reparameterized",
            eq=61,
        ),
        Step(
            sp.sqrt(a) * x_prev + sp.sqrt(1 - a) * eps_t,
            "substitute",
            "insert eq. (60) for x_{t-1}",
            eq=62,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(a - a * a1) * eps_prev + sp.sqrt(1 - a) * eps_t,
            "algebra",
            "expand",
            eq=63,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2
            + sp.sqrt(sp.sqrt(a - a * a1) ** 2 + sp.sqrt(1 - a) ** 2) * eps_prev,
            "sum_gaussians",
            "merge two independent Gaussians",
            eq=64,
            noise=noise,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(a - a * a1 + 1 - a) * eps_prev,
            "algebra",
            "square roots squared",
            eq=65,
        ),
        Step(
            sp.sqrt(a * a1) * x_t_minus_2 + sp.sqrt(1 - a * a1) * eps_prev,
            "algebra",
            "cancel alpha_t",
            eq=66,
        ),
    ]
    return Derivation(
        "two forward steps are one Gaussian step",
        (59, 60, 61, 62, 63, 64, 65, 66),
        steps,
        facts={x_t_minus_1: x_prev},
    )


@register(67, 68, 69, 70, status="symbolic")
def forward_marginal() -> Derivation:
    """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), eqs. (67)-(70), by induction.

    Base case t = 1: alpha_bar_1 = alpha_1 and the claim is eq. (59). Inductive step: if
    x_{t-1} = sqrt(alpha_bar_{t-1}) x_0 + sqrt(1 - alpha_bar_{t-1}) eps', one more step
    (eq. (59)) gives the claim at t, using alpha_bar_t = alpha_t alpha_bar_{t-1}.
    """
    eps_step, eps_hist = sp.symbols("epsilon epsilon'", real=True)
    x_prev = sp.sqrt(alpha_bar_prev) * x_0 + sp.sqrt(1 - alpha_bar_prev) * eps_hist
    steps = [
        Step(
            sp.sqrt(alpha_t) * x_prev + sp.sqrt(1 - alpha_t) * eps_step,
            "definition",
            "one step (eq. (59)) from the induction hypothesis at t - 1",
        ),
        Step(
            sp.sqrt(alpha_t * alpha_bar_prev) * x_0
            + sp.sqrt(alpha_t * (1 - alpha_bar_prev) + 1 - alpha_t) * eps,
            "sum_gaussians",
            "merge the two independent noises",
            noise=(eps_step, eps_hist, eps),
            eq=68,
        ),
        Step(
            sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps,
            "algebra",
            "alpha_bar_t = alpha_t alpha_bar_{t-1}",
            eq=69,
        ),
    ]
    domains = {"x_0": "real", "alpha_bar_t": "unit", "eps": "real"}
    results = (
        ClosedForm(
            "q_mean",
            (70,),
            sp.sqrt(alpha_bar_t) * x_0,
            ("x_0", "alpha_bar_t"),
            domains,
            "Mean of q(x_t | x_0)",
            lhs=r"\mathbb{E}[x_t \mid x_0]",
        ),
        ClosedForm(
            "q_var",
            (70,),
            1 - alpha_bar_t,
            ("alpha_bar_t",),
            domains,
            "Variance of q(x_t | x_0) (per coordinate)",
            lhs=r"\mathrm{Var}[x_t \mid x_0]",
        ),
        ClosedForm(
            "q_sample",
            (69,),
            sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps,
            ("x_0", "alpha_bar_t", "eps"),
            domains,
            "Reparameterized sample of q(x_t | x_0) from standard normal noise eps",
            lhs="x_t",
        ),
    )
    return Derivation(
        "q(x_t | x_0) by induction over t",
        (67, 68, 69, 70),
        steps,
        facts={alpha_bar_t: alpha_t * alpha_bar_prev},
        results=results,
    )


# --- The forward posterior q(x_{t-1} | x_t, x_0), eqs. (71)-(85) --------------------------------
# (region: VDM posterior)

from derivations.core import normal_pdf  # noqa: E402
from derivations.symbols import x_prev, x_t  # noqa: E402

# Symbols of this region (NOTATION names). mu_q / mu_theta stand for the means when a step
# keeps them abstract; the facts of each derivation replace them by eqs. (93), (94).
mu_q, mu_theta = sp.symbols("mu_q mu_theta", real=True)
_POSTERIOR_FACTS = {alpha_bar_t: alpha_t * alpha_bar_prev}


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


@register(71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 93, status="symbolic")
def forward_posterior() -> Derivation:
    """The forward posterior q(x_{t-1} | x_t, x_0) by completing the square, eqs. (71)-(85).

    Bayes' rule (eq. (71)) with the Gaussians q(x_t | x_{t-1}) (eq. (31)) and q(x_{t-1} | x_0),
    q(x_t | x_0) (eq. (70)) inserted (eq. (72)); normalizers dropped wrt x_{t-1} (eq. (73));
    the exponent expanded and grouped (eqs. (74)-(80), using alpha_bar_t = alpha_t
    alpha_bar_{t-1} at eq. (79)); the precision factored out (eqs. (81)-(83)); the square
    completed, identifying the mean mu_q (eqs. (84), (93)) and variance sigma_q^2 (eq. (85)).
    One coordinate: the covariance is isotropic, so every coordinate is the same 1-D problem.
    """
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
        ),
        ClosedForm(
            "var_q",
            (85,),
            _VAR_Q_EXPR,
            ("alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            domains,
            "Variance of the forward posterior q(x_{t-1} | x_t, x_0) (per coordinate)",
            lhs=r"\sigma_q^2(t)",
        ),
    )
    return Derivation(
        "the forward posterior by completing the square",
        (71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 93),
        steps,
        facts={
            **_POSTERIOR_FACTS,
            q(x_t, x): normal_pdf(x_t, sq(a) * x, 1 - a),
            q(x, x_0): normal_pdf(x, sq(abp) * x_0, 1 - abp),
            q(x_t, x_0): normal_pdf(x_t, sq(ab) * x_0, 1 - ab),
        },
        results=results,
    )


@register(83, 84, 85, status="symbolic")
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
            eq=84,
        ),
    ]
    return Derivation(
        "complete the square in the posterior's exponent",
        (83, 84, 85),
        steps,
        facts=dict(_POSTERIOR_FACTS),
    )


# --- KL between Gaussians and the denoising objective, eqs. (86)-(100) ---------------------------


@register(86, status="instance")
def gaussian_kl() -> Derivation:
    """KL divergence between Gaussians, eq. (86), per coordinate of a diagonal covariance.

    KL(N(mean_q, var_q) || N(mean_p, var_p)) = E_q[log q - log p], taken as the expectation
    of a quadratic by its moments. For diagonal covariances the d-dimensional KL of eq. (86)
    is the sum of these per-coordinate terms (family: diagonal Gaussians).
    """
    x = sp.Symbol("x", real=True)
    closed = (sp.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1) / 2
    steps = [
        Step(
            log_normal_pdf(x, mean_q, var_q) - log_normal_pdf(x, mean_p, var_p),
            "definition",
            "log q(x) - log p(x), the integrand of the KL",
        ),
        Step(
            closed,
            "expectation",
            "E[x] = mean_q, E[x^2] = var_q + mean_q^2",
            eq=86,
            over=(x, mean_q, var_q),
        ),
    ]
    domains = {"mean_q": "real", "var_q": "positive", "mean_p": "real", "var_p": "positive"}
    results = (
        ClosedForm(
            "kl_normal",
            (86,),
            closed,
            ("mean_q", "var_q", "mean_p", "var_p"),
            domains,
            "KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate (sum over "
            "coordinates for a diagonal covariance)",
            lhs=r"D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_p, \sigma_p^2))",
        ),
    )
    return Derivation(
        "KL between Gaussians",
        (86,),
        steps,
        family="diagonal Gaussians (per coordinate)",
        results=results,
    )


# (region: VDM denoising objective, eqs. (87)-(100))

from derivations.symbols import x_0_hat  # noqa: E402


@register(87, 88, 89, 90, 91, 92, status="symbolic")
def denoising_kl_matched_variance() -> Derivation:
    """The denoising KL with matched variances is a scaled squared distance, eqs. (87)-(92).

    KL(N(mu_q, sigma_q^2) || N(mu_theta, sigma_q^2)) per coordinate: E_q[log q - log p] by
    the moments of q (eqs. (87), (88)); the log-determinant and trace terms cancel (eqs.
    (89), (90)); what remains is (mu_theta - mu_q)^2 / (2 sigma_q^2) (eqs. (91), (92)). The
    covariance sigma_q^2 I is isotropic, so the d-dimensional KL is the sum of the
    coordinates' terms: ||mu_theta - mu_q||^2 / (2 sigma_q^2).
    """
    x = sp.Symbol("x", real=True)
    half = sp.Rational(1, 2)
    sq_dist = (mu_theta - mu_q) ** 2
    steps = [
        Step(
            log_normal_pdf(x, mu_q, var_q) - log_normal_pdf(x, mu_theta, var_q),
            "definition",
            "log q(x) - log p_theta(x) with the shared variance sigma_q^2",
            eq=87,
        ),
        Step(
            half * (sp.log(var_q / var_q) - 1 + var_q / var_q + sq_dist / var_q),
            "expectation",
            "the Gaussian KL (eq. (86)) with Sigma_p = Sigma_q, by the moments of q",
            eq=88,
            over=(x, mu_q, var_q),
        ),
        Step(half * (sp.log(1) - 1 + 1 + sq_dist / var_q), "algebra", "simplify", eq=89),
        Step(half * sq_dist / var_q, "algebra", "only the quadratic term remains", eq=90),
        Step(half * sq_dist * (1 / var_q), "algebra", "isotropic covariance", eq=91),
        Step(
            sq_dist / (2 * var_q),
            "algebra",
            "a weighted squared distance (sum over coordinates for d > 1)",
            eq=92,
        ),
    ]
    domains = {"mu_q": "real", "mu_theta": "real", "var_q": "positive"}
    results = (
        ClosedForm(
            "denoising_kl",
            (92,),
            sq_dist / (2 * var_q),
            ("mu_q", "mu_theta", "var_q"),
            domains,
            "KL(N(mu_q, var_q) || N(mu_theta, var_q)) per coordinate (sum over coordinates)",
            lhs=r"D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_\theta, \sigma_q^2))",
        ),
    )
    return Derivation(
        "the denoising KL with matched variances", (87, 88, 89, 90, 91, 92), steps, results=results
    )


@register(94, 95, 96, 97, 98, 99, status="symbolic")
def x_0_objective() -> Derivation:
    """The denoising KL under the x_0 parameterization is a weighted regression, eqs. (94)-(99).

    With mu_theta written through x_0_hat (eq. (94), the form of mu_q in eq. (93) with x_0
    replaced by the prediction), the x_t terms cancel (eqs. (96), (97)) and the KL per
    coordinate is alpha_bar_{t-1} (1 - alpha_t)^2 / (2 sigma_q^2 (1 - alpha_bar_t)^2)
    (x_0_hat - x_0)^2 (eqs. (98), (99)); inserting sigma_q^2 (eq. (85)) gives the weight
    alpha_bar_{t-1} (1 - alpha_t) / (2 (1 - alpha_bar_{t-1}) (1 - alpha_bar_t)), t >= 2.
    """
    a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev
    coef = sp.sqrt(abp) * (1 - a) / (1 - ab)
    steps = [
        Step(
            (mu_theta - mu_q) ** 2 / (2 * var_q),
            "definition",
            "the matched-variance KL (eq. (92)) per coordinate",
            eq=95,
        ),
        Step(
            (_mu_q_expr(x_0_hat) - _mu_q_expr(x_0)) ** 2 / (2 * var_q),
            "substitute",
            "mu_theta from eq. (94), mu_q from eq. (93)",
            eq=96,
        ),
        Step(
            (coef * x_0_hat - coef * x_0) ** 2 / (2 * var_q),
            "algebra",
            "the x_t terms cancel",
            eq=97,
        ),
        Step((coef * (x_0_hat - x_0)) ** 2 / (2 * var_q), "algebra", "factor", eq=98),
        Step(
            1 / (2 * var_q) * abp * (1 - a) ** 2 / (1 - ab) ** 2 * (x_0_hat - x_0) ** 2,
            "algebra",
            "square the coefficient",
            eq=99,
        ),
        Step(
            abp * (1 - a) / (2 * (1 - abp) * (1 - ab)) * (x_0_hat - x_0) ** 2,
            "substitute",
            "insert sigma_q^2 (eq. (85))",
        ),
    ]
    domains = {
        "x_t": "real",
        "x_0_hat": "real",
        "alpha_t": "unit",
        "alpha_bar_t": "open_unit",
        "alpha_bar_prev": "open_unit",
    }
    results = (
        ClosedForm(
            "mu_theta",
            (94,),
            _mu_q_expr(x_0_hat),
            ("x_t", "x_0_hat", "alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            {**domains, "alpha_bar_prev": "unit"},
            "Mean of p_theta(x_{t-1} | x_t) through the prediction x_0_hat",
            lhs=r"\mu_\theta(x_t, t)",
        ),
        ClosedForm(
            "x_0_loss_weight",
            (99,),
            abp * (1 - a) ** 2 / (2 * _VAR_Q_EXPR * (1 - ab) ** 2),
            ("alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            domains,
            "Weight of ||x_0_hat - x_0||^2 in the denoising KL (t >= 2)",
            lhs=r"\frac{1}{2\sigma_q^2(t)}\frac{\bar\alpha_{t-1}(1-\alpha_t)^2}{(1-\bar\alpha_t)^2}",
        ),
    )
    return Derivation(
        "the x_0-prediction objective",
        (94, 95, 96, 97, 98, 99),
        steps,
        facts={
            **_POSTERIOR_FACTS,
            # substituted before alpha_bar_t is (dict order is not substitution order)
            mu_theta: _mu_q_expr(x_0_hat).subs(_POSTERIOR_FACTS),
            mu_q: _mu_q_expr(x_0).subs(_POSTERIOR_FACTS),
            var_q: _VAR_Q_EXPR.subs(_POSTERIOR_FACTS),
        },
        results=results,
    )


@register(100, status="definition")
def uniform_t_objective() -> Derivation:
    """The sum of denoising terms as an expectation over a uniform time step, eq. (100).

    sum_{t=2}^T L_t = (T - 1) E_{t ~ U{2, T}}[L_t]: minimizing one is minimizing the other,
    and one t per sample gives an unbiased stochastic estimate (torch_impl.vdm.training_loss).
    """
    t, T = sp.symbols("t T", integer=True, positive=True)
    L = sp.Function("L")
    steps = [
        Step(
            sp.Eq(sp.Sum(L(t), (t, 2, T)), (T - 1) * sp.Sum(L(t) / (T - 1), (t, 2, T))),
            "definition",
            "E_{t ~ U{2, T}}[L_t] = sum_{t=2}^T L_t / (T - 1)",
            eq=100,
        ),
    ]
    return Derivation("denoising terms as an expectation over t", (100,), steps)
