"""Score-based generative models (paper section 3, eqs. (152)-(161)): SymPy derivations.

The energy-based score (eqs. (152)-(156)) is proved for a generic function f (every
differentiable energy); score matching, Langevin dynamics, Gaussian perturbation and the
SDE view are proved on Gaussian families, where every expectation is closed form.
"""

from __future__ import annotations

import sympy as sp

from udm import checks, register
from udm.derivations.core import ClosedForm, Derivation, Step, definition, gaussian_law
from udm.derivations.symbols import eps, mean, score_hat, sigma, step_size, var

x = sp.Symbol("x", real=True)
Z = sp.Symbol("Z_theta", positive=True)
f = sp.Function("f_theta")
p_theta = sp.Function("p_theta", positive=True)  # a density
# Gaussian families: data N(mean, var); a linear score model s(x) = a x + b
a, b = sp.symbols("a b", real=True)
xi = sp.Symbol("xi", real=True)  # a second independent standard normal
alpha_bar_t = sp.Symbol("alpha_bar_t", positive=True)
beta, dt = sp.symbols("beta dt", positive=True)
var_t = sp.Symbol("var_t", positive=True)


# --- the energy-based model and its score, eqs. (152)-(156) --------------------------------


@register(152, 153, 154, 155)
def energy_score() -> Derivation:
    """The score of p(x) = exp(-f(x)) / Z does not depend on Z, eqs. (152)-(156).

    p_theta(x) = exp(-f_theta(x)) / Z_theta (eq. (152)); its score (eq. (153)) splits into
    grad log(1 / Z) + grad log exp(-f) (eq. (154)); Z does not depend on x, so the score is
    -grad f (eq. (155)), which a network s_theta models directly (`score_model`). Proved for
    a generic differentiable real f (its value and derivative are free real symbols).
    """
    steps = [
        Step(sp.Derivative(sp.log(p_theta(x)), x), "definition", "the score of p_theta"),
        Step(
            sp.Derivative(sp.log(sp.exp(-f(x)) / Z), x),
            "substitute",
            "p_theta(x) = exp(-f_theta(x)) / Z_theta (eq. (152))",
            eq=153,
        ),
        Step(
            sp.Derivative(sp.log(1 / Z), x) + sp.Derivative(sp.log(sp.exp(-f(x))), x),
            "log_rules",
            "log of a product",
            eq=154,
        ),
        Step(-sp.Derivative(f(x), x), "differentiate", "Z_theta is constant in x", eq=155),
    ]
    return Derivation(
        "score of an energy-based model",
        steps,
        facts=(definition(p_theta(x), sp.exp(-f(x)) / Z, 152),),
    )


@register(156)
def score_model() -> Derivation:
    """The score model s_theta(x) approximates -grad f_theta(x) directly, eq. (156)."""
    steps = [Step(-sp.Derivative(f(x), x), "definition", "s_theta(x) models this", eq=156)]
    return Derivation("the score model", steps)


# --- score matching, eq. (157) ----------------------------------------------------------------

# target variance of the data perturbed by N(0, sigma^2): N(mean, var + sigma^2)
_var_pert = var + sigma**2


def _esm_closed_form():
    """E_{x ~ N(mean, var + sigma^2)}[(a x + b - score(x))^2], score(x) = -(x - mean)/(var + sigma^2)."""
    y = sp.Symbol("y", real=True)
    integrand = (a * y + b + (y - mean) / _var_pert) ** 2
    from udm.derivations.core import expect_normal

    return sp.expand(expect_normal(integrand, y, mean, _var_pert))


@register(157)
def explicit_score_matching() -> Derivation:
    """Fisher divergence (explicit score matching), eq. (157), on Gaussian data.

    E_{p(x)} ||s_theta(x) - grad log p(x)||^2 for p = N(mean, var) (here already perturbed:
    var stands for var + sigma^2) and a linear model s(x) = a x + b, by moments.
    """
    y = sp.Symbol("y", real=True)
    steps = [
        Step((a * y + b + (y - mean) / _var_pert) ** 2, "definition", "eq. (157) integrand"),
        Step(
            _esm_closed_form(),
            "expectation",
            "E[y] = mean, E[y^2] = var + mean^2",
            eq=157,
            over=(y, mean, _var_pert),
        ),
    ]
    return Derivation(
        "explicit score matching objective",
        steps,
        family="Gaussian data N(mean, var + sigma^2), linear score model a x + b",
    )


