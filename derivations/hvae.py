"""Hierarchical VAEs (background, eqs. (23)-(29)): SymPy derivations.

Proved on the two-level (T = 2) linear-Gaussian Markov chain

    p(z_2) = N(0, 1),  p(z_1 | z_2) = N(w_2 z_2 + b_2, var_2),  p(x | z_1) = N(w_1 z_1 + b_1, var_1),
    q(z_1 | x) = N(mean_q1, var_q1),  q(z_2 | z_1) = N(a_2 z_1 + c_2, var_q2),

where the joint and the encoder are multivariate Gaussians whose densities are built from
their covariance matrices (not from the factorization), so eqs. (23), (24) are real checks.
"""

from __future__ import annotations

import functools

import sympy as sp

from udm import register
from udm.derivations._gaussian import log_integral_exp, log_mvn
from udm.derivations.core import KL, ClosedForm, Derivation, Step, log_normal_pdf
from udm.derivations.symbols import x_0

FAMILY = "two-level linear-Gaussian Markov chain (T = 2) with a linear-Gaussian Markov encoder"

x = x_0
z_1, z_2 = sp.symbols("z_1 z_2", real=True)
w_1, b_1, w_2, b_2, mean_q1, a_2, c_2 = sp.symbols("w_1 b_1 w_2 b_2 mean_q1 a_2 c_2", real=True)
var_1, var_2, var_q1, var_q2 = sp.symbols("var_1 var_2 var_q1 var_q2", positive=True)

# factors of eqs. (23), (24)
log_p_z2 = log_normal_pdf(z_2, 0, 1)
log_p_z1_given_z2 = log_normal_pdf(z_1, w_2 * z_2 + b_2, var_2)
log_p_x_given_z1 = log_normal_pdf(x, w_1 * z_1 + b_1, var_1)
log_q_z1_given_x = log_normal_pdf(z_1, mean_q1, var_q1)
log_q_z2_given_z1 = log_normal_pdf(z_2, a_2 * z_1 + c_2, var_q2)
log_joint_factored = log_p_z2 + log_p_x_given_z1 + log_p_z1_given_z2  # eq. (23), T = 2
log_q_factored = log_q_z1_given_x + log_q_z2_given_z1  # eq. (24), T = 2

# the same densities as multivariate Gaussians (moments of the linear structural equations)
var_z1 = w_2**2 + var_2
evidence_var = w_1**2 * var_z1 + var_1
joint_mean = sp.Matrix([w_1 * b_2 + b_1, b_2, 0])  # (x, z_1, z_2)
joint_cov = sp.Matrix(
    [
        [evidence_var, w_1 * var_z1, w_1 * w_2],
        [w_1 * var_z1, var_z1, w_2],
        [w_1 * w_2, w_2, 1],
    ]
)
log_joint_mvn = log_mvn((x, z_1, z_2), joint_mean, joint_cov)
q_mean = sp.Matrix([mean_q1, a_2 * mean_q1 + c_2])  # (z_1, z_2)
q_cov = sp.Matrix([[var_q1, a_2 * var_q1], [a_2 * var_q1, a_2**2 * var_q1 + var_q2]])
log_q_mvn = log_mvn((z_1, z_2), q_mean, q_cov)

log_evidence_expr = log_normal_pdf(x, w_1 * b_2 + b_1, evidence_var)

