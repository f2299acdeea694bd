"""Variational diffusion models (paper section 2.1, eqs. (30)-(100)): SymPy derivations.

In paper order: the forward and reverse processes (eqs. (30)-(33)); both ELBO derivations on
1-D Gaussian data with a linear-Gaussian reverse model (eqs. (34)-(58)); q(x_t | x_0) by
induction over t (eqs. (59)-(70)); the posterior q(x_{t-1} | x_t, x_0) by completing the
square (eqs. (71)-(85)); the Gaussian KL (eq. (86)) and the denoising objective in its x_0
form (eqs. (87)-(100)).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1 as _expm1
from sympy.codegen.cfunctions import log1p as _log1p

from derivations._chain import Chain, posterior_law
from derivations._chain import chain_symbols as _chain_symbols
from derivations._chain import lpdf as _lpdf
from derivations._stable import expm1mx, log1p, log_ratio
from derivations.core import (
    KL,
    ClosedForm,
    Derivation,
    Step,
    complete_square,
    definition,
    gaussian_law,
    lemma,
    log_normal_pdf,
    normal_pdf,
    square_roots,
)
from derivations.core import DerivationError as _DerivationError
from derivations.core import abbreviation as _abbreviation
from derivations.core import equal as _equal
from derivations.core import expect_gaussian_vector as _expect_gaussian_vector
from derivations.core import normal_pdf as _normal_pdf
from derivations.core import unit_intervals as _unit_intervals
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
    x_0_hat,
    x_prev,
    x_t,
)
from derivations.symbols import beta_t as _beta_t
from derivations.symbols import log_alpha_bar_prev as _log_ab_prev
from derivations.symbols import log_alpha_bar_t as _log_ab
from derivations.symbols import var_theta as _var_theta
from derivations.symbols import x_next as _x_next
from derivations.symbols import x_prev as _x_prev
from derivations.symbols import x_t as _x_t
from udm import register

# --- Forward process and the two ELBO derivations, eqs. (30)-(58) ---------------------------
# Added by the vdm-elbo helper. Family of the instance proofs: one coordinate, x_0 fixed (so
# every data distribution, N(m, v) included, is covered pointwise), symbolic alpha_1..alpha_T,
# p(x_T) = N(0, 1) and a linear-Gaussian reverse model p_theta(x_{t-1} | x_t) =
# N(a_t x_t + c_t, var_theta_t) with free a_t, c_t, var_theta_t. Every log-density is then a
# quadratic, every expectation of it closed form (moments of the forward chain's Gaussian law).
ELBO_FAMILY = (
    "1-D Gaussian chain: x_0 fixed, q(x_t|x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, 1 - alpha_t) with "
    "symbolic alpha_1..alpha_T, p(x_T) = N(0, 1), p_theta(x_{t-1}|x_t) = "
    "N(a_t x_t + c_t, var_theta_t) with free a_t, c_t, var_theta_t (T = {T})"
)
TERM_FAMILY = "linear-Gaussian reverse model p_theta(x_{t-1}|x_t) = N(a_t x_t + c_t, var_theta)"


# the registered instances (the symbolic checks grow fast with T: at T = 3 derivation two
# takes ~80 s and the bound's KL gap minutes); tests/test_vdm.py also builds T = 1 (and T = 3 for derivation one)
ELBO_DEFAULT_T = 2
BOUND_DEFAULT_T = 1

# generic (per-t) parameters of the linear reverse model, and of its step t + 1
a_t, c_t = sp.symbols("a_t c_t", real=True)
a_next, c_next = sp.symbols("a_next c_next", real=True)
alpha_next, var_theta_next = sp.symbols("alpha_next var_theta_next", positive=True)


def _sqrt_facts(alphas) -> tuple:
    """alpha = r^2 with r > 0: the checker then meets rational functions instead of sqrt(alpha)
    (the same identities, proved an order of magnitude faster by `cancel`)."""
    return square_roots(alphas)


# alpha_bar_t = prod_{i <= t} alpha_i (the paper's definition, with eq. (69)), one factor
# peeled off: proved by `alpha_bar_recursion` below.
ALPHA_BAR = lemma(alpha_bar_t, alpha_t * alpha_bar_prev, "derivations.vdm.alpha_bar_recursion")


def _kl(mq, vq, mp, vp):
    """KL(N(mq, vq) || N(mp, vp)), the closed form of eq. (86), logs split as in `_lpdf`."""
    return sp.expand_log((sp.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1) / 2, force=True)


# --- definitions, eqs. (30)-(33) ---


@register(30, 31)
def forward_process(T: int = ELBO_DEFAULT_T) -> Derivation:
    """The forward (encoder) chain, eqs. (30), (31).

    q(x_t | x_{t-1}) = N(x_t; sqrt(alpha_t) x_{t-1}, (1 - alpha_t) I) (eq. (31)) and the
    Markov factorization q(x_{1:T} | x_0) = prod_t q(x_t | x_{t-1}) (eq. (30)), shown for T = 2.
    """
    x, al, *_ = _chain_symbols(T)
    steps = [
        Step(
            sp.Mul(
                *[_normal_pdf(x[t], sp.sqrt(al[t]) * x[t - 1], 1 - al[t]) for t in range(1, T + 1)]
            ),
            "definition",
            f"Markov chain of T = {T} forward steps",
            eq=30,
        ),
    ]
    return Derivation(
        "the forward process", (30, 31), steps, family=ELBO_FAMILY.replace("{T}", str(T))
    )


@register(31)
def forward_transition() -> Derivation:
    """The forward transition q(x_t | x_{t-1}) = N(x_t; sqrt(alpha_t) x_{t-1}, (1 - alpha_t) I), eq. (31)."""
    steps = [
        Step(
            _normal_pdf(_x_t, sp.sqrt(alpha_t) * _x_prev, 1 - alpha_t),
            "definition",
            "linear Gaussian forward transition",
            eq=31,
        )
    ]
    return Derivation("the forward transition", (31,), steps)


@register(32, 33)
def reverse_process(T: int = ELBO_DEFAULT_T) -> Derivation:
    """The generative (reverse) chain, eqs. (32), (33).

    p(x_T) = N(x_T; 0, I) (eq. (33)) and p(x_{0:T}) = p(x_T) prod_t p_theta(x_{t-1} | x_t)
    (eq. (32)), shown for T = 2 with linear-Gaussian p_theta(x_{t-1} | x_t) = N(a_t x_t + c_t,
    var_theta_t).
    """
    x, _, a, c, v = _chain_symbols(T)
    prior = _normal_pdf(x[T], 0, 1)
    steps = [
        Step(
            prior
            * sp.Mul(*[_normal_pdf(x[t - 1], a[t] * x[t] + c[t], v[t]) for t in range(1, T + 1)]),
            "definition",
            f"Markov chain of T = {T} reverse steps",
            eq=32,
        ),
    ]
    return Derivation(
        "the reverse process", (32, 33), steps, family=ELBO_FAMILY.replace("{T}", str(T))
    )


@register(33)
def reverse_prior() -> Derivation:
    """The prior p(x_T) = N(x_T; 0, I) of the reverse chain, eq. (33)."""
    x, *_ = _chain_symbols(ELBO_DEFAULT_T)
    prior = _normal_pdf(x[ELBO_DEFAULT_T], 0, 1)
    return Derivation("the reverse prior", (33,), [Step(prior, "definition", "", eq=33)])


# --- per-t terms of the two decompositions, in closed form (general t) ---


@register(45, 58)
def elbo_reconstruction_term() -> Derivation:
    """The reconstruction term E_{q(x_1|x_0)}[log p_theta(x_0 | x_1)] of eqs. (45), (58).

    x_1 ~ N(sqrt(alpha_1) x_0, 1 - alpha_1) and p_theta(x_0 | x_1) = N(a_1 x_1 + c_1, var_theta).
    """
    x1 = _x_t
    closed = -sp.log(2 * sp.pi * _var_theta) / 2 - (
        ((1 - a_t * sp.sqrt(alpha_t)) * x_0 - c_t) ** 2 + a_t**2 * (1 - alpha_t)
    ) / (2 * _var_theta)
    steps = [
        Step(_lpdf(x_0, a_t * x1 + c_t, _var_theta), "definition", "log p_theta(x_0 | x_1)"),
        Step(
            closed,
            "expectation",
            "x_1 ~ q(x_1 | x_0): E[x_1] = sqrt(alpha_1) x_0, Var[x_1] = 1 - alpha_1",
            over=(x1, sp.sqrt(alpha_t) * x_0, 1 - alpha_t),
        ),
    ]
    domains = {"x_0": "real", "alpha_t": "unit", "a_t": "real", "c_t": "real"}
    domains["var_theta"] = "positive"
    result = ClosedForm(
        "elbo_reconstruction_term",
        (45, 58),
        closed,
        ("x_0", "alpha_t", "a_t", "c_t", "var_theta"),
        domains,
        "Reconstruction term E_{q(x_1|x_0)}[log N(x_0; a_t x_1 + c_t, var_theta)] at t = 1 "
        "(alpha_t = alpha_1)",
        lhs=r"\mathbb{E}_{q(x_1|x_0)}[\log p_\theta(x_0|x_1)]",
        line="last",
    )
    return Derivation(
        "reconstruction term in closed form",
        (45, 58),
        steps,
        family=TERM_FAMILY,
        facts=_sqrt_facts([alpha_t, alpha_bar_t, alpha_bar_prev, alpha_next]),
        results=(result,),
    )


@register(58)
def elbo_prior_term() -> Derivation:
    """The prior matching term KL(q(x_T | x_0) || p(x_T)) of eq. (58), p(x_T) = N(0, 1)."""
    ab = alpha_bar_t
    closed = (-sp.log(1 - ab) - ab + ab * x_0**2) / 2
    # r - 1 - log r at r = 1 - alpha_bar_T: ~alpha_bar_T^2 / 2 where alpha_bar_T ~ 1e-9
    stable = (ab * x_0**2 + expm1mx(log1p(-ab))) / 2
    steps = [
        Step(
            _lpdf(_x_t, sp.sqrt(ab) * x_0, 1 - ab) - _lpdf(_x_t, 0, 1),
            "definition",
            "log q(x_T | x_0) - log p(x_T)",
        ),
        Step(
            closed,
            "expectation",
            "x_T ~ q(x_T | x_0) = N(sqrt(alpha_bar_T) x_0, 1 - alpha_bar_T) (eq. (70))",
            over=(_x_t, sp.sqrt(ab) * x_0, 1 - ab),
        ),
        Step(
            stable,
            "algebra",
            "r - 1 - log r = expm1(u) - u at u = log r = log1p(-alpha_bar_T): no cancellation "
            "when alpha_bar_T is tiny",
            name="stable",
        ),
    ]
    result = ClosedForm(
        "elbo_prior_term",
        (58,),
        stable,
        ("x_0", "alpha_bar_t"),
        {"x_0": "real", "alpha_bar_t": "open_unit"},
        "Prior matching term KL(q(x_T|x_0) || N(0, 1)) at alpha_bar_t = alpha_bar_T",
        lhs=r"D_{\mathrm{KL}}(q(x_T|x_0) \| p(x_T))",
        line="stable",
    )
    return Derivation(
        "prior matching term in closed form",
        (58,),
        steps,
        family=TERM_FAMILY,
        facts=_sqrt_facts([alpha_t, alpha_bar_t, alpha_bar_prev, alpha_next]),
        results=(result,),
    )


@register(58)
def elbo_denoising_term() -> Derivation:
    """The denoising matching term of eq. (58) at one t >= 2, in closed form.

    E_{q(x_t|x_0)}[KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))] with the posterior
    N(mu_q, var_q) of eqs. (84), (85) and p_theta = N(a_t x_t + c_t, var_theta).
    """
    ab = alpha_t * alpha_bar_prev
    mu_q, v_q = posterior_law(_x_t, x_0, alpha_t, alpha_bar_prev)
    k = sp.sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - ab)  # coefficient of x_t in mu_q
    j = sp.sqrt(alpha_bar_prev) * (1 - alpha_t) / (1 - ab)  # coefficient of x_0 in mu_q
    residual_mean = (k - a_t) * sp.sqrt(ab) * x_0 + j * x_0 - c_t
    closed = sp.expand_log(
        (
            sp.log(_var_theta / v_q)
            + (v_q + residual_mean**2 + (k - a_t) ** 2 * (1 - ab)) / _var_theta
            - 1
        )
        / 2,
        force=True,
    )
    steps = [
        Step(
            _lpdf(_x_prev, mu_q, v_q) - _lpdf(_x_prev, a_t * _x_t + c_t, _var_theta),
            "definition",
            "log q(x_{t-1} | x_t, x_0) - log p_theta(x_{t-1} | x_t)",
        ),
        Step(
            sp.expand(_kl(mu_q, v_q, a_t * _x_t + c_t, _var_theta)),
            "expectation",
            "x_{t-1} ~ q(x_{t-1} | x_t, x_0): the Gaussian KL, eq. (86)",
            over=(_x_prev, mu_q, v_q),
        ),
        Step(
            closed,
            "expectation",
            "x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t) (eq. (70))",
            over=(_x_t, sp.sqrt(ab) * x_0, 1 - ab),
        ),
    ]
    domains = {
        "x_0": "real",
        "alpha_t": "open_unit",
        "alpha_bar_prev": "open_unit",
        "a_t": "real",
        "c_t": "real",
        "var_theta": "positive",
    }
    result = ClosedForm(
        "elbo_denoising_term",
        (58,),
        closed,
        ("x_0", "alpha_t", "alpha_bar_prev", "a_t", "c_t", "var_theta"),
        domains,
        "Denoising matching term E_{q(x_t|x_0)}[KL(q(x_{t-1}|x_t, x_0) || "
        "N(a_t x_t + c_t, var_theta))] at one t >= 2",
        lhs=r"\mathbb{E}_{q(x_t|x_0)}[D_{\mathrm{KL}}(q(x_{t-1}|x_t, x_0) \| p_\theta(x_{t-1}|x_t))]",
        line="last",
    )
    return Derivation(
        "denoising matching term in closed form",
        (58,),
        steps,
        family=TERM_FAMILY,
        facts=_sqrt_facts([alpha_t, alpha_bar_t, alpha_bar_prev, alpha_next]),
        results=(result,),
    )


@register(45)
def elbo_prior_term_consistency() -> Derivation:
    """The prior matching term of derivation one, eq. (45), in closed form.

    E_{q(x_{T-1}|x_0)}[KL(q(x_T | x_{T-1}) || N(0, 1))], x_{T-1} ~ N(sqrt(alpha_bar_{T-1}) x_0,
    1 - alpha_bar_{T-1}) (alpha_bar_0 = 1: x_0 itself when T = 1).
    """
    a, abp = alpha_t, alpha_bar_prev
    closed = (-sp.log(1 - a) - a + a * (abp * x_0**2 + 1 - abp)) / 2
    steps = [
        Step(_kl(sp.sqrt(a) * _x_prev, 1 - a, 0, 1), "definition", "KL(q(x_T|x_{T-1}) || p(x_T))"),
        Step(
            closed,
            "expectation",
            "x_{T-1} ~ q(x_{T-1} | x_0) (eq. (70))",
            over=(_x_prev, sp.sqrt(abp) * x_0, 1 - abp),
        ),
    ]
    result = ClosedForm(
        "elbo_prior_term_consistency",
        (45,),
        closed,
        ("x_0", "alpha_t", "alpha_bar_prev"),
        {"x_0": "real", "alpha_t": "open_unit", "alpha_bar_prev": "unit"},
        "Prior matching term of derivation one, E_{q(x_{T-1}|x_0)}[KL(q(x_T|x_{T-1}) || "
        "N(0, 1))] at t = T",
        lhs=r"\mathbb{E}_{q(x_{T-1}|x_0)}[D_{\mathrm{KL}}(q(x_T|x_{T-1}) \| p(x_T))]",
        line="last",
    )
    return Derivation(
        "prior matching term (derivation one) in closed form",
        (45,),
        steps,
        family=TERM_FAMILY,
        facts=_sqrt_facts([alpha_t, alpha_bar_t, alpha_bar_prev, alpha_next]),
        results=(result,),
    )


@register(45)
def elbo_consistency_term() -> Derivation:
    """The consistency term of eq. (45) at one t in 1..T-1, in closed form.

    E_{q(x_{t-1}, x_t, x_{t+1}|x_0)}[log q(x_t | x_{t-1}) - log p_theta(x_t | x_{t+1})] with
    p_theta(x_t | x_{t+1}) = N(a_next x_{t+1} + c_next, var_theta_next): the expectation of
    eq. (44), taken under the chain's joint law. Note: eq. (45) writes this as
    E_{q(x_{t-1}, x_{t+1}|x_0)}[KL(q(x_t|x_{t-1}) || p_theta(x_t|x_{t+1}))], which integrates
    x_t under q(x_t | x_{t-1}) although, given x_{t+1}, x_t follows q(x_t | x_{t-1}, x_{t+1});
    the two differ by a_next sqrt(alpha_next) (1 - alpha_t) / var_theta_next (tests/test_vdm.py
    shows it, strict xfail). Here the expectation is the correct one, taken inside out.
    """
    a, an, abp = alpha_t, alpha_next, alpha_bar_prev
    mean_t = sp.sqrt(a * abp) * x_0
    gain = 1 - a_next * sp.sqrt(an)  # x_t - a x_{t+1} - c = gain x_t - a sqrt(1-an) eps - c
    closed = sp.expand_log(
        (sp.log(var_theta_next / (1 - a)) - 1) / 2
        + ((gain * mean_t - c_next) ** 2 + gain**2 * (1 - a * abp) + a_next**2 * (1 - an))
        / (2 * var_theta_next),
        force=True,
    )
    steps = [
        Step(
            _lpdf(_x_t, sp.sqrt(a) * _x_prev, 1 - a)
            - _lpdf(_x_t, a_next * _x_next + c_next, var_theta_next),
            "definition",
            "log q(x_t | x_{t-1}) - log p_theta(x_t | x_{t+1})",
        ),
        Step(
            sp.expand_log(
                -sp.log(2 * sp.pi * (1 - a)) / 2
                - (_x_t - sp.sqrt(a) * _x_prev) ** 2 / (2 * (1 - a))
                + sp.log(2 * sp.pi * var_theta_next) / 2
                + ((gain * _x_t - c_next) ** 2 + a_next**2 * (1 - an)) / (2 * var_theta_next),
                force=True,
            ),
            "expectation",
            "innermost: x_{t+1} ~ q(x_{t+1} | x_t) (eq. (31))",
            over=(_x_next, sp.sqrt(an) * _x_t, 1 - an),
        ),
        Step(
            sp.expand_log(
                -sp.log(2 * sp.pi * (1 - a)) / 2
                - sp.Rational(1, 2)
                + sp.log(2 * sp.pi * var_theta_next) / 2
                + (
                    (gain * sp.sqrt(a) * _x_prev - c_next) ** 2
                    + gain**2 * (1 - a)
                    + a_next**2 * (1 - an)
                )
                / (2 * var_theta_next),
                force=True,
            ),
            "expectation",
            "then x_t ~ q(x_t | x_{t-1}) (eq. (31))",
            over=(_x_t, sp.sqrt(a) * _x_prev, 1 - a),
        ),
        Step(
            closed,
            "expectation",
            "then x_{t-1} ~ q(x_{t-1} | x_0) (eq. (70))",
            over=(_x_prev, sp.sqrt(abp) * x_0, 1 - abp),
        ),
    ]
    domains = {
        "x_0": "real",
        "alpha_t": "open_unit",
        "alpha_next": "unit",
        "alpha_bar_prev": "unit",
        "a_next": "real",
        "c_next": "real",
        "var_theta_next": "positive",
    }
    result = ClosedForm(
        "elbo_consistency_term",
        (45,),
        closed,
        ("x_0", "alpha_t", "alpha_next", "alpha_bar_prev", "a_next", "c_next", "var_theta_next"),
        domains,
        "Consistency term at one t in 1..T-1: E_q[log q(x_t|x_{t-1}) - log N(x_t; a_next "
        "x_{t+1} + c_next, var_theta_next)] under the chain's joint law",
        lhs=r"\mathbb{E}_{q(x_{t-1},x_t,x_{t+1}|x_0)}"
        r"\left[\log \frac{q(x_t|x_{t-1})}{p_\theta(x_t|x_{t+1})}\right]",
        line="last",
    )
    return Derivation(
        "consistency term in closed form",
        (45,),
        steps,
        family=TERM_FAMILY,
        facts=_sqrt_facts([alpha_t, alpha_bar_t, alpha_bar_prev, alpha_next]),
        results=(result,),
    )


# --- the T-step instance: symbols, forward joint law, log-densities ---


_GENERIC = {
    "x_0": x_0,
    "alpha_t": alpha_t,
    "alpha_bar_t": alpha_bar_t,
    "alpha_bar_prev": alpha_bar_prev,
    "alpha_next": alpha_next,
    "a_t": a_t,
    "c_t": c_t,
    "var_theta": _var_theta,
    "a_next": a_next,
    "c_next": c_next,
    "var_theta_next": var_theta_next,
}


def _term(builder, **values):
    """The closed form of a per-t term derivation at the given values of its symbols."""
    (result,) = builder().results
    return result.expr.subs({_GENERIC[k]: v for k, v in values.items()}, simultaneous=True)


def _closed_form_one(ch: Chain):
    """Eq. (45) from the per-t closed forms: reconstruction - prior - sum of consistency."""
    T, al, a, c, v = ch.T, ch.al, ch.a, ch.c, ch.v
    recon = _term(elbo_reconstruction_term, alpha_t=al[1], a_t=a[1], c_t=c[1], var_theta=v[1])
    prior = _term(elbo_prior_term_consistency, alpha_t=al[T], alpha_bar_prev=ch.ab(T - 1))
    consistency = [
        _term(
            elbo_consistency_term,
            alpha_t=al[t],
            alpha_next=al[t + 1],
            alpha_bar_prev=ch.ab(t - 1),
            a_next=a[t + 1],
            c_next=c[t + 1],
            var_theta_next=v[t + 1],
        )
        for t in range(1, T)
    ]
    return recon - prior - sp.Add(*consistency)


def _closed_form_two(ch: Chain):
    """Eq. (58) from the per-t closed forms: reconstruction - prior - sum of denoising."""
    T, al, a, c, v = ch.T, ch.al, ch.a, ch.c, ch.v
    recon = _term(elbo_reconstruction_term, alpha_t=al[1], a_t=a[1], c_t=c[1], var_theta=v[1])
    prior = _term(elbo_prior_term, alpha_bar_t=ch.ab(T))
    denoising = [
        _term(
            elbo_denoising_term,
            alpha_t=al[t],
            alpha_bar_prev=ch.ab(t - 1),
            a_t=a[t],
            c_t=c[t],
            var_theta=v[t],
        )
        for t in range(2, T + 1)
    ]
    return recon - prior - sp.Add(*denoising)


# --- the bound, eqs. (34)-(37) and (47) ---


@register(34, 35, 36, 37, 47)
def elbo_bound(T: int = BOUND_DEFAULT_T) -> Derivation:
    """log p(x_0) >= ELBO for the diffusion chain, eqs. (34)-(37) (restated as eq. (47)).

    log p(x_0) is exact: the reverse chain's marginal N(M_0, V_0), propagated from
    x_T ~ N(0, 1) through p_theta(x_{t-1} | x_t) = N(a_t x_t + c_t, var_theta_t). The ELBO is
    E_{q(x_{1:T}|x_0)}[log p(x_{0:T}) - log q(x_{1:T}|x_0)], a quadratic's expectation under
    the chain's joint Gaussian law. Jensen's gap is KL(q(x_{1:T}|x_0) || p(x_{1:T}|x_0)),
    written in closed form from p's precision matrix over x_{1:T} (checked: its determinant
    is V_0 / prod var_theta_t, and q's covariance has determinant prod (1 - alpha_t)).
    """
    ch = Chain(T)
    m0, v0 = ch.marginal()
    log_px = _lpdf(x_0, m0, v0)
    xs, mq, sq = ch.law(*range(1, T + 1))
    elbo = sp.expand(_expect_gaussian_vector(ch.integrand(), xs, mq, sq))
    # p(x_{1:T} | x_0): -log p(x_{0:T}) = x^T Lam x / 2 - h^T x + const in x = x_{1:T}
    neg = -(ch.lprior() + sp.Add(*[ch.lp(t) for t in range(1, T + 1)]))
    lam = sp.hessian(neg, xs)
    h = -sp.Matrix([sp.diff(neg, s) for s in xs]).subs({s: 0 for s in xs})
    det_lam = v0 / sp.Mul(*ch.v[1:])
    det_sq = sp.Mul(*[1 - ch.al[t] for t in range(1, T + 1)])
    for what, got, want in (("det Lam", lam.det(), det_lam), ("det S_q", sq.det(), det_sq)):
        ok, detail = _equal(got, want)
        if not ok:
            raise _DerivationError(f"elbo_bound: {what} is not its stated closed form: {detail}")
    mvec = sp.Matrix(mq)
    mp = lam.LUsolve(h)
    steps = [
        Step(log_px, "definition", "log p(x_0) of the reverse chain: N(M_0, V_0)", eq=34),
        Step(log_px, "algebra", "multiply and divide by q(x_{1:T} | x_0)", eq=35),
        Step(log_px, "linearity", "the integral against q is an expectation", eq=36),
        Step(
            elbo,
            "jensen",
            "log E[.] >= E[log .]; the gap is KL(q(x_{1:T}|x_0) || p(x_{1:T}|x_0))",
            eq=37,
            gap=KL(
                mvec, sq, mp, lam, unit=tuple(ch.al[1:])
            ),  # the engine's KL; `gap` above is the same, written out
        ),
    ]
    return Derivation(
        "the diffusion ELBO bounds log p(x_0)",
        (34, 35, 36, 37, 47),
        steps,
        claims=(47,),  # log p(x) >= ELBO: from the first line to the last
        family=ELBO_FAMILY.replace("{T}", str(T)),
        facts=_sqrt_facts(ch.al[1:]),
    )


# --- derivation one, eqs. (38)-(45) ---


@register(38, 39, 40, 41, 42, 43, 44, 45)
def elbo_derivation_one(T: int = ELBO_DEFAULT_T) -> Derivation:
    """ELBO derivation one, eqs. (38)-(45): reconstruction, prior matching, consistency terms.

    Lines (38)-(43) are the integrand log p(x_{0:T}) - log q(x_{1:T} | x_0) regrouped as the
    paper does; (44) takes each group's expectation under its own marginal of the chain;
    (45) writes them with the per-t closed forms. The consistency term is the expectation of
    eq. (44) under q(x_{t-1}, x_t, x_{t+1} | x_0); eq. (45)'s literal KL form, which integrates
    x_t under q(x_t | x_{t-1}) instead, is not equal to it (see `elbo_consistency_term`).
    """
    ch = Chain(T)
    lp, lq, lprior = ch.lp, ch.lq, ch.lprior()
    ts = range(1, T)  # t = 1..T-1
    prods = sp.Add(*[lp(t) for t in range(2, T + 1)])
    xs, m, cov = ch.law(*range(1, T + 1))
    line44 = sp.expand(
        ch.E(lp(1), 1)
        + ch.E(lprior - lq(T), T - 1, T)
        + sp.Add(*[ch.E(lp(t + 1) - lq(t), t - 1, t, t + 1) for t in ts])
    )
    steps = [
        Step(ch.integrand(), "definition", "eq. (37)'s integrand with eqs. (30), (32)", eq=38),
        Step(
            (lprior + lp(1) + prods) - (lq(T) + sp.Add(*[lq(t) for t in ts])),
            "algebra",
            "pull out p_theta(x_0|x_1) and q(x_T|x_{T-1})",
            eq=39,
        ),
        Step(
            (lprior + lp(1) + sp.Add(*[lp(t + 1) for t in ts]))
            - (lq(T) + sp.Add(*[lq(t) for t in ts])),
            "algebra",
            "re-index the reverse product t -> t + 1",
            eq=40,
        ),
        Step(
            (lprior + lp(1) - lq(T)) + sp.Add(*[lp(t + 1) - lq(t) for t in ts]),
            "log_rules",
            "split into two logs",
            eq=41,
        ),
        Step(
            lp(1) + (lprior - lq(T)) + sp.Add(*[lp(t + 1) - lq(t) for t in ts]),
            "log_rules",
            "three logs",
            eq=42,
        ),
        Step(
            lp(1) + (lprior - lq(T)) + sp.Add(*[lp(t + 1) - lq(t) for t in ts]),
            "linearity",
            "sum outside the expectation",
            eq=43,
        ),
        Step(
            line44,
            "joint_expectation",
            "each term's expectation under its own marginal of q(x_{1:T} | x_0)",
            eq=44,
            over=(xs, m, cov),
        ),
        Step(
            sp.expand(_closed_form_one(ch)),
            "gaussian_kl",
            "prior matching KL (eq. (86)) and the consistency terms, per-t closed forms",
            eq=45,
        ),
    ]
    return Derivation(
        "ELBO derivation one",
        (38, 39, 40, 41, 42, 43, 44, 45),
        steps,
        family=ELBO_FAMILY.replace("{T}", str(T)),
        facts=_sqrt_facts(ch.al[1:]),
    )


# --- the Bayes rewrite, eq. (46) ---


@register(46)
def forward_step_bayes() -> Derivation:
    """q(x_t | x_{t-1}, x_0) = q(x_{t-1} | x_t, x_0) q(x_t | x_0) / q(x_{t-1} | x_0), eq. (46).

    The left side is the forward step (Markov: x_0 adds nothing, eq. (31)); on the right the
    posterior N(mu_q, var_q) of eqs. (84), (85) and the marginals of eq. (70). Proved for
    general alpha_t, alpha_bar_{t-1} (alpha_bar_t = alpha_t alpha_bar_{t-1}).
    """
    mu, vq = posterior_law(_x_t, x_0, alpha_t, alpha_bar_prev)
    ab = alpha_t * alpha_bar_prev
    # In log space (the densities' logs, factors of the variances split): comparing the
    # densities themselves (`normal_pdf`) needs `simplify` on exponentials, minutes per step.
    rhs = (
        _lpdf(_x_prev, mu, vq)
        + _lpdf(_x_t, sp.sqrt(ab) * x_0, 1 - ab)
        - _lpdf(_x_prev, sp.sqrt(alpha_bar_prev) * x_0, 1 - alpha_bar_prev)
    )
    steps = [
        Step(
            _lpdf(_x_t, sp.sqrt(alpha_t) * _x_prev, 1 - alpha_t),
            "definition",
            "log q(x_t | x_{t-1}, x_0) = log q(x_t | x_{t-1}) by the Markov property",
        ),
        Step(rhs, "bayes", "Bayes' rule on the Gaussian densities (their logs)", eq=46),
    ]
    return Derivation(
        "Bayes rewrite of the forward step",
        (46,),
        steps,
        facts=_sqrt_facts([alpha_t, alpha_bar_prev]),
    )


# --- derivation two, eqs. (47)-(58) ---


@register(47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58)
def elbo_derivation_two(T: int = ELBO_DEFAULT_T) -> Derivation:
    """ELBO derivation two, eqs. (47)-(58): reconstruction, prior and denoising matching terms.

    Starts from the ELBO of eq. (47), rewrites each forward step t >= 2 by Bayes (eq. (46)),
    telescopes the marginal ratios (eqs. (53), (54)), takes each group's expectation under its
    own marginal (eq. (57)) and writes the per-t closed forms (eq. (58)). Last line: the same
    number as derivation one's eq. (45).
    """
    ch = Chain(T)
    lp, lq, lqm, lpost, lprior = ch.lp, ch.lq, ch.lqm, ch.lpost, ch.lprior()
    late = range(2, T + 1)  # t = 2..T
    xs, m, cov = ch.law(*range(1, T + 1))
    rest = sp.Add(*[lp(t) - lpost(t) for t in late])
    line57 = sp.expand(
        ch.E(lp(1), 1)
        + ch.E(lprior - lqm(T), T)
        + sp.Add(*[ch.E(lp(t) - lpost(t), t - 1, t) for t in late])
    )
    steps = [
        Step(ch.integrand(), "definition", "the ELBO integrand of eq. (47)", eq=47),
        Step(ch.integrand(), "substitute", "the factorizations (30), (32)", eq=48),
        Step(
            (lprior + lp(1) + sp.Add(*[lp(t) for t in late]))
            - (lq(1) + sp.Add(*[lq(t) for t in late])),
            "algebra",
            "pull out the t = 1 factors",
            eq=49,
        ),
        Step(
            (lprior + lp(1) + sp.Add(*[lp(t) for t in late]))
            - (lq(1) + sp.Add(*[lq(t) for t in late])),
            "markov",
            "q(x_t | x_{t-1}) = q(x_t | x_{t-1}, x_0)",
            eq=50,
        ),
        Step(
            (lprior + lp(1) - lq(1)) + sp.Add(*[lp(t) - lq(t) for t in late]),
            "log_rules",
            "split the log",
            eq=51,
        ),
        Step(
            (lprior + lp(1) - lq(1))
            + sp.Add(*[lp(t) - (lpost(t) + lqm(t) - lqm(t - 1)) for t in late]),
            "bayes",
            "eq. (46) for every t >= 2",
            eq=52,
        ),
        Step(
            (lprior + lp(1) - lq(1))
            + rest
            - (sp.Add(*[lqm(t) for t in late]) - sp.Add(*[lqm(t - 1) for t in late])),
            "algebra",
            "collect the marginal ratios",
            eq=53,
        ),
        Step(
            (lprior + lp(1) - lq(1)) + (lqm(1) - lqm(T)) + rest,
            "telescope",
            "prod_{t=2}^T q(x_{t-1}|x_0) / q(x_t|x_0) = q(x_1|x_0) / q(x_T|x_0)",
            eq=54,
        ),
        Step(
            (lprior + lp(1) - lqm(T)) + rest,
            "algebra",
            "q(x_1 | x_0) cancels",
            eq=55,
        ),
        Step(lp(1) + (lprior - lqm(T)) + rest, "linearity", "three expectations", eq=56),
        Step(
            line57,
            "joint_expectation",
            "each term's expectation under its own marginal of q(x_{1:T} | x_0)",
            eq=57,
            over=(xs, m, cov),
        ),
        Step(
            sp.expand(_closed_form_two(ch)),
            "gaussian_kl",
            "prior and denoising matching KLs (eq. (86)), per-t closed forms",
            eq=58,
        ),
        Step(
            sp.expand(_closed_form_one(ch)),
            "algebra",
            "the same number as derivation one, eq. (45)",
        ),
    ]
    return Derivation(
        "ELBO derivation two",
        (47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58),
        steps,
        family=ELBO_FAMILY.replace("{T}", str(T)),
        facts=_sqrt_facts(ch.al[1:]),
    )


# --- q(x_t | x_0) by recursive reparameterization, eqs. (59)-(70) ------------------------------

# Independent standard normals of the reparameterization (eqs. (59)-(66)).
eps_t, eps_prev = sp.symbols("epsilon_t^* epsilon_{t-1}^*", real=True)
x_t_minus_2 = sp.Symbol("x_{t-2}", real=True)
alpha_t_minus_1 = sp.Symbol("alpha_{t-1}", positive=True)


@register(59, 60, 61, 62, 63, 64, 65, 66)
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
        Step(x_t, "definition", "the sample x_t"),
        Step(
            sp.sqrt(a) * x_t_minus_1 + sp.sqrt(1 - a) * eps_t,
            "reparameterize",
            "one forward step (eq. (31)), reparameterized as in eq. (59)",
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
        facts=(
            definition(x_t_minus_1, x_prev, 31),
            definition(x_t, sp.sqrt(a) * x_t_minus_1 + sp.sqrt(1 - a) * eps_t, 31),
        ),
    )


def _step_law(x_from, alpha, n: int) -> Derivation:
    """The reparameterized step x = sqrt(alpha) x_from + sqrt(1 - alpha) eps has the law of
    q(x | x_from) = N(sqrt(alpha) x_from, 1 - alpha) (eq. (31)): line n."""
    e = sp.Symbol("epsilon", real=True)
    law = gaussian_law(sp.sqrt(alpha) * x_from + sp.sqrt(1 - alpha) * e, (e,))
    steps = [
        Step(sp.Tuple(*law), "definition", "(mean, variance) of the reparameterized sample"),
        Step(sp.Tuple(sp.sqrt(alpha) * x_from, 1 - alpha), "algebra", "those of eq. (31)", eq=n),
    ]
    return Derivation(f"the reparameterized step of eq. ({n})", (n,), steps)


@register(59)
def forward_step_sample() -> Derivation:
    """x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps is a draw of q(x_t | x_{t-1}), eq. (59)."""
    return _step_law(sp.Symbol("x_{t-1}", real=True), alpha_t, 59)


@register(60)
def previous_step_sample() -> Derivation:
    """x_{t-1} = sqrt(alpha_{t-1}) x_{t-2} + sqrt(1 - alpha_{t-1}) eps, eq. (60): the step before."""
    return _step_law(x_t_minus_2, alpha_t_minus_1, 60)


def _forward_marginal_results():
    """The closed forms of q(x_t | x_0): mean and variance (eq. (70)), the sample (eq. (69))."""
    domains = {"x_0": "real", "alpha_bar_t": "unit", "eps": "real"}
    return (
        ClosedForm(
            "q_mean",
            (70,),
            sp.sqrt(alpha_bar_t) * x_0,
            ("x_0", "alpha_bar_t"),
            domains,
            "Mean of q(x_t | x_0)",
            lhs=r"\mathbb{E}[x_t \mid x_0]",
            line=70,
            component=0,
        ),
        ClosedForm(
            "q_var",
            (70,),
            1 - alpha_bar_t,
            ("alpha_bar_t",),
            domains,
            "Variance of q(x_t | x_0) (per coordinate)",
            lhs=r"\mathrm{Var}[x_t \mid x_0]",
            line=70,
            component=1,
        ),
        ClosedForm(
            "q_sample",
            (69,),
            sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps,
            ("x_0", "alpha_bar_t", "eps"),
            domains,
            "Reparameterized sample of q(x_t | x_0) from standard normal noise eps",
            lhs="x_t",
            line=69,
        ),
    )


@register(67, 68, 69, 70)
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
    results = _forward_marginal_results()
    return Derivation(
        "q(x_t | x_0) by induction over t",
        (67, 68, 69, 70),
        steps,
        facts=(ALPHA_BAR,),
        results=results[2:],  # the law (first two) is tied to eq. (70) below
    )


@register(70)
def forward_marginal_law() -> Derivation:
    """The law of the sample of eq. (69): q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t), eq. (70).

    Mean and variance of an expression linear in standard normal noise, as the engine reads
    them off (`gaussian_law`).
    """
    sample = sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * eps
    steps = [
        Step(sp.Tuple(*gaussian_law(sample, (eps,))), "definition", "(mean, variance) of eq. (69)"),
        Step(sp.Tuple(sp.sqrt(alpha_bar_t) * x_0, 1 - alpha_bar_t), "algebra", "", eq=70),
    ]
    return Derivation(
        "the law of q(x_t | x_0)", (70,), steps, results=_forward_marginal_results()[:2]
    )


@register(69)
def alpha_bar_recursion() -> Derivation:
    """alpha_bar_t = prod_{i=1}^t alpha_i (defined with eq. (69)) = alpha_t alpha_bar_{t-1}.

    Peel the last factor off the product (the `evaluate` rule's product step).
    """
    i, t = sp.symbols("i t", integer=True, positive=True)
    alpha = sp.Function("alpha", positive=True)
    steps = [
        Step(sp.Product(alpha(i), (i, 1, t)), "definition", "alpha_bar_t"),
        Step(alpha(t) * sp.Product(alpha(i), (i, 1, t - 1)), "evaluate", "alpha_t alpha_bar_{t-1}"),
    ]
    return Derivation("alpha_bar_t = alpha_t alpha_bar_{t-1}", (69,), steps)


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
        (71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 93),
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
        (84, 85, 93),
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
        (83, 84, 85),
        steps,
        facts=(ALPHA_BAR,),
    )


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
        (86,),
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
    return Derivation(
        "the denoising KL with matched variances", (87, 88, 89, 90, 91, 92), steps, results=results
    )


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
        (94, 95, 96, 97, 98, 99),
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
    return Derivation("the forward posterior's mean", (93,), steps, facts=(ALPHA_BAR,))


@register(94)
def mu_theta_definition() -> Derivation:
    """mu_theta(x_t, t): mu_q (eq. (93)) with x_0 replaced by the prediction x_0_hat, eq. (94).

    No closed form of its own: the runtime layers compute mu_theta by calling mu_q at
    x_0 = x_0_hat (one source for the formula)."""
    steps = [Step(_mu_q_expr(x_0_hat), "definition", "the mean of p_theta(x_{t-1} | x_t)", eq=94)]
    return Derivation("the x_0-parameterized mean", (94,), steps)


@register(100)
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


# --- Noise schedules: named schedules and a schedule's coefficients in log space -------------
# The Schedule tables of reference/ and torch_impl/ are built from these closed forms: the
# per-t beta_t of the named schedules (eq. (31)'s alpha_t = 1 - beta_t), and, from beta_t and
# log alpha_bar_t = sum of log alpha_i (the product of eq. (69), a scan the tables do), the
# forms of eqs. (70), (85) and (109) that lose no digits near alpha_bar = 1 or 0.

# t and T as reals: the closed forms are evaluated on t = 1..T, and are analytic in both
_t_step, _T_steps = sp.symbols("t T", positive=True)
_beta_start, _beta_end = sp.symbols("beta_start beta_end", positive=True)
_cosine_s = sp.Symbol("s", positive=True)  # the cosine schedule's offset (not a time step)
_SCHEDULE_DOMAINS = {
    "t": "positive",
    "T": "positive",
    "beta_start": "open_unit",
    "beta_end": "open_unit",
    "s": "positive",
    "beta_t": "open_unit",
    "log_alpha_bar_t": "negative",
    "log_alpha_bar_prev": "nonpositive",
}


def _lerp(start, end):
    """start at t = 1 to end at t = T, linear in t; the product written as
    ((end - start) / (T - 1)) (t - 1), the order of NumPy's linspace (same roundings)."""
    step = (end - start) / (_T_steps - 1)
    return start + sp.Mul(step, _t_step - 1, evaluate=False)


def _cosine_f(u):
    """Improved DDPM's f(u) = cos((u + s) / (1 + s) pi / 2)^2, evaluated in that order."""
    return sp.cos(sp.Mul((u + _cosine_s) / (1 + _cosine_s), sp.pi / 2, evaluate=False)) ** 2


def _named_betas():
    """beta_t of the linear, scaled-linear and cosine schedules (as tuple components)."""
    f = _cosine_f
    target = f(_t_step / _T_steps) / f(0)  # the cosine schedule's alpha_bar_t
    target_prev = f((_t_step - 1) / _T_steps) / f(0)
    return (
        _lerp(_beta_start, _beta_end),
        _lerp(sp.sqrt(_beta_start), sp.sqrt(_beta_end)) ** 2,
        1 - target / target_prev,
    )


@register(31, 70)
def named_schedules() -> Derivation:
    """beta_t = 1 - alpha_t (eq. (31)) of the three named schedules, t = 1..T.

    Linear (DDPM): beta_t linear in t from beta_start to beta_end. Scaled linear (Stable
    Diffusion): sqrt(beta_t) linear in t. Cosine (improved DDPM): a target alpha_bar_t =
    f(t / T) / f(0) (eq. (70)), f(u) = cos((u + s) / (1 + s) pi / 2)^2, so that by
    alpha_bar_t = alpha_t alpha_bar_{t-1} each step has alpha_t = f(t / T) / f((t - 1) / T)
    (the schedule then clips beta_t at max_beta, a convention of the builder).
    """
    linear, scaled, cosine = _named_betas()
    f = _cosine_f
    steps = [
        Step(
            sp.Tuple(linear, scaled, cosine),
            "definition",
            "linear, scaled-linear, and cosine as 1 - alpha_bar_t / alpha_bar_{t-1}",
        ),
        Step(
            sp.Tuple(linear, scaled, 1 - f(_t_step / _T_steps) / f((_t_step - 1) / _T_steps)),
            "algebra",
            "the cosine target's f(0) cancels",
            name="beta_t",
        ),
    ]
    kinds = (
        ("linear_beta_t", "DDPM's linear schedule", ("beta_start", "beta_end")),
        ("scaled_linear_beta_t", "Stable Diffusion's scaled-linear", ("beta_start", "beta_end")),
        ("cosine_beta_t", "Improved DDPM's cosine schedule (before clipping)", ("s",)),
    )
    results = tuple(
        ClosedForm(
            name,
            (31,) if i < 2 else (31, 70),
            steps[-1].expr[i],
            ("t", "T", *params),
            _SCHEDULE_DOMAINS,
            f"{summary}: beta_t = 1 - alpha_t at step t of T",
            lhs=r"\beta_t",
            line="beta_t",
            component=i,
        )
        for i, (name, summary, params) in enumerate(kinds)
    )
    return Derivation("the named noise schedules", (31, 70), steps, results=results)


@register(31)
def named_schedule_ends() -> Derivation:
    """The linear schedules run from beta_start at t = 1 to beta_end at t = T (eq. (31)), and the
    cosine schedule's target alpha_bar starts at 1 (alpha_bar_0 = 1)."""
    linear, scaled, _ = _named_betas()
    f = _cosine_f
    ends = (
        linear.subs(_t_step, 1),
        linear.subs(_t_step, _T_steps),
        scaled.subs(_t_step, 1),
        scaled.subs(_t_step, _T_steps),
        f(0 / _T_steps) / f(0),
    )
    steps = [
        Step(sp.Tuple(*ends), "definition", "each schedule at t = 1 and t = T"),
        Step(sp.Tuple(_beta_start, _beta_end, _beta_start, _beta_end, 1), "algebra", "ends"),
    ]
    return Derivation("the ends of the named schedules", (31,), steps)


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0 without cancellation at either end (Maechler 2012):
    log(-expm1(x)) near 0, log1p(-exp(x)) below -log 2."""
    return sp.Piecewise((sp.log(-_expm1(x)), x > -sp.log(2)), (_log1p(-sp.exp(x)), True))


@register(70, 85, 109)
def schedule_in_log_space() -> Derivation:
    """A schedule's coefficients from beta_t and log alpha_bar, eqs. (70), (85), (109).

    With beta_t = 1 - alpha_t and L = log alpha_bar_t (L' = log alpha_bar_{t-1}): log alpha_t =
    log1p(-beta_t); 1 - alpha_bar_t (eq. (70)) = -expm1(L); sigma_q^2(t) (eq. (85)) =
    beta_t expm1(L') / expm1(L) and its log; log SNR(t) (eq. (109)) = L - log(1 - exp(L)).
    Each is the paper's formula, proved equal after the changes of variables alpha = 1 / (1 + u)
    (every alpha in (0, 1), so 1 - alpha is visibly positive and logs split).
    """
    a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev
    var = (1 - a) * (1 - abp) / (1 - ab)
    paper = sp.Tuple(sp.log(a), 1 - ab, var, sp.log(var), sp.log(ab / (1 - ab)))
    stable = sp.Tuple(
        _log1p(-_beta_t),
        -_expm1(_log_ab),
        _beta_t * _expm1(_log_ab_prev) / _expm1(_log_ab),
        sp.log(_beta_t) + _log1mexp(_log_ab_prev) - _log1mexp(_log_ab),
        _log_ab - _log1mexp(_log_ab),
    )
    steps = [
        Step(
            paper,
            "definition",
            "log alpha_t; eq. (70)'s variance; eq. (85) and its log; log SNR, eq. (109)",
        ),
        Step(
            stable,
            "substitute",
            "beta_t = 1 - alpha_t, alpha_bar = exp(L): expm1, log1p, log(1 - exp(L))",
            name="log space",
        ),
    ]
    units = _unit_intervals((a, ab, abp))
    u_a, u_ab, u_abp = (sp.cancel(1 / f.value - 1) for f in units)
    facts = (
        *units,
        _abbreviation(_beta_t, u_a / (1 + u_a)),  # 1 - alpha_t
        _abbreviation(_log_ab, -sp.log(1 + u_ab)),  # log alpha_bar_t
        _abbreviation(_log_ab_prev, -sp.log(1 + u_abp)),  # log alpha_bar_{t-1}
    )
    log_args = ("beta_t", "log_alpha_bar_t", "log_alpha_bar_prev")
    forms = (
        (
            "log_alpha_t",
            (31,),
            ("beta_t",),
            "log alpha_t = log(1 - beta_t) (eq. (31))",
            r"\log\alpha_t",
        ),
        (
            "q_var_from_log_alpha_bar",
            (70,),
            ("log_alpha_bar_t",),
            "Variance 1 - alpha_bar_t of q(x_t | x_0) from log alpha_bar_t",
            r"1 - \bar\alpha_t",
        ),
        (
            "var_q_from_log_alpha_bars",
            (85,),
            log_args,
            "Variance of q(x_{t-1} | x_t, x_0) from beta_t and the log alpha_bars",
            r"\sigma_q^2(t)",
        ),
        (
            "log_var_q_from_log_alpha_bars",
            (85,),
            log_args,
            "log of the variance of q(x_{t-1} | x_t, x_0) (-inf at t = 1, where "
            "log_alpha_bar_prev = 0)",
            r"\log\sigma_q^2(t)",
        ),
        (
            "log_snr_from_log_alpha_bar",
            (109,),
            ("log_alpha_bar_t",),
            "log SNR(t) from log alpha_bar_t",
            r"\log\mathrm{SNR}(t)",
        ),
    )
    results = tuple(
        ClosedForm(
            name,
            eqs,
            stable[i],
            args,
            _SCHEDULE_DOMAINS,
            summary,
            lhs=lhs,
            line="log space",
            component=i,
        )
        for i, (name, eqs, args, summary, lhs) in enumerate(forms)
    )
    return Derivation(
        "a schedule's coefficients in log space",
        (70, 85, 109),
        steps,
        facts=facts,
        results=results,
    )