@register(157, 160, 161)
def denoising_score_matching() -> Derivation:
    """Denoising and explicit score matching differ by a constant, eqs. (157), (160), (161).

    Denoising score matching (Vincent 2011) regresses s(x~) on grad log N(x~; x, sigma^2)
    = -(x~ - x) / sigma^2 with x ~ p, x~ = x + sigma eps. On Gaussian data p = N(mean, var)
    and a linear model s(x) = a x + b, its objective equals the explicit objective of
    eq. (157) for the perturbed density p_sigma = N(mean, var + sigma^2) (eq. (160)) plus
    C = 1/sigma^2 - 1/(var + sigma^2), which does not depend on the model (a, b): both
    objectives have the same minimizer, which is what eq. (161) uses at every noise level.

    General identity (Vincent 2011, integration by parts): for any model s and any data
    density p, E_{x, x~} ||s(x~) + (x~ - x)/sigma^2||^2 = E_{p_sigma} ||s(x~) - grad log
    p_sigma(x~)||^2 + C, C independent of s; assumptions: p_sigma differentiable, s and
    grad log p_sigma square-integrable under p_sigma, and s(x~) p_sigma(x~) -> 0 as
    |x~| -> infinity (the boundary term of the integration by parts vanishes).
    """
    const = 1 / sigma**2 - 1 / _var_pert
    steps = [
        Step(
            (a * (x + sigma * eps) + b + eps / sigma) ** 2,
            "definition",
            "DSM integrand: x~ = x + sigma eps, target -(x~ - x)/sigma^2 = -eps/sigma",
        ),
        Step(
            sp.expand((a * x + b) ** 2 + (a * sigma + 1 / sigma) ** 2),
            "expectation",
            "E[eps] = 0, E[eps^2] = 1",
            over=(eps, 0, 1),
        ),
        Step(
            sp.expand((a * mean + b) ** 2 + a**2 * var + (a * sigma + 1 / sigma) ** 2),
            "expectation",
            "x ~ N(mean, var)",
            over=(x, mean, var),
        ),
        Step(
            _esm_closed_form() + const,
            "algebra",
            "= explicit objective for p_sigma (eq. (157)) + a constant free of a, b",
            name="dsm",
        ),
    ]
    return Derivation(
        "denoising score matching = explicit score matching + constant",
        steps,
        family="Gaussian data N(mean, var), linear score model a x + b",
    )


@register(157)
def dsm_esm_gap() -> Derivation:
    """J_DSM - J_ESM = 1/sigma^2 - 1/(var + sigma^2), free of the model: the gap of eq. (157)'s
    denoising form (`denoising_score_matching`), as the generated reference computes it."""
    const = 1 / sigma**2 - 1 / _var_pert
    dsm = denoising_score_matching().steps[-2].expr  # the DSM objective, as derived there
    steps = [
        Step(dsm - _esm_closed_form(), "definition", "DSM objective minus ESM objective"),
        Step(const, "algebra", "the model's a, b cancel", name="gap"),
    ]
    return Derivation(
        "the DSM - ESM gap",
        steps,
        family="Gaussian data N(mean, var), linear score model a x + b",
        results=(
            ClosedForm(
                "dsm_esm_gap",
                (157, 161),
                const,
                ("var", "sigma"),
                {"var": "positive", "sigma": "positive"},
                "Denoising minus explicit score-matching objective for N(mean, var) data "
                "perturbed by N(0, sigma^2) (independent of the model)",
                lhs=r"J_{\mathrm{DSM}} - J_{\mathrm{ESM}}",
                line="gap",
            ),
        ),
    )


# --- Langevin dynamics, eq. (158) ---------------------------------------------------------------


_mu = sp.Symbol("mu", real=True)
_s2 = sp.Symbol("s2", positive=True)


def _langevin_law():
    """(mean, variance) after one Langevin step from N(mu, s2) on the target N(mean, var)."""
    c = step_size
    return _mu + c * (mean - _mu) / var, (1 - c / var) ** 2 * _s2 + 2 * c


_stationary_var = 2 * var**2 / (2 * var - step_size)


