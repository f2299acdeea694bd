"""Learning diffusion noise parameters (paper section 2.2, eqs. (101)-(114)): SymPy derivations.

The x_0-loss weight of the denoising matching term becomes half the drop of the
signal-to-noise ratio between consecutive steps (eqs. (101)-(110)); a monotone network
omega_eta(t) parameterizes SNR(t) = exp(-omega_eta(t)), so that alpha_bar_t and
1 - alpha_bar_t are sigmoids of -omega and omega (eqs. (111)-(114)). Beyond the paper's
lines: the weights telescope (their sum depends only on the endpoints, the discrete form of
VDM's invariance), and the discrete sum tends to the continuous-time integral of -SNR'(t) at
the rate 1/T (proved on a linear log-SNR schedule).
"""

from __future__ import annotations

import sympy as sp

from udm import register
from udm.derivations.core import ClosedForm, Derivation, Step, abbreviation, definition, lemma
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    omega,
    snr_s,
    snr_t,
    sq_err,
    var_q,
)

a, abp, ab = alpha_t, alpha_bar_prev, alpha_bar_t
ab_of = a * abp  # alpha_bar_t = alpha_t alpha_bar_{t-1}
# sigma_q^2(t) of q(x_{t-1} | x_t, x_0) (the paper's eq. (85)), written out here so that this
# section does not depend on the vdm module; in terms of alpha_t and alpha_bar_{t-1} only.
var_q_of = (1 - a) * (1 - abp) / (1 - ab_of)
# alpha_bar_t = alpha_t alpha_bar_{t-1}, proved in the vdm section
ALPHA_BAR = lemma(alpha_bar_t, ab_of, "udm.derivations.vdm.forward.alpha_bar_recursion")


def _u(*args, op=sp.Add):
    """An unevaluated sum/product: keeps the paper's visible terms (checks evaluate it)."""
    return op(*args, evaluate=False)