# E_{q(z_2 | z_1)} of the factored integrand: a function of z_1 (each term by moments)
_r2 = (1 - w_2 * a_2) * z_1 - w_2 * c_2 - b_2  # z_1 - w_2 E[z_2] - b_2
inner_expectation = (
    log_p_x_given_z1
    - sp.log(2 * sp.pi * var_2) / 2
    - (_r2**2 + w_2**2 * var_q2) / (2 * var_2)
    - sp.log(2 * sp.pi) / 2
    - ((a_2 * z_1 + c_2) ** 2 + var_q2) / 2
    - log_q_z1_given_x
    + sp.log(2 * sp.pi * sp.E * var_q2) / 2
)
# the ELBO of eq. (29) in closed form: the five expectations of the factors
_r1 = x - w_1 * mean_q1 - b_1
_m2 = a_2 * mean_q1 + c_2  # E_q[z_2]
elbo_expr = (
    -sp.log(2 * sp.pi * var_1) / 2
    - (_r1**2 + w_1**2 * var_q1) / (2 * var_1)  # E_q[log p(x | z_1)]
    - sp.log(2 * sp.pi * var_2) / 2
    - (
        ((1 - w_2 * a_2) * mean_q1 - w_2 * c_2 - b_2) ** 2
        + (1 - w_2 * a_2) ** 2 * var_q1
        + w_2**2 * var_q2
    )
    / (2 * var_2)  # E_q[log p(z_1 | z_2)]
    - sp.log(2 * sp.pi) / 2
    - (_m2**2 + a_2**2 * var_q1 + var_q2) / 2  # E_q[log p(z_2)]
    + sp.log(2 * sp.pi * sp.E * var_q1) / 2  # -E_q[log q(z_1 | x)]
    + sp.log(2 * sp.pi * sp.E * var_q2) / 2  # -E_q[log q(z_2 | z_1)]
)


@functools.cache
def _posterior_kl():
    """KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)) in closed form, from the posterior's precision.

    log p(z | x) is the joint's quadratic in z = (z_1, z_2): precision Lam = -Hessian, and
    Lam mu_post = h (the gradient at z = 0). With Sigma_q the encoder covariance,
    KL = [tr(Lam Sigma_q) + (mu_post - mu_q)^T Lam (mu_post - mu_q) - 2 - log det Lam
    - log det Sigma_q] / 2, and det Lam = evidence_var / (var_1 var_2).
    """
    zs = (z_1, z_2)
    lam = -sp.hessian(log_joint_factored, zs)
    h = sp.Matrix([sp.diff(log_joint_factored, v) for v in zs]).subs({v: 0 for v in zs})
    h = sp.expand(h)
    det = sp.factor(lam.det())
    quad_post = sp.cancel(sp.expand((h.T * lam.adjugate() * h)[0, 0]) / det)  # h^T Lam^-1 h
    cross = (q_mean.T * h)[0, 0]
    quad_q = (q_mean.T * lam * q_mean)[0, 0]
    trace = (lam * q_cov).trace()
    log_det_lam = sp.log(evidence_var) - sp.log(var_1) - sp.log(var_2)
    log_det_q = sp.log(var_q1) + sp.log(var_q2)
    return (trace + quad_post - 2 * cross + quad_q - 2 - log_det_lam - log_det_q) / 2


@functools.cache
def _engine_kl() -> KL:
    """The same KL as the engine builds it: q = N(q_mean, q_cov), p(z | x) from its precision."""
    zs = (z_1, z_2)
    lam = -sp.hessian(log_joint_factored, zs)
    h = sp.expand(sp.Matrix([sp.diff(log_joint_factored, v) for v in zs]).subs({v: 0 for v in zs}))
    mean_p = (lam.adjugate() * h) / sp.factor(lam.det())
    return KL(q_mean, q_cov, mean_p, lam)


def _sub_kl(kl: KL, values: dict) -> KL:
    return KL(*(m.subs(values) for m in (kl.mean_q, kl.cov_q, kl.mean_p, kl.precision_p)))


MODEL_ARGS = ("x_0", "w_1", "b_1", "var_1", "w_2", "b_2", "var_2")
Q_ARGS = ("mean_q1", "var_q1", "a_2", "c_2", "var_q2")
DOMAINS = {
    **{a: "real" for a in ("x_0", "w_1", "b_1", "w_2", "b_2", "mean_q1", "a_2", "c_2")},
    **{a: "positive" for a in ("var_1", "var_2", "var_q1", "var_q2")},
}