@register(158)
def langevin_gaussian() -> Derivation:
    """One Langevin step with the exact score of N(mean, var), eq. (158).

    x' = x + c grad log p(x) + sqrt(2c) eps with grad log p(x) = -(x - mean) / var maps
    x ~ N(mu, s2) to N(mu + c (mean - mu)/var, (1 - c/var)^2 s2 + 2c).
    """
    x_i = _mu + sp.sqrt(_s2) * xi
    c = step_size
    new_mean, new_var = _langevin_law()
    steps = [
        Step(
            x_i + c * (-(x_i - mean) / var) + sp.sqrt(2 * c) * eps,
            "definition",
            "eq. (158) from x_i = mu + sqrt(s2) xi",
            eq=158,
        ),
        Step(
            new_mean + sp.sqrt(new_var) * eps,
            "sum_gaussians",
            "the update is linear in independent normals",
            noise=(xi, eps),
        ),
    ]
    return Derivation(
        "one Langevin step on a Gaussian target",
        steps,
        family="Gaussian target N(mean, var), Gaussian initial law N(mu, s2)",
    )


@register(158)
def langevin_stationary() -> Derivation:
    """The stationary law of Langevin dynamics (eq. (158)) on N(mean, var) tends to it as c -> 0.

    With facts mu = mean, s2 = 2 var^2 / (2 var - c) (0 < c < 2 var), one step (the law of
    `langevin_gaussian`) returns the same mean and variance: a fixed point, which the map
    (a contraction for 0 < c < 2 var) converges to from any Gaussian start. Its variance is
    var + c var / (2 var - c): the bias vanishes as the step size c -> 0, so the stationary
    law tends to the target N(mean, var).
    """
    new_mean, new_var = _langevin_law()
    c = step_size
    steps = [
        Step(
            sp.Tuple(new_mean, new_var).subs({_mu: mean, _s2: _stationary_var}),
            "definition",
            "law after one step from N(mean, 2 var^2 / (2 var - c))",
        ),
        Step(
            sp.Tuple(mean, _stationary_var),
            "algebra",
            "at the fixed point: unchanged",
            name="fixed",
        ),
        Step(
            sp.Tuple(mean, var + c * var / (2 * var - c)),
            "algebra",
            "stationary variance = var + O(c)",
        ),
    ]
    return Derivation(
        "stationary law of Langevin dynamics on a Gaussian target",
        steps,
        family="Gaussian target N(mean, var), Gaussian initial law",
        results=(
            ClosedForm(
                "langevin_stationary_var",
                (158,),
                _stationary_var,
                ("var", "step_size"),
                {"var": "positive", "step_size": "positive"},
                "Stationary variance of Langevin dynamics with step size c < 2 var on the "
                "target N(mean, var)",
                lhs=r"\sigma_\infty^2",
                line="fixed",
                component=1,
            ),
        ),
    )


# --- mixtures and Gaussian perturbation, eqs. (159)-(160) ------------------------------------


@register(159, 160)
def perturbed_gaussian() -> Derivation:
    """A Gaussian (mixture) perturbed with Gaussian noise, eqs. (159), (160).

    Perturbing x ~ N(mean, var) by N(0, sigma^2) (eq. (160)) is the sum of independent
    Gaussians: N(mean, var + sigma^2). Convolution is linear, so the mixture
    c_1 p_1 + c_2 p_2 of eq. (159) perturbs componentwise. The variance-preserving forward
    process x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps maps a component to
    N(sqrt(alpha_bar_t) mean, alpha_bar_t var + 1 - alpha_bar_t).
    """
    x_data = mean + sp.sqrt(var) * xi
    sp.sqrt(alpha_bar_t) * mean
    alpha_bar_t * var + 1 - alpha_bar_t
    steps = [
        Step(x_data + sigma * eps, "definition", "x_t = x + sigma eps, x ~ N(mean, var)", eq=160),
        Step(
            mean + sp.sqrt(var + sigma**2) * eps,
            "sum_gaussians",
            "variances add",
            noise=(xi, eps),
        ),
    ]
    return Derivation(
        "Gaussian perturbation of a Gaussian",
        steps,
        family="Gaussian mixture components",
    )