@register(101, 102, 103, 104, 105, 106, 107, 108, 110)
def x0_weight_as_snr_drop() -> Derivation:
    """The x_0-loss weight is half the SNR drop between steps, eqs. (101)-(108), (110).

    (1 / (2 sigma_q^2(t))) alpha_bar_{t-1} (1 - alpha_t)^2 / (1 - alpha_bar_t)^2
    = (SNR(t - 1) - SNR(t)) / 2, using alpha_bar_t = alpha_t alpha_bar_{t-1} and
    sigma_q^2(t) = (1 - alpha_t)(1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
    """
    e = sq_err
    D = (1 - abp) * (1 - ab)
    steps = [
        Step(
            1 / (2 * var_q) * abp * (1 - a) ** 2 / (1 - ab) ** 2 * e,
            "definition",
            "weight of the x_0 regression in the denoising matching term",
        ),
        Step(
            1 / (2 * ((1 - a) * (1 - abp) / (1 - ab))) * abp * (1 - a) ** 2 / (1 - ab) ** 2 * e,
            "substitute",
            "insert sigma_q^2(t) = (1 - alpha_t)(1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)",
            eq=101,
        ),
        Step(
            sp.Rational(1, 2)
            * (1 - ab)
            / ((1 - a) * (1 - abp))
            * abp
            * (1 - a) ** 2
            / (1 - ab) ** 2
            * e,
            "algebra",
            "invert the variance",
            eq=102,
        ),
        Step(sp.Rational(1, 2) * abp * (1 - a) / D * e, "algebra", "cancel factors", eq=103),
        Step(
            sp.Rational(1, 2) * (abp - ab) / D * e,
            "algebra",
            "alpha_bar_{t-1} alpha_t = alpha_bar_t",
            eq=104,
        ),
        Step(
            sp.Rational(1, 2) * _u(abp, -abp * ab, abp * ab, -ab) / D * e,
            "algebra",
            "add and subtract alpha_bar_{t-1} alpha_bar_t",
            eq=105,
        ),
        Step(
            sp.Rational(1, 2) * _u(abp * (1 - ab), -ab * (1 - abp)) / D * e,
            "algebra",
            "regroup",
            eq=106,
        ),
        Step(
            sp.Rational(1, 2)
            * _u(
                _u(abp * (1 - ab), 1 / D, op=sp.Mul),
                -_u(ab * (1 - abp), 1 / D, op=sp.Mul),
            )
            * e,
            "algebra",
            "split the fraction",
            eq=107,
        ),
        Step(
            sp.Rational(1, 2) * (abp / (1 - abp) - ab / (1 - ab)) * e,
            "algebra",
            "cancel the common factors",
            eq=108,
        ),
        Step(
            sp.Rational(1, 2) * (snr_s - snr_t) * e,
            "substitute",
            "SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (eq. (109)), s = t - 1",
            eq=110,
        ),
    ]
    domains = {
        "alpha_t": "open_unit",
        "alpha_bar_prev": "open_unit",
        "snr_s": "positive",
        "snr_t": "positive",
    }
    results = (
        ClosedForm(
            "x0_loss_weight_from_alpha_bars",
            (108,),
            (abp / (1 - abp) - ab / (1 - ab)) / 2,
            ("alpha_bar_prev", "alpha_bar_t"),
            {**domains, "alpha_bar_t": "open_unit"},
            "The same weight as half the drop of SNR = alpha_bar / (1 - alpha_bar) from step "
            "t - 1 to step t, the right side",
            lhs=r"\frac{1}{2}\left(\frac{\bar\alpha_{t-1}}{1-\bar\alpha_{t-1}}"
            r" - \frac{\bar\alpha_t}{1-\bar\alpha_t}\right)",
            line=108,
            rename={sq_err: 1},
        ),
        ClosedForm(
            "x0_loss_weight_snr",
            (110,),
            (snr_s - snr_t) / 2,
            ("snr_s", "snr_t"),
            domains,
            "The same weight as half the SNR drop from s = t - 1 to t",
            lhs=r"\frac{1}{2}(\mathrm{SNR}(t-1) - \mathrm{SNR}(t))",
            line=110,
            rename={sq_err: 1},
        ),
    )
    facts = (
        definition(var_q, var_q_of, 85),
        definition(snr_s, abp / (1 - abp), 109),
        definition(snr_t, ab_of / (1 - ab_of), 109),
        ALPHA_BAR,
    )
    return Derivation(
        "the x_0-loss weight as an SNR difference",
        steps,
        facts=facts,
        results=results,
    )


@register(109)
def snr_definition() -> Derivation:
    """Signal-to-noise ratio of q(x_t | x_0), eq. (109): SNR(t) = alpha_bar_t / (1 - alpha_bar_t).

    The squared mean coefficient over the variance of N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).
    """
    steps = [Step(ab / (1 - ab), "definition", "mean^2 / variance of q(x_t | x_0)", eq=109)]
    results = (
        ClosedForm(
            "snr",
            (109,),
            ab / (1 - ab),
            ("alpha_bar_t",),
            {"alpha_bar_t": "open_unit"},
            "Signal-to-noise ratio of q(x_t | x_0)",
            lhs=r"\mathrm{SNR}(t)",
            line=109,
        ),
    )
    return Derivation("signal-to-noise ratio", steps, results=results)


# omega_eta(t) is defined by SNR(t) = exp(-omega) (eq. (111)), i.e. omega = -log SNR(t).
_omega_fact = (definition(omega, sp.log((1 - ab) / ab), 111),)