@register(23, 24)
def markov_factorizations() -> Derivation:
    """The Markovian HVAE joint, eq. (23), and encoder, eq. (24), for T = 2.

    The joint of (x, z_1, z_2) is the trivariate Gaussian of the structural equations;
    its log-density (from the covariance matrix) equals log p(z_2) + log p(x | z_1) +
    log p(z_1 | z_2). The encoder's bivariate Gaussian equals log q(z_1 | x) + log q(z_2 | z_1).
    """
    steps = [
        Step(
            sp.Tuple(log_joint_mvn, log_q_mvn),
            "definition",
            "(log p(x, z_1, z_2), log q(z_1, z_2 | x)) as multivariate Gaussians",
        ),
        Step(
            sp.Tuple(log_joint_factored, log_q_factored),
            "markov",
            "Markov factorizations: p(z_2) p(x|z_1) p(z_1|z_2) and q(z_1|x) q(z_2|z_1)",
            eq=23,
        ),
    ]
    return Derivation("Markovian HVAE factorizations (T = 2)", steps, family=FAMILY)


@register(25)
def hvae_evidence() -> Derivation:
    """The evidence p(x) of the two-level chain, eq. (25), by ancestral sampling.

    z_2 = e_3, z_1 = w_2 z_2 + b_2 + sqrt(var_2) e_2, x = w_1 z_1 + b_1 + sqrt(var_1) e_1:
    x ~ N(w_1 b_2 + b_1, w_1^2 (w_2^2 + var_2) + var_1).
    """
    e_1, e_2, e_3 = sp.symbols("e_1 e_2 e_3", real=True)
    z_1_sample = w_2 * e_3 + b_2 + sp.sqrt(var_2) * e_2
    steps = [
        Step(
            w_1 * z_1_sample + b_1 + sp.sqrt(var_1) * e_1,
            "definition",
            "ancestral sampling down the chain",
        ),
        Step(
            w_1 * b_2 + b_1 + sp.sqrt(evidence_var) * e_1,
            "sum_gaussians",
            "independent Gaussians: means and variances add",
            noise=(e_1, e_2, e_3),
            eq=25,
        ),
    ]
    return Derivation("the evidence of the two-level chain", steps, family=FAMILY)


@register(25)
def hvae_log_evidence() -> Derivation:
    """log p(x) of the two-level chain, eq. (25): the x-marginal of the joint Gaussian."""
    results = (
        ClosedForm(
            "log_evidence",
            (25,),
            log_evidence_expr,
            MODEL_ARGS,
            DOMAINS,
            "Exact log-evidence log p(x) of the two-level linear-Gaussian HVAE",
            lhs=r"\log p(x)",
            line="log_evidence",
        ),
    )
    steps = [
        Step(
            log_normal_pdf(x, joint_mean[0], joint_cov[0, 0]),
            "definition",
            "the marginal of a Gaussian vector: its x-block of mean and covariance",
        ),
        Step(log_evidence_expr, "algebra", "log N(x; w_1 b_2 + b_1, ...)", name="log_evidence"),
    ]
    return Derivation(
        "the log-evidence of the two-level chain", steps, family=FAMILY, results=results
    )


# The Jensen derivation integrates symbolically; on the zero-bias sub-family it stays fast.
_ZERO_BIAS = {b_1: 0, b_2: 0, c_2: 0}


@functools.cache
def _zero_bias_evidence_integral():
    """log int p(x, z_1, z_2) dz_2 dz_1 on the zero-bias sub-family (cached: ~2 s of SymPy)."""
    joint = log_joint_factored.subs(_ZERO_BIAS)
    return log_integral_exp(log_integral_exp(joint, z_2), z_1)