@register(159, 160)
def perturbed_laws() -> Derivation:
    """Mean and variance of a Gaussian (mixture component) after perturbation, eqs. (159), (160).

    Read off by the engine (`gaussian_law`) from the perturbed samples x + sigma eps and
    sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) eps, x = mean + sqrt(var) xi.
    """
    x_data = mean + sp.sqrt(var) * xi
    vp_mean = sp.sqrt(alpha_bar_t) * mean
    vp_var = alpha_bar_t * var + 1 - alpha_bar_t
    noise = (xi, eps)
    laws = (
        *gaussian_law(x_data + sigma * eps, noise),
        *gaussian_law(sp.sqrt(alpha_bar_t) * x_data + sp.sqrt(1 - alpha_bar_t) * eps, noise),
    )
    steps = [
        Step(sp.Tuple(*laws), "definition", "(mean, variance) of both perturbed samples"),
        Step(sp.Tuple(mean, var + sigma**2, vp_mean, vp_var), "algebra", "", name="laws"),
    ]
    domains = {"mean": "real", "var": "positive", "sigma": "positive", "alpha_bar_t": "unit"}
    results = (
        ClosedForm(
            "perturbed_var",
            (160,),
            var + sigma**2,
            ("var", "sigma"),
            domains,
            "Variance of a Gaussian (mixture component) perturbed with N(0, sigma^2)",
            lhs=r"\mathrm{Var}[x_t]",
            line="laws",
            component=1,
        ),
        ClosedForm(
            "vp_component_mean",
            (159, 160),
            vp_mean,
            ("mean", "alpha_bar_t"),
            domains,
            "Mean of a Gaussian mixture component under the variance-preserving process",
            lhs=r"\mathbb{E}[x_t]",
            line="laws",
            component=2,
        ),
        ClosedForm(
            "vp_component_var",
            (159, 160),
            vp_var,
            ("var", "alpha_bar_t"),
            domains,
            "Variance of a Gaussian mixture component under the variance-preserving process",
            lhs=r"\mathrm{Var}[x_t]",
            line="laws",
            component=3,
        ),
    )
    return Derivation(
        "laws of perturbed Gaussians",
        steps,
        family="Gaussian components",
        results=results,
    )


@register(160)
def vp_perturbation() -> Derivation:
    """The variance-preserving perturbation of a Gaussian component, eq. (160).

    x_t = sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) eps, x ~ N(mean, var): the scaled
    analogue of eq. (160), N(sqrt(alpha_bar_t) mean, alpha_bar_t var + 1 - alpha_bar_t).
    """
    x_data = mean + sp.sqrt(var) * xi
    steps = [
        Step(
            sp.sqrt(alpha_bar_t) * x_data + sp.sqrt(1 - alpha_bar_t) * eps,
            "definition",
            "VP forward marginal applied to a Gaussian component",
        ),
        Step(
            sp.sqrt(alpha_bar_t) * mean + sp.sqrt(alpha_bar_t * var + 1 - alpha_bar_t) * eps,
            "sum_gaussians",
            "variances add",
            eq=160,
            noise=(xi, eps),
        ),
    ]
    return Derivation("VP perturbation of a Gaussian", steps, family="Gaussian components")


# --- the multi-noise objective and its weights, eq. (161) ----------------------------------


@register(161)
def noise_weighting() -> Derivation:
    """The weight lambda(sigma) = sigma^2 of the multi-noise objective, eq. (161).

    The denoising target at noise level sigma is -eps / sigma, of expected square 1/sigma^2;
    weighting level sigma by lambda(sigma) = sigma^2 (Song & Ermon 2019) makes every term
    ||sigma s(x~, sigma) + eps||^2, of order one at every level.
    """
    steps = [
        Step(sigma**2 * (score_hat + eps / sigma) ** 2, "definition", "lambda(sigma) = sigma^2"),
        Step((sigma * score_hat + eps) ** 2, "algebra", "scale-free form", name="term"),
    ]
    return Derivation(
        "noise-level weighting",
        steps,
        results=(
            ClosedForm(
                "weighted_dsm_term",
                (161,),
                (sigma * score_hat + eps) ** 2,
                ("score_hat", "eps", "sigma"),
                {"score_hat": "real", "eps": "real", "sigma": "positive"},
                "Per-coordinate term of the sigma^2-weighted denoising objective",
                lhs=r"\lambda(\sigma) \lVert s_\theta + \epsilon / \sigma \rVert^2",
                line="term",
            ),
        ),
    )


# --- the SDE view (prose after eq. (161)) -------------------------------------------------------


_t_sde, _s_sde = sp.symbols("t s", positive=True)
_beta_min, _beta_max = sp.symbols("beta_min beta_max", positive=True)


def _vp_beta(u):
    """The VP SDE's linear beta(u) = beta_min + u (beta_max - beta_min)."""
    return _beta_min + u * (_beta_max - _beta_min)