@register(111, 112, 113)
def alpha_bar_from_omega() -> Derivation:
    """alpha_bar_t = sigmoid(-omega_eta(t)), eqs. (111)-(113).

    SNR(t) = exp(-omega) (eq. (111)) and SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (eq. (112))
    are solved for alpha_bar_t: alpha_bar = SNR / (1 + SNR) (the map a -> a / (1 - a) is
    strictly increasing on (0, 1), so the solution is unique).
    """
    snr = ab / (1 - ab)
    steps = [
        Step(ab, "definition", "the quantity to express through omega"),
        Step(snr / (1 + snr), "algebra", "a = SNR / (1 + SNR) for SNR = a / (1 - a)"),
        Step(
            sp.exp(-omega) / (1 + sp.exp(-omega)),
            "substitute",
            "SNR(t) = exp(-omega) (eqs. (111), (112))",
            eq=112,
        ),
        Step(1 / (1 + sp.exp(omega)), "algebra", "sigmoid(-omega)", eq=113),
    ]
    results = (
        ClosedForm(
            "alpha_bar_from_omega",
            (113,),
            1 / (1 + sp.exp(omega)),
            ("omega",),
            {"omega": "real"},
            "alpha_bar_t = sigmoid(-omega)",
            lhs=r"\bar\alpha_t",
            line=113,
        ),
    )
    return Derivation(
        "alpha_bar_t from the learned SNR",
        steps,
        facts=_omega_fact,
        results=results,
    )


@register(111)
def omega_definition() -> Derivation:
    """omega_eta(t), the monotone network's output, defined by SNR(t) = exp(-omega), eq. (111)."""
    steps = [Step(sp.exp(-omega), "definition", "SNR(t) = exp(-omega)", eq=111)]
    results = (
        ClosedForm(
            "snr_from_omega",
            (111,),
            sp.exp(-omega),
            ("omega",),
            {"omega": "real"},
            "SNR(t) from the monotone network's output omega_eta(t)",
            lhs=r"\mathrm{SNR}(t)",
            line=111,
        ),
    )
    return Derivation("omega_eta(t) defines the SNR", steps, results=results)


@register(111, 112)
def omega_from_alpha_bar() -> Derivation:
    """omega = -log SNR(t) = log((1 - alpha_bar_t) / alpha_bar_t), from eqs. (109), (111), (112)."""
    steps = [
        Step(omega, "definition", "omega = -log SNR(t) (eq. (111))"),
        Step(sp.log((1 - ab) / ab), "substitute", "SNR(t) = a / (1 - a)", name="omega"),
    ]
    results = (
        ClosedForm(
            "omega_from_alpha_bar",
            (111, 112),
            sp.log((1 - ab) / ab),
            ("alpha_bar_t",),
            {"alpha_bar_t": "open_unit"},
            "omega = -log SNR(t) from alpha_bar_t (the inverse of eq. (113))",
            lhs=r"\omega_\eta(t)",
            line="omega",
        ),
    )
    return Derivation("omega from alpha_bar_t", steps, facts=_omega_fact, results=results)


@register(114)
def one_minus_alpha_bar_from_omega() -> Derivation:
    """1 - alpha_bar_t = sigmoid(omega_eta(t)), eq. (114), from eq. (113)."""
    steps = [
        Step(1 - ab, "definition", "the noise variance of q(x_t | x_0)"),
        Step(1 - 1 / (1 + sp.exp(omega)), "substitute", "eq. (113)"),
        Step(1 / (1 + sp.exp(-omega)), "algebra", "sigmoid(omega)", eq=114),
    ]
    results = (
        ClosedForm(
            "one_minus_alpha_bar_from_omega",
            (114,),
            1 / (1 + sp.exp(-omega)),
            ("omega",),
            {"omega": "real"},
            "1 - alpha_bar_t = sigmoid(omega)",
            lhs=r"1 - \bar\alpha_t",
            line=114,
        ),
    )
    return Derivation(
        "1 - alpha_bar_t from the learned SNR", steps, facts=_omega_fact, results=results
    )


# --- beyond the paper's lines: the sum over t and its continuous-time limit ---------------

_T = sp.Symbol("T", integer=True, positive=True)
_k = sp.Symbol("k", integer=True, positive=True)
_SNR = sp.Function("SNR")


