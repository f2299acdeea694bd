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
