"""Noise schedules: the named schedules' beta_t and a schedule's coefficients in log space.

SymPy derivations of paper section 2.1 (Variational Diffusion Models); see
`udm.derivations.vdm` for the whole section."""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1 as _expm1
from sympy.codegen.cfunctions import log1p as _log1p

from udm import register
from udm.derivations._stable import one_minus_exp
from udm.derivations.core import (
    ClosedForm,
    Derivation,
    Step,
)
from udm.derivations.core import abbreviation as _abbreviation
from udm.derivations.core import unit_intervals as _unit_intervals
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
)
from udm.derivations.symbols import beta_t as _beta_t
from udm.derivations.symbols import log_alpha_bar_prev as _log_ab_prev
from udm.derivations.symbols import log_alpha_bar_t as _log_ab

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
    return Derivation("the named noise schedules", steps, results=results)


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
    return Derivation("the ends of the named schedules", steps)


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0 without cancellation at either end (Maechler 2012):
    log(-expm1(x)) near 0, log1p(-exp(x)) below -log 2."""
    return sp.Piecewise((sp.log(-_expm1(x)), x > -sp.log(2)), (_log1p(-sp.exp(x)), True))


@register(70, 85, 109)
def schedule_in_log_space() -> Derivation:
    """A schedule's coefficients from beta_t and log alpha_bar, eqs. (70), (85), (109), and the
    loss weights of eqs. (99), (130), (148).

    With beta_t = 1 - alpha_t and L = log alpha_bar_t (L' = log alpha_bar_{t-1}): log alpha_t =
    log1p(-beta_t); 1 - alpha_bar_t (eq. (70)) = -expm1(L); sigma_q^2(t) (eq. (85)) =
    beta_t expm1(L') / expm1(L) and its log; log SNR(t) (eq. (109)) = L - log(1 - exp(L)).
    The weights 1 / (2 sigma_q^2(t)) times the paper's factors (eqs. (99), (130), (148)) become
    exp(L') beta_t / (2 (1 - e^L') (1 - e^L)), beta_t / (2 (1 - beta_t) (1 - e^L')) and
    beta_t (1 - e^L) / (2 (1 - beta_t) (1 - e^L')), each 1 - e^L as -expm1(L): no difference
    of nearly equal numbers, so a small beta_t keeps its digits (1 - alpha_t formed from
    alpha_t would lose them), and each weight is +inf at t = 1 (L' = 0).
    Each is the paper's formula, proved equal after the changes of variables alpha = 1 / (1 + u)
    (every alpha in (0, 1), so 1 - alpha is visibly positive and logs split).
    """
    a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev
    var = (1 - a) * (1 - abp) / (1 - ab)
    weight = 1 / (2 * var)  # the common factor of eqs. (99), (130), (148)
    paper = sp.Tuple(
        sp.log(a),
        1 - ab,
        var,
        sp.log(var),
        sp.log(ab / (1 - ab)),
        weight * abp * (1 - a) ** 2 / (1 - ab) ** 2,  # eq. (99)
        weight * (1 - a) ** 2 / ((1 - ab) * a),  # eq. (130)
        weight * (1 - a) ** 2 / a,  # eq. (148)
    )
    stable = sp.Tuple(
        _log1p(-_beta_t),
        -_expm1(_log_ab),
        _beta_t * _expm1(_log_ab_prev) / _expm1(_log_ab),
        sp.log(_beta_t) + _log1mexp(_log_ab_prev) - _log1mexp(_log_ab),
        _log_ab - _log1mexp(_log_ab),
        sp.exp(_log_ab_prev) * _beta_t / (2 * one_minus_exp(_log_ab_prev) * one_minus_exp(_log_ab)),
        _beta_t / (2 * (1 - _beta_t) * one_minus_exp(_log_ab_prev)),
        _beta_t * one_minus_exp(_log_ab) / (2 * (1 - _beta_t) * one_minus_exp(_log_ab_prev)),
    )
    steps = [
        Step(
            paper,
            "definition",
            "log alpha_t; eq. (70)'s variance; eq. (85) and its log; log SNR, eq. (109); the"
            " loss weights of eqs. (99), (130), (148)",
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
        (
            "x_0_loss_weight_from_log_alpha_bars",
            (99,),
            log_args,
            "Weight of ||x_0 - x_0_hat||^2 (eq. (99), sigma_q^2 inserted) from beta_t and the "
            "log alpha_bars (inf at t = 1, where log_alpha_bar_prev = 0)",
            r"w_{x_0}(t)",
        ),
        (
            "eps_loss_weight_from_log_alpha_bars",
            (130,),
            ("beta_t", "log_alpha_bar_prev"),
            "Weight of ||eps - eps_hat||^2 (eq. (130), sigma_q^2 inserted) from beta_t and "
            "log alpha_bar_{t-1} (inf at t = 1)",
            r"w_{\epsilon}(t)",
        ),
        (
            "score_loss_weight_from_log_alpha_bars",
            (148,),
            log_args,
            "Weight of ||s_hat - score||^2 (eq. (148), sigma_q^2 inserted) from beta_t and the "
            "log alpha_bars (inf at t = 1)",
            r"w_{s}(t)",
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
        steps,
        facts=facts,
        results=results,
    )
