"""DDIM (Song, Meng, Ermon 2021, arXiv:2010.02502) beside the paper: SymPy derivations.

DDIM replaces the forward posterior q(x_{t-1} | x_t, x_0) (Luo eq. (84)) by a family
q_sigma(x_{t-1} | x_t, x_0) with one free standard deviation sigma_t per step (DDIM eq. (7),
key ddim.7). Proved here, each step machine-checked:

* every sigma_t keeps the marginal q(x_{t-1} | x_0) = N(sqrt(alpha_bar_{t-1}) x_0,
  (1 - alpha_bar_{t-1}) I) of the DDPM forward process (DDIM's Lemma 1, ddim.lemma1), both
  as the law of a sample and as mean and variance by total expectation and total variance;
* DDIM's sigma_t(eta) (eq. (16), ddim.16) at eta = 1 is Luo's sigma_q^2(t) (eq. (85));
* the sampling step (eq. (12), ddim.12) is eq. (7) with x_0 replaced by its prediction;
* the deterministic step (sigma_t = 0) is eq. (13) (ddim.13): an Euler step in
  x / sqrt(alpha_bar) against sqrt((1 - alpha_bar) / alpha_bar); run upwards, DDIM inversion.

The level moved to is written alpha_bar_prev (the paper's t - 1); on a strided grid it is any
earlier level s < t, with alpha_t standing for the ratio alpha_bar_t / alpha_bar_s
(improved-diffusion's respaced beta is 1 - alpha_t, key iddpm.respace).
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step, definition, lemma
from udm.derivations.symbols import (
    LATEX_NAMES,
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    eps,
    eps_hat,
    var_q,
    x_0,
    x_0_hat,
    x_t,
)

ab, abp, a = alpha_bar_t, alpha_bar_prev, alpha_t
# DDIM's free standard deviation sigma_t and its eta; noises of x_t and of the step
sigma_ddim = sp.Symbol("sigma_ddim", positive=True)
eta = sp.Symbol("eta", positive=True)
eps_1, eps_2, eps_3 = sp.symbols("eps_1 eps_2 eps_3", real=True)
# private: the mean and variance of x_t given x_0 (the induction hypothesis of Lemma 1)
_m, _v = sp.Symbol("m_t", real=True), sp.Symbol("v_t", positive=True)
LATEX_NAMES.update(
    {
        sigma_ddim: r"\sigma_t",
        eta: r"\eta",
        eps_1: r"\epsilon_1",
        eps_2: r"\epsilon_2",
        eps_3: r"\epsilon_3",
        _m: r"m_t",
        _v: r"v_t",
    }
)
# alpha_bar_t = alpha_t alpha_bar_{t-1}, proved in the vdm section
ALPHA_BAR = lemma(alpha_bar_t, alpha_t * alpha_bar_prev, "udm.derivations.vdm.alpha_bar_recursion")
# x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Luo eq. (69)), with noise eps_1
# (alpha_bar_t written as alpha_t alpha_bar_{t-1}: facts are substituted in turn)
X_T = lemma(x_t, sp.sqrt(a * abp) * x_0 + sp.sqrt(1 - a * abp) * eps_1, 69)
# sigma_t(eta)^2 of DDIM eq. (16), with alpha_bar_t / alpha_bar_{t-1} = alpha_t
var_eta = eta**2 * (1 - abp) / (1 - a * abp) * (1 - a)


def _posterior_sample(x0, noise):
    """A draw from q_sigma(x_{t-1} | x_t, x_0) (DDIM eq. (7)) given x_t and x_0."""
    direction = (x_t - sp.sqrt(ab) * x0) / sp.sqrt(1 - ab)
    return sp.sqrt(abp) * x0 + sp.sqrt(1 - abp - sigma_ddim**2) * direction + sigma_ddim * noise


@register("ddim.7", "ddim.lemma1")
def marginal_preserved() -> Derivation:
    """Every sigma_t keeps q(x_{t-1} | x_0): DDIM's Lemma 1 (ddim.lemma1) from ddim.7.

    Draw x_t ~ q(x_t | x_0) (Luo eq. (69), the induction hypothesis from t = T down), then
    x_{t-1} ~ q_sigma(x_{t-1} | x_t, x_0). Its noise variance is (1 - alpha_bar_{t-1} -
    sigma_t^2) + sigma_t^2 = 1 - alpha_bar_{t-1} whatever sigma_t (0 <= sigma_t^2 <= 1 -
    alpha_bar_{t-1}): x_{t-1} is distributed as a sample of q(x_{t-1} | x_0).
    """
    steps = [
        Step(
            _posterior_sample(x_0, eps_2),
            "definition",
            "x_{t-1} = its mean under ddim.7 plus sigma_t eps_2, with x_t ~ q(x_t | x_0)",
            eq="ddim.7",
        ),
        Step(
            sp.sqrt(abp) * x_0 + sp.sqrt(1 - abp - sigma_ddim**2) * eps_1 + sigma_ddim * eps_2,
            "substitute",
            "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps_1 (eq. (69))",
        ),
        Step(
            sp.sqrt(abp) * x_0 + sp.sqrt(1 - abp) * eps_3,
            "sum_gaussians",
            "independent Gaussians: variances (1 - alpha_bar_{t-1} - sigma_t^2) + sigma_t^2 add",
            eq="ddim.lemma1",
            noise=(eps_1, eps_2, eps_3),
        ),
    ]
    results = (
        ClosedForm(
            "ddim_posterior_mean",
            ("ddim.7",),
            sp.sqrt(abp) * x_0
            + sp.sqrt(1 - abp - var_eta) * (x_t - sp.sqrt(a * abp) * x_0) / sp.sqrt(1 - a * abp),
            ("x_t", "x_0", "eta", "alpha_t", "alpha_bar_prev"),
            {
                "x_t": "real",
                "x_0": "real",
                "eta": "closed_unit",
                "alpha_t": "open_unit",
                "alpha_bar_prev": "open_unit",
            },
            "Mean of DDIM's posterior q_sigma(x_{t-1} | x_t, x_0) with sigma_t = sigma_t(eta) "
            "(alpha_t = alpha_bar_t / alpha_bar_{t-1})",
            lhs=r"\mu_\sigma(x_t, x_0)",
            line="ddim.7",
            rename={eps_2: 0, sigma_ddim: sp.sqrt(var_eta)},
        ),
    )
    return Derivation(
        "DDIM's posterior keeps the marginals",
        steps,
        facts=(X_T, ALPHA_BAR),
        results=results,
    )


@register("ddim.lemma1")
def marginal_moments() -> Derivation:
    """Lemma 1 (ddim.lemma1) by moments: mean and variance of q_sigma(x_{t-1} | x_0).

    x_{t-1} given x_t, x_0 is Gaussian with mean sqrt(alpha_bar_{t-1}) x_0 + c (x_t -
    sqrt(alpha_bar_t) x_0), c = sqrt(1 - alpha_bar_{t-1} - sigma_t^2) / sqrt(1 - alpha_bar_t),
    and variance sigma_t^2 (ddim.7). Total expectation and total variance over x_t ~
    N(m_t, v_t) give (mean, variance) below; with m_t, v_t of q(x_t | x_0) (eq. (70)) they
    are those of q(x_{t-1} | x_0), for every sigma_t.
    """
    c = sp.sqrt(1 - abp - sigma_ddim**2) / sp.sqrt(1 - ab)
    steps = [
        Step(
            sp.Tuple(sp.sqrt(abp) * x_0 + c * (_m - sp.sqrt(ab) * x_0), c**2 * _v + sigma_ddim**2),
            "definition",
            "E[x_{t-1}] = E[E[x_{t-1} | x_t]], Var = E[Var[x_{t-1} | x_t]] + Var[E[x_{t-1} | x_t]]",
        ),
        Step(
            sp.Tuple(sp.sqrt(abp) * x_0, 1 - abp),
            "substitute",
            "m_t = sqrt(alpha_bar_t) x_0, v_t = 1 - alpha_bar_t (eq. (70)); sigma_t^2 cancels",
            eq="ddim.lemma1",
        ),
    ]
    facts = (lemma(_m, sp.sqrt(ab) * x_0, 70), lemma(_v, 1 - ab, 70))
    return Derivation("DDIM's marginal by moments", steps, facts=facts)


@register("ddim.16", "ddim.eta1")
def eta_one_is_ddpm() -> Derivation:
    """sigma_t(eta)^2 of ddim.16 at eta = 1 is Luo's sigma_q^2(t) (eq. (85)): ddim.eta1.

    sigma_t(1)^2 = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (1 - alpha_bar_t /
    alpha_bar_{t-1}), and alpha_bar_t / alpha_bar_{t-1} = alpha_t.
    """
    steps = [
        Step(
            (1 - abp) / (1 - ab) * (1 - ab / abp),
            "definition",
            "ddim.16 squared at eta = 1, on the full grid (tau_{i-1} = t - 1)",
            eq="ddim.16",
        ),
        Step(
            (1 - abp) / (1 - a * abp) * (1 - a),
            "substitute",
            "alpha_bar_t = alpha_t alpha_bar_{t-1}",
        ),
        Step(var_q, "substitute", "sigma_q^2(t) of eq. (85)", eq="ddim.eta1"),
    ]
    return Derivation(
        "eta = 1 gives the DDPM posterior variance",
        steps,
        facts=(ALPHA_BAR, definition(var_q, (1 - a) * (1 - abp) / (1 - a * abp), 85)),
    )


@register("ddim.16")
def eta_family() -> Derivation:
    """sigma_t(eta)^2 of ddim.16 for any eta, between levels alpha_bar_t and alpha_bar_prev.

    eta^2 (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (1 - alpha_bar_t / alpha_bar_{t-1}) =
    eta^2 (1 - alpha_bar_{t-1})(1 - alpha_t) / (1 - alpha_t alpha_bar_{t-1}): for eta in
    [0, 1] it lies in [0, 1 - alpha_bar_{t-1}), so sqrt(1 - alpha_bar_{t-1} - sigma_t^2) of
    ddim.12 is real.
    """
    steps = [
        Step(
            eta**2 * (1 - abp) / (1 - ab) * (1 - ab / abp),
            "definition",
            "ddim.16 squared",
        ),
        Step(var_eta, "substitute", "alpha_bar_t = alpha_t alpha_bar_{t-1}", eq="ddim.16"),
    ]
    results = (
        ClosedForm(
            "ddim_variance",
            ("ddim.16",),
            var_eta,
            ("eta", "alpha_t", "alpha_bar_prev"),
            {"eta": "closed_unit", "alpha_t": "open_unit", "alpha_bar_prev": "open_unit"},
            "DDIM's variance sigma_t(eta)^2 between levels alpha_bar_t = alpha_t alpha_bar_prev "
            "and alpha_bar_prev (eta = 1: sigma_q^2, eta = 0: deterministic)",
            lhs=r"\sigma_t(\eta)^2",
            line="ddim.16",
            rename={},
        ),
    )
    return Derivation("DDIM's variance family", steps, facts=(ALPHA_BAR,), results=results)


@register("ddim.12")
def sampling_step() -> Derivation:
    """DDIM's step (eq. (12), ddim.12) is eq. (7) with x_0 replaced by its prediction.

    With eps_hat = (x_t - sqrt(alpha_bar_t) x_0_hat) / sqrt(1 - alpha_bar_t) (the prediction
    of eq. (69)'s noise that x_0_hat implies), the direction (x_t - sqrt(alpha_bar_t)
    x_0_hat) / sqrt(1 - alpha_bar_t) of ddim.7 is eps_hat.
    """
    steps = [
        Step(
            _posterior_sample(x_0_hat, eps),
            "definition",
            "a draw from q_sigma(x_{t-1} | x_t, x_0 = x_0_hat) (ddim.7)",
        ),
        Step(
            sp.sqrt(abp) * x_0_hat + sp.sqrt(1 - abp - sigma_ddim**2) * eps_hat + sigma_ddim * eps,
            "substitute",
            "the direction pointing to x_t is eps_hat",
            eq="ddim.12",
        ),
    ]
    facts = (lemma(x_t, sp.sqrt(a * abp) * x_0_hat + sp.sqrt(1 - a * abp) * eps_hat, 69),)
    results = (
        ClosedForm(
            "ddim_step",
            ("ddim.12",),
            sp.sqrt(abp) * x_0_hat + sp.sqrt(1 - abp - var_eta) * eps_hat + sp.sqrt(var_eta) * eps,
            ("x_0_hat", "eps_hat", "eps", "eta", "alpha_t", "alpha_bar_prev"),
            {
                "x_0_hat": "real",
                "eps_hat": "real",
                "eps": "real",
                "eta": "closed_unit",
                "alpha_t": "open_unit",
                "alpha_bar_prev": "open_unit",
            },
            "DDIM's step from alpha_bar_t = alpha_t alpha_bar_prev to alpha_bar_prev, sigma_t = "
            "sigma_t(eta), noise eps",
            lhs=r"x_{t-1}",
            line="ddim.12",
            rename={sigma_ddim: sp.sqrt(var_eta)},
        ),
    )
    return Derivation("DDIM's sampling step", steps, facts=(*facts, ALPHA_BAR), results=results)


@register("ddim.13")
def deterministic_step_is_euler() -> Derivation:
    """The deterministic DDIM step (sigma_t = 0) in the form of ddim.13.

    x_{t-1} / sqrt(alpha_bar_{t-1}) = x_t / sqrt(alpha_bar_t) + (sqrt((1 - alpha_bar_{t-1}) /
    alpha_bar_{t-1}) - sqrt((1 - alpha_bar_t) / alpha_bar_t)) eps_hat: one Euler step of
    d(x / sqrt(alpha_bar)) = eps_hat d sqrt((1 - alpha_bar) / alpha_bar). Nothing in it
    needs alpha_bar_{t-1} > alpha_bar_t: the same map to a noisier level is DDIM inversion.
    """
    steps = [
        Step(
            (sp.sqrt(abp) * x_0_hat + sp.sqrt(1 - abp) * eps_hat) / sp.sqrt(abp),
            "definition",
            "ddim.12 at sigma_t = 0, divided by sqrt(alpha_bar_{t-1})",
        ),
        Step(
            x_t / sp.sqrt(ab)
            + (sp.sqrt(1 - abp) / sp.sqrt(abp) - sp.sqrt(1 - ab) / sp.sqrt(ab)) * eps_hat,
            "substitute",
            "x_0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t) (eq. (115))",
            eq="ddim.13",
        ),
    ]
    facts = (lemma(x_0_hat, (x_t - sp.sqrt(1 - ab) * eps_hat) / sp.sqrt(ab), 115),)
    return Derivation("the deterministic DDIM step is an Euler step", steps, facts)
