"""The Gaussian KL (eq. (86)) and the denoising objective in its x_0 form (eqs. (87)-(100)).

SymPy derivations of paper section 2.1 (Variational Diffusion Models); see
`udm.derivations.vdm` for the whole section."""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations._stable import expm1mx, log_ratio
from udm.derivations.core import (
    KL,
    ClosedForm,
    Derivation,
    Step,
    complete_square,
    definition,
    lemma,
    log_normal_pdf,
)
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    mean_p,
    mean_q,
    var_p,
    var_q,
    x_0,
    x_0_hat,
    x_prev,
    x_t,
)
from udm.derivations.vdm._common import ALPHA_BAR
from udm.derivations.vdm.posterior import _POSTERIOR_FACTS, _VAR_Q_EXPR, _mu_q_expr, mu_q, mu_theta

# --- KL between Gaussians and the denoising objective, eqs. (86)-(100) ---------------------------


@register(86)
def gaussian_kl() -> Derivation:
    """KL divergence between Gaussians, eq. (86), per coordinate of a diagonal covariance.

    KL(N(mean_q, var_q) || N(mean_p, var_p)) = E_q[log q - log p], taken as the expectation
    of a quadratic by its moments. For diagonal covariances the d-dimensional KL of eq. (86)
    is the sum of these per-coordinate terms (family: diagonal Gaussians).
    """
    x = sp.Symbol("x", real=True)
    closed = (sp.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1) / 2
    # (1/2)(r - 1 - log r + d^2 / var_p), r = var_q / var_p, with r - 1 - log r = expm1(u) - u
    # at u = log r: keeps full relative accuracy when the two Gaussians nearly agree
    stable = (expm1mx(log_ratio(var_q, var_p)) + (mean_q - mean_p) ** 2 / var_p) / 2
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
        Step(
            stable,
            "algebra",
            "r = var_q / var_p: r - 1 - log r = expm1(u) - u at u = log r, no cancellation "
            "when r is near 1",
            name="stable",
        ),
    ]
    domains = {"mean_q": "real", "var_q": "positive", "mean_p": "real", "var_p": "positive"}
    results = (
        ClosedForm(
            "kl_normal",
            (86,),
            stable,
            ("mean_q", "var_q", "mean_p", "var_p"),
            domains,
            "KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate (sum over "
            "coordinates for a diagonal covariance)",
            lhs=r"D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_p, \sigma_p^2))",
            line="stable",
        ),
    )
    return Derivation(
        "KL between Gaussians",
        steps,
        family="diagonal Gaussians (per coordinate)",
        results=results,
    )


@register(87, 88, 89, 90, 91, 92)
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
            line=92,
        ),
    )
    return Derivation("the denoising KL with matched variances", steps, results=results)


@register(94, 95, 96, 97, 98, 99)
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
            KL.normal(mu_q, var_q, mu_theta, var_q).expr,
            "definition",
            "KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)), equal variances, per coordinate",
        ),
        Step(
            (mu_theta - mu_q) ** 2 / (2 * var_q),
            "gaussian_kl",
            "the matched-variance KL (eq. (92))",
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
            "x_0_loss_weight",
            (99, 101),
            abp * (1 - a) ** 2 / (2 * _VAR_Q_EXPR * (1 - ab) ** 2),
            ("alpha_t", "alpha_bar_t", "alpha_bar_prev"),
            domains,
            "Weight of ||x_0_hat - x_0||^2 in the denoising KL (t >= 2)",
            lhs=r"\frac{1}{2\sigma_q^2(t)}\frac{\bar\alpha_{t-1}(1-\alpha_t)^2}{(1-\bar\alpha_t)^2}",
            line=99,
            rename={x_0_hat: x_0 + 1},  # the weight: line (99) at a unit error
        ),
    )
    return Derivation(
        "the x_0-prediction objective",
        steps,
        facts=(
            # substituted before alpha_bar_t is (dict order is not substitution order)
            definition(mu_theta, _mu_q_expr(x_0_hat).subs(_POSTERIOR_FACTS), 94),
            lemma(mu_q, _mu_q_expr(x_0).subs(_POSTERIOR_FACTS), 84),
            definition(var_q, _VAR_Q_EXPR.subs(_POSTERIOR_FACTS), 85),
            ALPHA_BAR,
        ),
        results=results,
    )


@register(93)
def posterior_mean() -> Derivation:
    """mu_q(x_t, x_0), eq. (93): the mean of the square completed in x_{t-1} (eq. (72))."""
    a, abp, x = alpha_t, alpha_bar_prev, x_prev
    exponent = -((x_t - sp.sqrt(a) * x) ** 2) / (2 * (1 - a)) - (x - sp.sqrt(abp) * x_0) ** 2 / (
        2 * (1 - abp)
    )
    mean_, _, _ = complete_square(exponent, x)
    steps = [
        Step(mean_, "definition", "the mean of the completed square"),
        Step(_mu_q_expr(x_0), "complete_square", "as the paper writes it", eq=93),
    ]
    return Derivation("the forward posterior's mean", steps, facts=(ALPHA_BAR,))


@register(94)
def mu_theta_definition() -> Derivation:
    """mu_theta(x_t, t): mu_q (eq. (93)) with x_0 replaced by the prediction x_0_hat, eq. (94).

    No closed form of its own: the runtime layers compute mu_theta by calling mu_q at
    x_0 = x_0_hat (one source for the formula)."""
    steps = [Step(_mu_q_expr(x_0_hat), "definition", "the mean of p_theta(x_{t-1} | x_t)", eq=94)]
    return Derivation("the x_0-parameterized mean", steps)


@register(100)
def uniform_t_objective() -> Derivation:
    """The sum of denoising terms as an expectation over a uniform time step, eq. (100).

    sum_{t=2}^T L_t = (T - 1) E_{t ~ U{2, T}}[L_t]: minimizing one is minimizing the other,
    and one t per sample gives an unbiased stochastic estimate (udm.torch_impl.vdm.training_loss).
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
    return Derivation("denoising terms as an expectation over t", steps)