@register(110)
def snr_weights_telescope() -> Derivation:
    """The weights of eq. (110) telescope: sum_{t=1}^T (SNR(t-1) - SNR(t)) / 2 = (SNR(0) - SNR(T)) / 2.

    For any schedule, only the endpoints fix the total weight: the discrete form of VDM's
    result that the continuous-time loss depends on the schedule only through its endpoints.
    """
    steps = [
        Step(
            sp.Sum((_SNR(_k - 1) - _SNR(_k)) / 2, (_k, 1, _T)),
            "definition",
            "total weight of eq. (110) over t = 1..T",
        ),
        Step((_SNR(0) - _SNR(_T)) / 2, "evaluate", "a telescoping sum"),
    ]
    return Derivation("the SNR weights telescope", steps)


_g = sp.Symbol("g", positive=True)  # log-SNR drop: omega(u) = g u on [0, 1]
_q, _h = sp.symbols("q h", positive=True)  # q = exp(-g / T), h = 1 / T
_limit_facts = (abbreviation(_q, sp.exp(-_g / _T)), abbreviation(_h, 1 / _T))
_discrete_closed = _h * (1 - _T * _q**_T - _q**_T + _T * _q ** (_T + 1)) / (1 - _q)
_continuous = (sp.exp(_g) - 1 - _g) * sp.exp(-_g) / _g


@register(110)
def continuous_time_limit() -> Derivation:
    """Continuous-time limit of the sum of eq. (110) over t, and its 1/T rate.

    With times u_k = k / T and SNR(u) = exp(-g u) (omega linear in u), the discrete loss
    sum_k (SNR(u_{k-1}) - SNR(u_k)) f(u_k) with the squared error f(u) = u tends to
    int_0^1 -SNR'(u) f(u) du. The sum is put in closed form (induction on T), its limit is
    taken (Gruntz) and compared with the integral. `discrete_to_continuous_rate` shows the
    error is c / T + o(1 / T) with c = (1 - exp(-g)) / 2 != 0.
    Family: linear log-SNR schedules, error profile f(u) = u.
    """
    u = sp.Symbol("u", positive=True)
    steps = [
        Step(
            sp.Sum((_q ** (_k - 1) - _q**_k) * _k * _h, (_k, 1, _T)),
            "definition",
            "sum over k of (SNR((k-1)/T) - SNR(k/T)) f(k/T), SNR(k/T) = q^k, f(k/T) = k h",
        ),
        Step(_discrete_closed, "evaluate", "arithmetico-geometric sum, by induction on T"),
        Step(_continuous, "limit", "T -> oo with q = exp(-g/T), h = 1/T", wrt=_T),
        Step(
            sp.Integral(-sp.diff(sp.exp(-_g * u), u) * u, (u, 0, 1)),
            "evaluate",
            "the continuous-time loss: int_0^1 -SNR'(u) f(u) du",
        ),
    ]
    return Derivation(
        "the discrete loss tends to the continuous-time loss",
        steps,
        facts=_limit_facts,
        family="SNR(u) = exp(-g u), squared error f(u) = u",
    )


@register(110)
def discrete_to_continuous_rate() -> Derivation:
    """The discrete sum of eq. (110) approaches its limit at rate 1/T exactly.

    T (L_T - L_oo) -> (1 - exp(-g)) / 2, which is > 0: the error is first order in 1/T and
    the discrete loss lies above the continuous one for large T.
    Family: linear log-SNR schedules, error profile f(u) = u.
    """
    steps = [
        Step(
            _T * (_discrete_closed - _continuous), "definition", "T times the discretization error"
        ),
        Step(
            (1 - sp.exp(-_g)) * (1 / (1 - sp.exp(-_g / _T)) - _T / _g),
            "algebra",
            "q^T = exp(-g): both terms share the factor 1 - exp(-g)",
        ),
        Step((1 - sp.exp(-_g)) / 2, "limit", "1 / (1 - exp(-y)) - 1 / y -> 1/2 as y -> 0", wrt=_T),
    ]
    return Derivation(
        "the discretization error is first order in 1/T",
        steps,
        facts=_limit_facts,
        family="SNR(u) = exp(-g u), squared error f(u) = u",
    )