@register(161)
def vp_sde_levels() -> Derivation:
    """The VP SDE's noise levels (prose after eq. (161)): beta(t) linear in t, and
    alpha_bar(t) = exp(-int_0^t beta(s) ds) = exp(-(beta_min t + (beta_max - beta_min) t^2 / 2)),
    the continuous product of the alpha's of eq. (70)."""
    t, s = _t_sde, _s_sde
    steps = [
        Step(
            sp.Tuple(_vp_beta(t), sp.exp(-sp.Integral(_vp_beta(s), (s, 0, t)))),
            "definition",
            "beta(t), and alpha_bar(t) as the exponential of minus its integral",
        ),
        Step(
            sp.Tuple(_vp_beta(t), sp.exp(-(_beta_min * t + (_beta_max - _beta_min) * t**2 / 2))),
            "evaluate",
            "integrate the linear beta from 0 to t",
            name="levels",
        ),
    ]
    args = ("t", "beta_min", "beta_max")
    domains = {"t": "closed_unit", "beta_min": "positive", "beta_max": "positive"}
    defaults = {"beta_min": checks.VP_BETA_MIN, "beta_max": checks.VP_BETA_MAX}
    forms = (
        ("vp_beta", "beta(t) of the VP SDE (its SDE view of eq. (161))", r"\beta(t)"),
        (
            "vp_alpha_bar",
            "alpha_bar(t) of the VP SDE: x_t | x_0 ~ N(sqrt(alpha_bar) x_0, (1 - alpha_bar) I)",
            r"\bar\alpha(t)",
        ),
    )
    results = tuple(
        ClosedForm(
            name,
            (161,),
            steps[-1].expr[i],
            args,
            domains,
            summary,
            lhs=lhs,
            line="levels",
            component=i,
            defaults=defaults,
        )
        for i, (name, summary, lhs) in enumerate(forms)
    )
    return Derivation("the VP SDE's beta(t) and alpha_bar(t)", steps, results=results)


@register(161)
def vp_chain_is_euler_step() -> Derivation:
    """The discrete VP chain is the Euler step of the forward VP SDE (prose after eq. (161)).

    One forward step with alpha = 1 - beta dt, x' = sqrt(1 - beta dt) x + sqrt(beta dt) eps,
    equals the Euler-Maruyama step of dx = -beta x / 2 dt + sqrt(beta) dw,
    x' = x - beta dt x / 2 + sqrt(beta dt) eps, plus a remainder
    -x (beta dt)^2 / (2 (1 + sqrt(1 - beta dt))^2), which is O(dt^2) (its coefficient is at
    most abs(x) / 2). Registered under eq. (161), the last numbered equation of the section that
    the SDE view continues to infinitely many noise levels.
    """
    h = beta * dt
    remainder = -x * h**2 / (2 * (1 + sp.sqrt(1 - h)) ** 2)
    steps = [
        Step(
            sp.sqrt(1 - h) * x + sp.sqrt(h) * eps, "definition", "one VP step, alpha = 1 - beta dt"
        ),
        Step(
            x - h * x / 2 + sp.sqrt(h) * eps + remainder,
            "algebra",
            "sqrt(1 - h) = 1 - h/2 - h^2 / (2 (1 + sqrt(1 - h))^2)",
        ),
    ]
    return Derivation("VP chain = Euler discretization of the VP SDE", steps)


@register(161)
def probability_flow_preserves_marginals() -> Derivation:
    """The probability-flow ODE has the marginals of the VP SDE (prose after eq. (161)).

    Forward SDE dx = -beta x / 2 dt + sqrt(beta) dw; reverse SDE
    dx = [-beta x / 2 - beta grad log p_t(x)] dt + sqrt(beta) dw-bar; probability-flow ODE
    dx/dt = -beta x / 2 - beta grad log p_t(x) / 2. For Gaussian marginals N(0, var_t)
    the SDE's variance obeys d var_t / dt = -beta var_t + beta (Ito); the ODE's linear
    drift k x with k = -beta / 2 (1 - 1 / var_t) gives d var_t / dt = 2 k var_t: the same.
    """
    score_t = -x / var_t
    drift = -beta * x / 2 - beta * score_t / 2
    k = sp.diff(drift, x)
    steps = [
        Step(-beta * var_t + beta, "definition", "Ito: d Var = 2 (-beta/2) Var + beta"),
        Step(2 * k * var_t, "algebra", "ODE with linear drift k x: d Var = 2 k Var"),
    ]
    return Derivation(
        "probability flow ODE preserves the VP marginals",
        steps,
        family="zero-mean Gaussian data under the VP SDE",
    )


__all__ = [
    "denoising_score_matching",
    "dsm_esm_gap",
    "energy_score",
    "explicit_score_matching",
    "langevin_gaussian",
    "langevin_stationary",
    "noise_weighting",
    "perturbed_gaussian",
    "perturbed_laws",
    "probability_flow_preserves_marginals",
    "score_model",
    "vp_chain_is_euler_step",
    "vp_perturbation",
    "vp_sde_levels",
]
