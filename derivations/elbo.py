"""Evidence lower bound (background, eqs. (1)-(16)): SymPy derivations.

Identities about arbitrary densities are proved on the linear-Gaussian latent model
z ~ N(0, 1), x | z ~ N(w z + b, s^2), with a Gaussian q(z | x) = N(mean_q, var_q) of free
mean and variance (scalar case, symbolic in every parameter): every log-density is a
quadratic, so each line of the paper's derivations has a closed form on this family.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations._gaussian import log_expect_exp, log_integral_exp
from udm.derivations._stable import expm1mx, log_ratio
from udm.derivations.core import KL, ClosedForm, Derivation, Step, complete_square, log_normal_pdf
from udm.derivations.symbols import b, eps, mean_q, var_q, var_x, w, x_0, z

FAMILY = "linear-Gaussian latent model z ~ N(0, 1), x | z ~ N(w z + b, s^2), q(z|x) = N(m, v)"

# --- the model's densities and closed forms (shared by the derivations below) -------------
x = x_0  # the paper's x is the data x_0
log_prior = log_normal_pdf(z, 0, 1)  # log p(z)
log_likelihood = log_normal_pdf(x, w * z + b, var_x)  # log p(x | z)
log_joint = log_prior + log_likelihood  # log p(x, z)
log_q = log_normal_pdf(z, mean_q, var_q)  # log q_phi(z | x)
# closed forms, each proved by a derivation below
evidence_var = w**2 + var_x
log_evidence_expr = log_normal_pdf(x, b, evidence_var)  # log p(x), eq. (1)
posterior_mean_expr = w * (x - b) / evidence_var  # mean of p(z | x), eq. (2)
posterior_var_expr = var_x / evidence_var  # variance of p(z | x), eq. (2)
log_posterior = log_normal_pdf(z, posterior_mean_expr, posterior_var_expr)
reconstruction_expr = -sp.log(2 * sp.pi * var_x) / 2 - (
    (x - w * mean_q - b) ** 2 + w**2 * var_q
) / (2 * var_x)  # E_q[log p(x | z)]
prior_kl_expr = (mean_q**2 + var_q - 1 - sp.log(var_q)) / 2  # KL(q || p(z))
elbo_expr = reconstruction_expr - prior_kl_expr  # E_q[log p(x, z) / q(z | x)], eq. (3)
posterior_kl_expr = (
    sp.log(posterior_var_expr / var_q)
    + (var_q + (mean_q - posterior_mean_expr) ** 2) / posterior_var_expr
    - 1
) / 2  # KL(q(z | x) || p(z | x))
# the two KLs as evaluated: r - 1 - log r = expm1mx(log r) keeps their relative accuracy
# when q nearly matches (udm.derivations._stable; each is proved equal to the form above)
prior_kl_stable = (mean_q**2 + expm1mx(sp.log(var_q))) / 2
posterior_kl_stable = (
    expm1mx(log_ratio(var_q, posterior_var_expr))
    + (mean_q - posterior_mean_expr) ** 2 / posterior_var_expr
) / 2
# the same KL as the engine builds it: the gap of the Jensen steps (eqs. (8), (16))
posterior_kl = KL.normal(mean_q, var_q, posterior_mean_expr, posterior_var_expr)

DOMAINS = {
    "x_0": "real",
    "w": "real",
    "b": "real",
    "var_x": "positive",
    "mean_q": "real",
    "var_q": "positive",
}
MODEL_ARGS = ("x_0", "w", "b", "var_x")
Q_ARGS = ("mean_q", "var_q")


@register(1)
def evidence_marginal() -> Derivation:
    """The evidence p(x) = int p(x, z) dz, eq. (1), in closed form on the linear-Gaussian model.

    Integrating z out of the joint (a Gaussian integral, by completing the square) gives
    p(x) = N(x; b, w^2 + s^2); the same law follows from x = w z + b + s eps with z, eps
    independent standard normals (checked by `evidence_by_sampling`).
    """
    steps = [
        Step(
            log_integral_exp(log_joint, z),
            "definition",
            "log int p(x, z) dz: the exponent is quadratic in z (Gaussian integral)",
        ),
        Step(log_evidence_expr, "complete_square", "log N(x; b, w^2 + s^2)", eq=1),
    ]
    results = (
        ClosedForm(
            "log_evidence",
            (1,),
            log_evidence_expr,
            MODEL_ARGS,
            DOMAINS,
            "Exact log-evidence log p(x) of the linear-Gaussian latent model",
            lhs=r"\log p(x)",
            line=1,
        ),
    )
    return Derivation(
        "the evidence of the linear-Gaussian model", steps, family=FAMILY, results=results
    )


@register(1)
def evidence_by_sampling() -> Derivation:
    """Ancestral sampling gives the same evidence law as eq. (1): x = w z + b + s eps ~ N(b, w^2 + s^2)."""
    eps_z = sp.Symbol("epsilon_z", real=True)
    steps = [
        Step(w * eps_z + b + sp.sqrt(var_x) * eps, "definition", "z = eps_z, then x | z"),
        Step(
            b + sp.sqrt(evidence_var) * eps,
            "sum_gaussians",
            "independent Gaussians: means and variances add",
            eq=1,
            noise=(eps_z, eps),
        ),
    ]
    return Derivation("the evidence by ancestral sampling", steps, family=FAMILY)


@register(2)
def evidence_chain_rule() -> Derivation:
    """p(x) = p(x, z) / p(z | x) for every z, eq. (2), with the true posterior in closed form.

    Completing the square in z: log p(x, z) - log p(z | x) with p(z | x) =
    N(z; w (x - b) / (w^2 + s^2), s^2 / (w^2 + s^2)) equals log N(x; b, w^2 + s^2), which is
    free of z: the point of eq. (2).
    """
    steps = [
        Step(log_joint - log_posterior, "definition", "log p(x, z) - log p(z | x)"),
        Step(
            log_evidence_expr,
            "complete_square",
            "the z-dependence cancels: the posterior is the joint's square completed in z",
            eq=2,
        ),
    ]
    return Derivation("eq. (2) for every z", steps, family=FAMILY)


@register(2)
def true_posterior() -> Derivation:
    """The true posterior p(z | x) of eq. (2): the joint's square completed in z.

    p(z | x) is proportional to p(x, z) in z; completing the square in z of log p(x, z)
    gives its mean w (x - b) / (w^2 + s^2) and variance s^2 / (w^2 + s^2).
    """
    mean_, var_, _ = complete_square(log_joint, z)
    steps = [
        Step(sp.Tuple(mean_, var_), "definition", "mean and variance of the completed square"),
        Step(
            sp.Tuple(posterior_mean_expr, posterior_var_expr),
            "algebra",
            "in the model's parameters",
            name="posterior",
        ),
    ]
    results = (
        ClosedForm(
            "posterior_mean",
            (2,),
            posterior_mean_expr,
            MODEL_ARGS,
            DOMAINS,
            "Mean of the true posterior p(z | x) of the linear-Gaussian latent model",
            lhs=r"\mathbb{E}[z \mid x]",
            line="posterior",
            component=0,
        ),
        ClosedForm(
            "posterior_var",
            (2,),
            posterior_var_expr,
            ("w", "var_x"),
            DOMAINS,
            "Variance of the true posterior p(z | x) of the linear-Gaussian latent model",
            lhs=r"\mathrm{Var}[z \mid x]",
            line="posterior",
            component=1,
        ),
    )
    return Derivation("the true posterior", steps, family=FAMILY, results=results)


@register(3)
def elbo_closed_form() -> Derivation:
    """The ELBO E_q[log p(x, z) / q(z | x)], eq. (3), in closed form on the linear-Gaussian model.

    Every term is a quadratic in z, so the expectation follows from E[z] = m, E[z^2] = v + m^2;
    it splits as reconstruction minus prior matching (the form of eq. (19)).
    """
    steps = [
        Step(log_joint - log_q, "definition", "log p(x, z) - log q(z | x), the ELBO's integrand"),
        Step(
            elbo_expr,
            "expectation",
            "E[z] = m, E[z^2] = v + m^2",
            eq=3,
            over=(z, mean_q, var_q),
        ),
    ]
    results = (
        ClosedForm(
            "elbo",
            (3,),
            elbo_expr,
            MODEL_ARGS + Q_ARGS,
            DOMAINS,
            "ELBO of the linear-Gaussian latent model for q(z | x) = N(mean_q, var_q)",
            lhs=r"\mathbb{E}_{q(z|x)}\left[\log\frac{p(x, z)}{q(z|x)}\right]",
            line=3,
        ),
    )
    return Derivation("the ELBO in closed form", steps, family=FAMILY, results=results)


@register(4, 5, 6, 7, 8)
def elbo_by_jensen() -> Derivation:
    """The first ELBO derivation, eqs. (5)-(8), proving the bound eq. (4).

    Each line in closed form on the linear-Gaussian model: the evidence integral (eq. (5)),
    the same integral against q (eqs. (6), (7); E_q[p(x, z) / q] by the moment generating
    function of a Gaussian quadratic, an independent route), and Jensen's inequality (eq. (8))
    whose gap is KL(q(z | x) || p(z | x)) in closed form, hence >= 0.
    """
    steps = [
        Step(log_evidence_expr, "definition", "log p(x): the paper's left side, in closed form"),
        Step(
            log_integral_exp(log_joint, z),
            "complete_square",
            "log int p(x, z) dz (eq. (1)): a Gaussian integral in z",
            eq=5,
        ),
        Step(
            log_integral_exp(log_joint + log_q - log_q, z),
            "algebra",
            "multiply and divide by q(z | x)",
            eq=6,
        ),
        Step(
            log_expect_exp(log_joint - log_q, z, mean_q, var_q),
            "algebra",
            "an integral against q is an expectation under q",
            eq=7,
        ),
        Step(
            elbo_expr,
            "jensen",
            "log is concave; the gap is KL(q(z|x) || p(z|x))",
            eq=8,
            gap=posterior_kl,
        ),
    ]
    return Derivation("the ELBO by Jensen's inequality", steps, family=FAMILY, claims=(4,))


@register(15, 16)
def kl_to_posterior() -> Derivation:
    """KL(q(z | x) || p(z | x)) in closed form, the gap of eqs. (15), (16), by moments."""
    steps = [
        Step(log_q - log_posterior, "definition", "log q(z | x) - log p(z | x)"),
        Step(
            posterior_kl_expr,
            "expectation",
            "E[z] = m, E[z^2] = v + m^2",
            over=(z, mean_q, var_q),
            eq=15,
        ),
        Step(
            posterior_kl_stable,
            "algebra",
            "r = var_q / var_post: r - 1 - log r = expm1(u) - u at u = log r (no cancellation "
            "when q is near the posterior)",
            name="stable",
        ),
    ]
    results = (
        ClosedForm(
            "kl_to_posterior",
            (15, 16),
            posterior_kl_stable,
            MODEL_ARGS + Q_ARGS,
            DOMAINS,
            "KL(q(z | x) || p(z | x)) of the linear-Gaussian latent model, "
            "q(z | x) = N(mean_q, var_q)",
            lhs=r"D_{\mathrm{KL}}(q(z|x) \| p(z|x))",
            line="stable",
        ),
    )
    return Derivation("the KL to the true posterior", steps, family=FAMILY, results=results)


@register(9, 10, 11, 12, 13, 14, 15, 16)
def elbo_by_kl_decomposition() -> Derivation:
    """The second ELBO derivation, eqs. (9)-(16): log p(x) = ELBO + KL(q(z|x) || p(z|x)).

    From eq. (11) on each line is the integrand of E_q (a function of z); eq. (12) holds
    for every z by eq. (2); the expectation (eq. (15)) is taken by moments, so the
    decomposition is proved exactly for every q = N(m, v); eq. (16) drops the KL (Jensen
    step with the KL as its gap).
    """
    steps = [
        Step(log_evidence_expr, "definition", "log p(x), eq. (1) in closed form"),
        Step(
            log_evidence_expr * sp.exp(log_integral_exp(log_q, z)),
            "algebra",
            "q(z | x) integrates to one",
            eq=9,
        ),
        Step(
            log_evidence_expr,
            "expectation",
            "log p(x) is constant in z, so int q log p(x) dz = log p(x)",
            eq=10,
            over=(z, mean_q, var_q),
        ),
        Step(log_evidence_expr, "algebra", "written as E_q[log p(x)]; the integrand", eq=11),
        Step(log_joint - log_posterior, "bayes", "eq. (2), for every z", eq=12),
        Step(
            (log_joint + log_q) - (log_posterior + log_q),
            "algebra",
            "multiply and divide by q(z | x)",
            eq=13,
        ),
        Step(
            (log_joint - log_q) + (log_q - log_posterior),
            "log_rules",
            "split the log of the product",
            eq=14,
        ),
        Step(
            elbo_expr + posterior_kl_expr,
            "expectation",
            "linearity and moments: ELBO + KL(q || p(z | x)), for every q",
            over=(z, mean_q, var_q),
            eq=15,
        ),
        Step(elbo_expr, "jensen", "KL >= 0", gap=posterior_kl, eq=16),
    ]
    return Derivation(
        "log p(x) = ELBO + KL (second derivation)",
        steps,
        family=FAMILY,
    )


@register(15, 16)
def elbo_tight_at_posterior() -> Derivation:
    """The bound of eq. (16) is attained at q = p(z | x): the ELBO there equals log p(x), eq. (15)."""
    steps = [
        Step(
            elbo_expr.subs({mean_q: posterior_mean_expr, var_q: posterior_var_expr}),
            "definition",
            "the ELBO, eq. (3), in closed form at q(z | x) = p(z | x)",
        ),
        Step(
            log_evidence_expr,
            "algebra",
            "q(z | x) = p(z | x): m = w (x - b) / (w^2 + s^2), v = s^2 / (w^2 + s^2)",
        ),
    ]
    return Derivation(
        "the ELBO is tight at the true posterior",
        steps,
        family=FAMILY,
    )


@register(15, 16)
def elbo_stationary_only_at_posterior() -> Derivation:
    """The gradient of the ELBO in (m, v) vanishes exactly at the true posterior, eqs. (15), (16).

    d ELBO / dm = -(m - mu_post) / var_post and d ELBO / dv = (1 / v - 1 / var_post) / 2: zero
    iff m = mu_post and v = var_post; the ELBO is strictly concave in (m, v) (second
    derivatives -1 / var_post and -1 / (2 v^2), no cross term), so that point is its unique
    maximum, where by `elbo_tight_at_posterior` it equals log p(x).
    """
    grad = sp.Tuple(sp.diff(elbo_expr, mean_q), sp.diff(elbo_expr, var_q))
    steps = [
        Step(grad, "definition", "gradient of the ELBO in (mean_q, var_q)"),
        Step(
            sp.Tuple(
                -(mean_q - posterior_mean_expr) / posterior_var_expr,
                (1 / var_q - 1 / posterior_var_expr) / 2,
            ),
            "differentiate",
            "zero iff m = mu_post and v = var_post",
        ),
    ]
    return Derivation("the ELBO is stationary exactly at the true posterior", steps, family=FAMILY)


@register(15, 16)
def elbo_concave() -> Derivation:
    """The ELBO is strictly concave in (m, v), so its stationary point maximizes it, eqs. (15), (16).

    Second derivatives -1 / var_post, 0 and -1 / (2 v^2): negative definite.
    """
    hessian = sp.Tuple(
        sp.diff(elbo_expr, mean_q, 2),
        sp.diff(elbo_expr, mean_q, var_q),
        sp.diff(elbo_expr, var_q, 2),
    )
    steps = [
        Step(hessian, "definition", "second derivatives (m m, m v, v v)"),
        Step(
            sp.Tuple(-1 / posterior_var_expr, 0, -1 / (2 * var_q**2)),
            "differentiate",
            "negative definite: strictly concave, the stationary point is the maximum",
        ),
    ]
    return Derivation("the ELBO is strictly concave", steps, family=FAMILY)