@register(25, 26, 27, 28)
def hvae_elbo_by_jensen() -> Derivation:
    """The HVAE ELBO by Jensen's inequality, eqs. (25)-(28), on the two-level chain.

    On the zero-bias sub-family (b_1 = b_2 = c_2 = 0; the biases only shift means and are
    covered in general by `hvae_evidence` and `hvae_elbo_markov`). Eq. (25): the evidence
    integral (z_2, then z_1, by completing squares) is log N(x; 0, w_1^2 (w_2^2 + var_2) +
    var_1); eqs. (26), (27): the same integral, multiplied and divided by q, read as an
    expectation under q; eq. (28): Jensen, whose gap is KL(q(z_{1:2} | x) || p(z_{1:2} | x))
    in closed form (Gaussian conditioning), hence >= 0.
    """

    def sub(e):
        return e.subs(_ZERO_BIAS)

    integral = _zero_bias_evidence_integral()
    steps = [
        Step(integral, "definition", "log int p(x, z_{1:2}) dz_{1:2}", eq=25),
        Step(
            integral,  # joint + q - q: SymPy cancels the q's, the integral is unchanged
            "algebra",
            "multiply and divide by q(z_{1:2} | x)",
            eq=26,
        ),
        Step(sub(log_evidence_expr), "marginalize", "Gaussian integrals over z_2, then z_1"),
        Step(
            sub(log_evidence_expr),
            "algebra",
            "int q(z_{1:2} | x) [p / q] dz_{1:2} = E_q[p(x, z_{1:2}) / q(z_{1:2} | x)]",
            eq=27,
        ),
        Step(
            sub(elbo_expr),
            "jensen",
            "log is concave; the gap is KL(q(z_{1:2} | x) || p(z_{1:2} | x))",
            gap=_sub_kl(_engine_kl(), _ZERO_BIAS),
            eq=28,
        ),
    ]
    return Derivation(
        "HVAE ELBO by Jensen's inequality",
        steps,
        family=FAMILY + " (zero biases)",
    )


@register(28, 29)
def hvae_elbo_markov() -> Derivation:
    """The Markovian HVAE ELBO, eq. (29), in closed form on the two-level chain, eq. (28).

    The integrand log p(x, z_{1:2}) / q(z_{1:2} | x) (multivariate Gaussians) is rewritten with
    the factorizations of eqs. (23), (24) (eq. (29)); its expectation is taken over
    q(z_2 | z_1), then over q(z_1 | x), by moments.
    """
    steps = [
        Step(log_joint_mvn - log_q_mvn, "definition", "log p(x, z_{1:2}) / q(z_{1:2} | x)"),
        Step(
            log_joint_factored - log_q_factored,
            "markov",
            "substitute the factorizations, eqs. (23), (24)",
            eq=29,
        ),
        Step(
            inner_expectation,
            "expectation",
            "E over q(z_2 | z_1)",
            over=(z_2, a_2 * z_1 + c_2, var_q2),
        ),
        Step(
            elbo_expr, "expectation", "E over q(z_1 | x)", over=(z_1, mean_q1, var_q1), name="elbo"
        ),
    ]
    results = (
        ClosedForm(
            "hvae_elbo",
            (28, 29),
            elbo_expr,
            MODEL_ARGS + Q_ARGS,
            DOMAINS,
            "ELBO of the two-level linear-Gaussian Markovian HVAE",
            lhs=r"\mathbb{E}_{q(z_{1:2}|x)}\left[\log\frac{p(x, z_{1:2})}{q(z_{1:2}|x)}\right]",
            line="elbo",
        ),
    )
    return Derivation("Markovian HVAE ELBO (T = 2)", steps, family=FAMILY, results=results)


@register(28)
def hvae_posterior_kl() -> Derivation:
    """KL(q(z_{1:2} | x) || p(z_{1:2} | x)), the gap of eq. (28), in closed form."""
    results = (
        ClosedForm(
            "posterior_kl",
            (28,),
            _posterior_kl(),
            MODEL_ARGS + Q_ARGS,
            DOMAINS,
            "KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)), the gap of the HVAE ELBO",
            lhs=r"D_{\mathrm{KL}}(q(z_{1:2}|x) \| p(z_{1:2}|x))",
            line="kl",
        ),
    )
    steps = [
        Step(_engine_kl().expr, "definition", "the engine's KL of q and the true posterior"),
        Step(_posterior_kl(), "algebra", "written out", name="kl"),
    ]
    return Derivation("the HVAE posterior KL (T = 2)", steps, family=FAMILY, results=results)
