"""The forward and reverse processes (eqs. (30)-(33)) and both ELBO derivations (eqs. (34)-(58)),
on 1-D Gaussian data with a linear-Gaussian reverse model.

SymPy derivations of paper section 2.1 (Variational Diffusion Models); see
`udm.derivations.vdm` for the whole section."""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations._chain import Chain, posterior_law
from udm.derivations._chain import chain_symbols as _chain_symbols
from udm.derivations._chain import lpdf as _lpdf
from udm.derivations._stable import expm1mx, log1p
from udm.derivations.core import (
    KL,
    ClosedForm,
    Derivation,
    Step,
)
from udm.derivations.core import DerivationError as _DerivationError
from udm.derivations.core import equal as _equal
from udm.derivations.core import expect_gaussian_vector as _expect_gaussian_vector
from udm.derivations.core import normal_pdf as _normal_pdf
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    x_0,
)
from udm.derivations.symbols import var_theta as _var_theta
from udm.derivations.symbols import x_next as _x_next
from udm.derivations.symbols import x_prev as _x_prev
from udm.derivations.symbols import x_t as _x_t
from udm.derivations.vdm._common import (
    BOUND_DEFAULT_T,
    ELBO_DEFAULT_T,
    ELBO_FAMILY,
    TERM_FAMILY,
    _kl,
    _sqrt_facts,
    a_next,
    a_t,
    alpha_next,
    c_next,
    c_t,
    var_theta_next,
)

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
    return Derivation("the forward process", steps, family=ELBO_FAMILY.replace("{T}", str(T)))


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
    return Derivation("the forward transition", steps)


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
    return Derivation("the reverse process", steps, family=ELBO_FAMILY.replace("{T}", str(T)))


@register(33)
def reverse_prior() -> Derivation:
    """The prior p(x_T) = N(x_T; 0, I) of the reverse chain, eq. (33)."""
    x, *_ = _chain_symbols(ELBO_DEFAULT_T)
    prior = _normal_pdf(x[ELBO_DEFAULT_T], 0, 1)
    return Derivation("the reverse prior", [Step(prior, "definition", "", eq=33)])


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
    the two differ by a_next sqrt(alpha_next) (1 - alpha_t) / var_theta_next
    (tests/vdm/test_elbo.py shows it, strict xfail). Here the expectation is the correct one,
    taken inside out.
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
        steps,
        family=ELBO_FAMILY.replace("{T}", str(T)),
        facts=_sqrt_facts(ch.al[1:]),
    )
