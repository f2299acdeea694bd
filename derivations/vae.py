"""Variational autoencoders (background, eqs. (17)-(22)): SymPy derivations.

On the linear-Gaussian latent model of `udm.derivations.elbo` (decoder p_theta(x | z) =
N(w z + b, s^2), prior p(z) = N(0, 1), encoder q_phi(z | x) = N(mean_q, var_q)): the
joint factorizes into decoder times prior (eq. (17)), the ELBO splits into reconstruction
minus prior matching (eqs. (18), (19)), the prior-matching KL of a Gaussian to N(0, 1) has
a closed form (per coordinate of a diagonal Gaussian, eqs. (20), (21)), and the
reparameterized Monte Carlo objective (eq. (22)) is unbiased for it.
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations._gaussian import log_bivariate_normal as _log_bivariate_normal
from udm.derivations.core import ClosedForm, Derivation, Step, log_normal_pdf
from udm.derivations.elbo import (
    DOMAINS,
    FAMILY,
    MODEL_ARGS,
    Q_ARGS,
    log_likelihood,
    log_prior,
    log_q,
    prior_kl_expr,
    prior_kl_stable,
    reconstruction_expr,
)
from udm.derivations.symbols import b, eps, mean_q, var_q, var_x, w, x_0, z

x = x_0


@register(17, 18, 19)
def vae_objective() -> Derivation:
    """The VAE objective, eqs. (17)-(19): reconstruction term minus prior-matching term.

    Eq. (17): the joint (x, z) of the model is bivariate Gaussian with mean (b, 0) and
    covariance [[w^2 + s^2, w], [w, 1]]; its log-density equals log p_theta(x | z) + log p(z)
    (chain rule). Eq. (18) splits the log; eq. (19) takes E_q by moments: the reconstruction
    term E_q[log p_theta(x | z)] and the prior-matching KL(q(z | x) || p(z)) in closed form.
    """
    log_joint_bivariate = _log_bivariate_normal(x, z, b, 0, w**2 + var_x, 1, w)
    steps = [
        Step(log_joint_bivariate - log_q, "definition", "log p(x, z) - log q(z | x)"),
        Step(
            log_likelihood + log_prior - log_q,
            "chain_rule",
            "p(x, z) = p_theta(x | z) p(z)",
            eq=17,
        ),
        Step(
            log_likelihood + (log_prior - log_q),
            "log_rules",
            "split the log into two terms",
            eq=18,
        ),
        Step(
            reconstruction_expr - prior_kl_expr,
            "expectation",
            "reconstruction term minus prior-matching KL",
            over=(z, mean_q, var_q),
            eq=19,
        ),
    ]
    return Derivation(
        "VAE objective: reconstruction minus prior matching",
        steps,
        family=FAMILY,
    )


@register(19)
def reconstruction_term() -> Derivation:
    """The reconstruction term E_q[log p_theta(x | z)] of eq. (19), by moments."""
    results = (
        ClosedForm(
            "reconstruction_term",
            (19,),
            reconstruction_expr,
            MODEL_ARGS + Q_ARGS,
            DOMAINS,
            "Reconstruction term E_q[log p_theta(x | z)] of the linear-Gaussian decoder",
            lhs=r"\mathbb{E}_{q(z|x)}[\log p_\theta(x|z)]",
            line="reconstruction",
        ),
    )
    steps = [
        Step(log_likelihood, "definition", "log p_theta(x | z)"),
        Step(
            reconstruction_expr,
            "expectation",
            "E[z] = m, E[z^2] = v + m^2",
            over=(z, mean_q, var_q),
            name="reconstruction",
        ),
    ]
    return Derivation("the reconstruction term", steps, family=FAMILY, results=results)


@register(19, 20, 21)
def prior_matching_kl() -> Derivation:
    """KL(q_phi(z | x) || p(z)) for q = N(mean_q, var_q) (eq. (20)) and p(z) = N(0, 1) (eq. (21)).

    The prior-matching term of eq. (19), per coordinate; for the diagonal Gaussian encoder of
    eq. (20) against N(0, I) it is the sum over latent coordinates (family: diagonal
    Gaussians). Taken by moments: (mean^2 + var - 1 - log var) / 2.
    """
    steps = [
        Step(log_q - log_normal_pdf(z, 0, 1), "definition", "log q(z | x) - log p(z)"),
        Step(
            prior_kl_expr,
            "expectation",
            "E[z] = mean_q, E[z^2] = var_q + mean_q^2",
            over=(z, mean_q, var_q),
            eq=19,
        ),
        Step(
            prior_kl_stable,
            "algebra",
            "var - 1 - log var = expm1(u) - u at u = log var (no cancellation near var = 1)",
            name="stable",
        ),
    ]
    results = (
        ClosedForm(
            "kl_standard_normal",
            (19, 20, 21),
            prior_kl_stable,
            Q_ARGS,
            DOMAINS,
            "Prior-matching KL(N(mean_q, var_q) || N(0, 1)) per latent coordinate (sum over "
            "coordinates for a diagonal Gaussian encoder)",
            lhs=r"D_{\mathrm{KL}}(\mathcal{N}(\mu, \sigma^2) \| \mathcal{N}(0, 1))",
            line="stable",
        ),
    )
    return Derivation(
        "prior-matching KL to the standard normal",
        steps,
        family="diagonal Gaussians (per coordinate)",
        results=results,
    )


@register(20, 22)
def reparameterization() -> Derivation:
    """The reparameterization z = mean + sigma * eps, eps ~ N(0, 1), used with eq. (22).

    By change of variables, z has log-density log N((z - mean) / sigma; 0, 1) - log sigma,
    which equals log N(z; mean, sigma^2): the encoder of eq. (20).
    """
    sigma_q = sp.sqrt(var_q)
    steps = [
        Step(
            log_normal_pdf((z - mean_q) / sigma_q, 0, 1) - sp.log(sigma_q),
            "definition",
            "density of z = mean + sigma eps: log N(eps(z); 0, 1) - log |dz / deps|",
        ),
        Step(
            log_normal_pdf(z, mean_q, var_q),
            "reparameterize",
            "the encoder density N(z; mean_q, var_q) of eq. (20)",
            eq=20,
        ),
    ]
    return Derivation("reparameterization trick", steps, family=FAMILY)


@register(20, 22)
def reparameterized_sample() -> Derivation:
    """The reparameterized sample z = mean + sigma * eps of eqs. (20), (22), as generated."""
    sigma_q = sp.sqrt(var_q)
    results = (
        ClosedForm(
            "reparameterize",
            (20, 22),
            mean_q + sigma_q * eps,
            ("mean_q", "var_q", "eps"),
            {"mean_q": "real", "var_q": "positive", "eps": "real"},
            "Reparameterized sample z = mean_q + sqrt(var_q) eps of the encoder",
            lhs="z",
            line="sample",
        ),
    )
    steps = [
        Step(mean_q + sigma_q * eps, "definition", "z = mean + sigma eps", name="sample"),
        Step(
            mean_q + sigma_q * eps,
            "sum_gaussians",
            "z ~ N(mean_q, var_q): the encoder of eq. (20)",
            noise=(eps,),
        ),
    ]
    return Derivation("the reparameterized sample", steps, family=FAMILY, results=results)


@register(22)
def monte_carlo_objective() -> Derivation:
    """The Monte Carlo objective of eq. (22) is unbiased for eq. (19) (L = 2 samples).

    With z^(l) = mean_q + sqrt(var_q) eps_l, the average (1/L) sum_l log p_theta(x | z^(l))
    minus the analytic prior-matching KL has expectation (over eps_1, eps_2 ~ N(0, 1)) equal to
    the reconstruction term minus the KL. The paper's eq. (22) writes the sum without the 1/L
    (the same argmax only when the KL is scaled by L too); the estimator uses the average.
    """
    eps_1, eps_2 = sp.symbols("epsilon_1 epsilon_2", real=True)
    sigma_q = sp.sqrt(var_q)

    def log_decoder(e):
        return log_normal_pdf(x, w * (mean_q + sigma_q * e) + b, var_x)

    steps = [
        Step(
            (log_decoder(eps_1) + log_decoder(eps_2)) / 2 - prior_kl_expr,
            "definition",
            "average of L = 2 reparameterized log-likelihoods minus the analytic KL",
            eq=22,
        ),
        Step(
            (reconstruction_expr + log_decoder(eps_2)) / 2 - prior_kl_expr,
            "expectation",
            "E over eps_1",
            over=(eps_1, 0, 1),
        ),
        Step(
            reconstruction_expr - prior_kl_expr,
            "expectation",
            "E over eps_2: the objective of eq. (19)",
            over=(eps_2, 0, 1),
            eq=19,
        ),
    ]
    # eq. (22) as corrected (with 1/L), its "approx" read as "unbiased": the whole chain
    return Derivation(
        "the Monte Carlo VAE objective is unbiased", steps, family=FAMILY, claims=(22,)
    )
