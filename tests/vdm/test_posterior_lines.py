"""Forward posterior q(x_{t-1} | x_t, x_0), eqs. (71)-(85): every line of Bayes' rule and the
completed square, against routes that do not use it.

Each line is a float64 NumPy expression transcribed from the catalog's LaTeX (`line71` ...
`line85`; the exponent lines return the exponent). The oracles:

- log q(x_t | x_{t-1}), log q(x_{t-1} | x_0), log q(x_t | x_0) from scipy.stats.norm.logpdf
  (the transition of eq. (31) and the marginal of eq. (70));
- the posterior by conditioning the joint Gaussian of (x_{t-1}, x_t) given x_0 (Schur
  complement of its covariance), in 50-digit mpmath: no completed square;
- the posterior normalized by 1-D quadrature of q(x_t | x_{t-1}) q(x_{t-1} | x_0).

Inputs: alpha_t and alpha_bar_{t-1} are multiples of 2^-26 in (0, 1), so alpha_bar_t =
alpha_t alpha_bar_{t-1} and every 1 - alpha is exact in float64: what remains is the
rounding inside each line, bounded by ulps of the sum of the absolute values of its terms.
`test_perturbed_lines_fail` shows that each check rejects perturbed lines.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate, stats

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests import tolerances as tol

F64 = torch.float64
EPS64 = float(np.finfo(np.float64).eps)
# each line is O(10) roundings of terms no larger than the scale below; scipy's logpdf the same
LINE_ULPS = 64
GRID = np.linspace(-4, 4, 9)  # evaluation points: posterior mean +- 4 posterior sds
DYADIC = 2**26

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

sq = np.sqrt


# --- the paper's lines (a = alpha_t, ab = alpha_bar_t, abp = alpha_bar_{t-1}, y = x_{t-1}) ------


def _log_n(x, m, v):  # log N(x; m, v), written out
    return -((x - m) ** 2) / (2 * v) - 0.5 * np.log(2 * np.pi * v)


def line71(y, xt, x0, a, ab, abp):  # log of q(x_t|x_{t-1}, x_0) q(x_{t-1}|x_0) / q(x_t|x_0)
    n = stats.norm
    return (
        n.logpdf(xt, sq(a) * y, sq(1 - a))  # Markov: q(x_t | x_{t-1}, x_0) = q(x_t | x_{t-1})
        + n.logpdf(y, sq(abp) * x0, sq(1 - abp))
        - n.logpdf(xt, sq(ab) * x0, sq(1 - ab))
    )


def line72(y, xt, x0, a, ab, abp):  # log of the three Gaussians of eq. (72)
    return (
        _log_n(xt, sq(a) * y, 1 - a)
        + _log_n(y, sq(abp) * x0, 1 - abp)
        - _log_n(xt, sq(ab) * x0, 1 - ab)
    )


def line73(y, xt, x0, a, ab, abp):
    return -(
        (xt - sq(a) * y) ** 2 / (2 * (1 - a))
        + (y - sq(abp) * x0) ** 2 / (2 * (1 - abp))
        - (xt - sq(ab) * x0) ** 2 / (2 * (1 - ab))
    )


def line74(y, xt, x0, a, ab, abp):
    return -0.5 * (
        (xt - sq(a) * y) ** 2 / (1 - a)
        + (y - sq(abp) * x0) ** 2 / (1 - abp)
        - (xt - sq(ab) * x0) ** 2 / (1 - ab)
    )


def line75(y, xt, x0, a, ab, abp, C):
    return -0.5 * (
        (-2 * sq(a) * xt * y + a * y**2) / (1 - a) + (y**2 - 2 * sq(abp) * y * x0) / (1 - abp) + C
    )


def line76(y, xt, x0, a, ab, abp):
    return -0.5 * (
        -(2 * sq(a) * xt * y) / (1 - a)
        + a * y**2 / (1 - a)
        + y**2 / (1 - abp)
        - 2 * sq(abp) * y * x0 / (1 - abp)
    )


def _b(xt, x0, a, abp):  # the linear coefficient of eqs. (77)-(82)
    return sq(a) * xt / (1 - a) + sq(abp) * x0 / (1 - abp)


def line77(y, xt, x0, a, ab, abp):
    return -0.5 * ((a / (1 - a) + 1 / (1 - abp)) * y**2 - 2 * _b(xt, x0, a, abp) * y)


def line78(y, xt, x0, a, ab, abp):
    p = (a * (1 - abp) + 1 - a) / ((1 - a) * (1 - abp))
    return -0.5 * (p * y**2 - 2 * _b(xt, x0, a, abp) * y)


def line79(y, xt, x0, a, ab, abp):
    p = (a - ab + 1 - a) / ((1 - a) * (1 - abp))
    return -0.5 * (p * y**2 - 2 * _b(xt, x0, a, abp) * y)


def line80(y, xt, x0, a, ab, abp):
    p = (1 - ab) / ((1 - a) * (1 - abp))
    return -0.5 * (p * y**2 - 2 * _b(xt, x0, a, abp) * y)


def line81(y, xt, x0, a, ab, abp):
    p = (1 - ab) / ((1 - a) * (1 - abp))
    return -0.5 * p * (y**2 - 2 * _b(xt, x0, a, abp) / p * y)


def line82(y, xt, x0, a, ab, abp):
    p = (1 - ab) / ((1 - a) * (1 - abp))
    return -0.5 * p * (y**2 - 2 * _b(xt, x0, a, abp) * (1 - a) * (1 - abp) / (1 - ab) * y)


def line83(y, xt, x0, a, ab, abp):
    num = sq(a) * (1 - abp) * xt + sq(abp) * (1 - a) * x0
    return -0.5 * (1 / ((1 - a) * (1 - abp) / (1 - ab))) * (y**2 - 2 * num / (1 - ab) * y)


def mu84(xt, x0, a, ab, abp):
    return (sq(a) * (1 - abp) * xt + sq(abp) * (1 - a) * x0) / (1 - ab)


def var85(a, ab, abp):
    return (1 - a) * (1 - abp) / (1 - ab)


def line84(y, xt, x0, a, ab, abp):  # log N(x_{t-1}; mu_q, Sigma_q)
    return _log_n(y, mu84(xt, x0, a, ab, abp), var85(a, ab, abp))


EXPONENT_LINES = {76: line76, 77: line77, 78: line78, 79: line79, 80: line80}
EXPONENT_LINES |= {81: line81, 82: line82, 83: line83}


# --- oracles -------------------------------------------------------------------------------------


def _schur(xt, x0, a, abp):
    """Mean and variance of x_{t-1} | x_t, x_0 by conditioning the joint Gaussian (x_{t-1},
    x_t) | x_0 (Var x_{t-1} = 1 - abp, Cov = sqrt(a)(1 - abp), Var x_t = a(1 - abp) + 1 - a),
    in 50-digit arithmetic."""
    with mp.workdps(50):
        a, abp, xt, x0 = (mp.mpf(v) for v in (a, abp, xt, x0))
        s11, s12, s22 = 1 - abp, mp.sqrt(a) * (1 - abp), a * (1 - abp) + 1 - a
        m1, m2 = mp.sqrt(abp) * x0, mp.sqrt(a * abp) * x0
        return m1 + s12 / s22 * (xt - m2), s11 - s12**2 / s22


def _log_joint(y, xt, x0, a, abp):
    """log q(x_t | x_{t-1} = y) + log q(y | x_0), scipy.stats (eqs. (31), (70))."""
    return stats.norm.logpdf(xt, sq(a) * y, sq(1 - a)) + stats.norm.logpdf(
        y, sq(abp) * x0, sq(1 - abp)
    )


def _oracle_exponent(y, xt, x0, a, ab, abp):
    """log of eq. (72) plus its three log-normalizers: the exponent of eqs. (73), (74)."""
    norm = 0.5 * (np.log(2 * np.pi * (1 - a)) + np.log(2 * np.pi * (1 - abp)))
    norm -= 0.5 * np.log(2 * np.pi * (1 - ab))
    return _log_joint(y, xt, x0, a, abp) - stats.norm.logpdf(xt, sq(ab) * x0, sq(1 - ab)) + norm


def _scale(y, xt, x0, a, ab, abp):
    """Sum of the absolute values of every term the lines and the oracles add up."""
    y = np.abs(y)
    ax, a0 = abs(xt), abs(x0)
    terms = [
        (ax + sq(a) * y) ** 2 / (1 - a),
        (y + sq(abp) * a0) ** 2 / (1 - abp),
        (ax + sq(ab) * a0) ** 2 / (1 - ab),
        (a * y**2 + 2 * sq(a) * ax * y + ax**2) / (1 - a),
        (y**2 + 2 * sq(abp) * y * a0 + abp * a0**2) / (1 - abp),
        abs(np.log(2 * np.pi * (1 - a))) + abs(np.log(2 * np.pi * (1 - abp))),
        abs(np.log(2 * np.pi * (1 - ab))) + 1.0,
    ]
    return sum(terms)


def _points(xt, x0, a, abp):
    m, v = _schur(xt, x0, a, abp)
    return float(m) + math.sqrt(float(v)) * GRID


def _close(got, want, scale, what):
    bound = LINE_ULPS * EPS64 * scale
    err = np.abs(np.asarray(got) - np.asarray(want))
    assert np.all(err <= bound), f"{what}: |error| {err} > {bound}"


# --- checks (raise AssertionError on disagreement) -------------------------------------------------


def check_bayes(line, xt, x0, a, ab, abp):
    """Eqs. (71), (72), (84): the line's log-density of x_{t-1} equals the Schur-complement
    posterior's log-density pointwise."""
    y = _points(xt, x0, a, abp)
    m, v = _schur(xt, x0, a, abp)
    with mp.workdps(50):
        want = [float(-((mp.mpf(u) - m) ** 2) / (2 * v) - mp.log(2 * mp.pi * v) / 2) for u in y]
    _close(line(y, xt, x0, a, ab, abp), want, _scale(y, xt, x0, a, ab, abp), "log density")


def check_full_exponent(line, xt, x0, a, ab, abp):
    """Eqs. (73), (74): the exponent equals log of eq. (72) plus the dropped normalizers."""
    y = _points(xt, x0, a, abp)
    want = _oracle_exponent(y, xt, x0, a, ab, abp)
    _close(line(y, xt, x0, a, ab, abp), want, _scale(y, xt, x0, a, ab, abp), "exponent")


def check_eq75(line, xt, x0, a, ab, abp):
    """Eq. (75): with C(x_t, x_0) the x_{t-1}-free part of the oracle's bracket (its value at
    x_{t-1} = 0: the bracket is a quadratic in x_{t-1}), the line is the oracle exponent."""
    y = _points(xt, x0, a, abp)
    c = -2 * _oracle_exponent(0.0, xt, x0, a, ab, abp)
    want = _oracle_exponent(y, xt, x0, a, ab, abp)
    _close(line(y, xt, x0, a, ab, abp, c), want, _scale(y, xt, x0, a, ab, abp), "exponent")


def check_reduced_exponent(line, xt, x0, a, ab, abp):
    """Eqs. (76)-(83): after dropping C the exponent vanishes at x_{t-1} = 0, so it equals
    log q(x_t | y) + log q(y | x_0) minus its value at y = 0, pointwise."""
    y = _points(xt, x0, a, abp)
    want = _log_joint(y, xt, x0, a, abp) - _log_joint(0.0, xt, x0, a, abp)
    scale = _scale(y, xt, x0, a, ab, abp)
    _close(line(y, xt, x0, a, ab, abp), want, scale, "exponent")


def check_moments(mu_fn, var_fn, xt, x0, a, ab, abp, ulps=16):
    """Eqs. (84), (85): mean and variance vs the 50-digit Schur complement; mu to `ulps` of
    the sum of its terms' magnitudes, the variance to `ulps` relative (3 roundings)."""
    m, v = _schur(xt, x0, a, abp)
    scale = (sq(a) * (1 - abp) * abs(xt) + sq(abp) * (1 - a) * abs(x0)) / (1 - ab)
    got_m, got_v = float(mu_fn(xt, x0, a, ab, abp)), float(var_fn(a, ab, abp))
    assert abs(got_m - float(m)) <= ulps * EPS64 * scale + 1e-300, (got_m, m)
    assert abs(got_v - float(v)) <= ulps * EPS64 * float(v), (got_v, v)


def _ref_mu(xt, x0, a, ab, abp):
    return ref.mu_q(x_t=xt, x_0=x0, alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)


def _ref_var(a, ab, abp):
    return ref.var_q(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)


def _torch_kw(a, ab, abp):
    return {
        k: torch.tensor(v, dtype=F64)
        for k, v in zip(("alpha_t", "alpha_bar_t", "alpha_bar_prev"), (a, ab, abp), strict=True)
    }


def _torch_mu(xt, x0, a, ab, abp):
    return tim.mu_q(
        x_t=torch.tensor(xt, dtype=F64), x_0=torch.tensor(x0, dtype=F64), **_torch_kw(a, ab, abp)
    ).item()


def _torch_var(a, ab, abp):
    return tim.var_q(**_torch_kw(a, ab, abp)).item()


# --- strategies ------------------------------------------------------------------------------------

dyadic = st.one_of(
    st.integers(1, DYADIC - 1),
    st.integers(1, 64),  # alpha ~ 1e-8..1e-6
    st.integers(DYADIC - 64, DYADIC - 1),  # 1 - alpha ~ 1e-8..1e-6
).map(lambda i: i / DYADIC)
states = st.floats(-10, 10)


def _args(xt, x0, i_a, i_abp):
    a, abp = i_a, i_abp
    return xt, x0, a, a * abp, abp  # a * abp is exact (52 bits)


EXTREMES = [
    dict(xt=10.0, x0=-10.0, a=1 - 2**-26, abp=1 - 2**-26),  # t near 1 of a fine schedule
    dict(xt=-10.0, x0=10.0, a=2**-26, abp=2**-26),  # t near T
    dict(xt=3.0, x0=1.0, a=1 - 2**-26, abp=2**-26),
    dict(xt=0.5, x0=-2.0, a=2**-26, abp=1 - 2**-26),
]


def _with_extremes(f):
    for e in EXTREMES:
        f = example(**e)(f)
    return f


# --- eqs. (71)-(85) -----------------------------------------------------------------------------------


@pytest.mark.eq(71, 72, 84)
@pytest.mark.parametrize("eq", [71, 72, 84])
@given(xt=states, x0=states, a=dyadic, abp=dyadic)
@_with_extremes
def test_eq71_72_84_bayes_rule_is_the_conditioned_joint(eq, xt, x0, a, abp):
    check_bayes({71: line71, 72: line72, 84: line84}[eq], *_args(xt, x0, a, abp))


@pytest.mark.eq(73, 74)
@pytest.mark.parametrize("eq", [73, 74])
@given(xt=states, x0=states, a=dyadic, abp=dyadic)
@_with_extremes
def test_eq73_74_exponent_is_log_of_eq72_plus_normalizers(eq, xt, x0, a, abp):
    check_full_exponent({73: line73, 74: line74}[eq], *_args(xt, x0, a, abp))


@pytest.mark.eq(75)
@given(xt=states, x0=states, a=dyadic, abp=dyadic)
@_with_extremes
def test_eq75_expanded_squares_with_c(xt, x0, a, abp):
    check_eq75(line75, *_args(xt, x0, a, abp))


@pytest.mark.eq(76, 77, 78, 79, 80, 81, 82, 83)
@pytest.mark.parametrize("eq", sorted(EXPONENT_LINES))
@given(xt=states, x0=states, a=dyadic, abp=dyadic)
@_with_extremes
def test_eq76_83_exponent_is_the_log_joint_up_to_its_value_at_zero(eq, xt, x0, a, abp):
    check_reduced_exponent(EXPONENT_LINES[eq], *_args(xt, x0, a, abp))


@pytest.mark.eq(84, 85)
@pytest.mark.parametrize("layer", ["paper", "reference", "torch"])
@given(xt=states, x0=states, a=dyadic, abp=dyadic)
@_with_extremes
def test_eq84_85_moments_vs_schur_complement(layer, xt, x0, a, abp):
    mu, var = {
        "paper": (mu84, var85),
        "reference": (_ref_mu, _ref_var),
        "torch": (_torch_mu, _torch_var),
    }[layer]
    check_moments(mu, var, *_args(xt, x0, a, abp))


# quadrature needs a resolvable posterior: variances >= ~1e-6 (multiples of 2^-20 here)
coarse = st.integers(1, 2**20 - 1).map(lambda i: i / 2**20)


@pytest.mark.eq(71, 84, 85)
@given(xt=st.floats(-5, 5), x0=st.floats(-5, 5), a=coarse, abp=coarse)
@example(xt=0.5, x0=-0.5, a=1 - 2**-20, abp=1 - 2**-20)
@example(xt=-5.0, x0=5.0, a=2**-20, abp=2**-20)
def test_eq71_84_85_bayes_numerator_normalized_by_quadrature(xt, x0, a, abp):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0) (scipy.stats densities),
    normalized by quadrature: its mean and variance are eqs. (84), (85) in every layer, and
    the normalizer is q(x_t | x_0) (the denominator of eq. (71))."""
    xt, x0, a, ab, abp = _args(xt, x0, a, abp)
    m, v = (float(u) for u in _schur(xt, x0, a, abp))
    sd = math.sqrt(v)
    shift = float(_log_joint(m, xt, x0, a, abp))

    # the same two scipy densities, inlined with math for speed in the integrand
    c1, s1 = math.sqrt(a), math.sqrt(1 - a)
    c2, s2 = math.sqrt(abp) * x0, math.sqrt(1 - abp)

    def f(y, k):
        log_joint = -0.5 * (((xt - c1 * y) / s1) ** 2 + ((y - c2) / s2) ** 2)
        return (y - m) ** k * math.exp(log_joint - math.log(s1 * s2 * 2 * math.pi) - shift)

    kw = dict(points=[m], epsrel=1e-11, limit=200)
    lo, hi = m - 14 * sd, m + 14 * sd
    z = integrate.quad(f, lo, hi, args=(0,), epsabs=0, **kw)[0]
    # the first central moment is ~0: an absolute target of 1e-11 sd (z ~ 2.5 sd)
    d1 = integrate.quad(f, lo, hi, args=(1,), epsabs=1e-11 * sd**2, **kw)[0] / z
    var_quad = integrate.quad(f, lo, hi, args=(2,), epsabs=0, **kw)[0] / z - d1**2
    mean_quad = m + d1
    log_z = math.log(z) + shift
    # log of a quadrature at 1e-12 relative, plus the rounding of the O(scale) log-densities
    bound = 1e-9 + LINE_ULPS * EPS64 * _scale(m, xt, x0, a, ab, abp)
    assert abs(log_z - stats.norm.logpdf(xt, sq(ab) * x0, sq(1 - ab))) <= bound
    for mu_fn, var_fn in [(mu84, var85), (_ref_mu, _ref_var), (_torch_mu, _torch_var)]:
        got_m, got_v = float(mu_fn(xt, x0, a, ab, abp)), float(var_fn(a, ab, abp))
        # ratio of two quadratures at 1e-11: 1e-9 of the posterior sd / variance
        assert abs(got_m - mean_quad) <= tol.QUADRATURE_RATIO["rtol"] * sd
        np.testing.assert_allclose(got_v, var_quad, **tol.QUADRATURE_RATIO)


@pytest.mark.eq(84, 85)
@pytest.mark.parametrize("layer", ["reference", "torch"])
@given(
    alphas=st.lists(st.floats(0.05, 1 - 1e-4), min_size=2, max_size=30),
    xt=states,
    x0=states,
    data=st.data(),
)
def test_eq84_85_schedule_posterior_vs_schur_complement(layer, alphas, xt, x0, data):
    """The Schedule objects' posterior (alpha_bar from log-space cumsums) vs the 50-digit
    conditioning of the chain's joint law at alpha_t, alpha_bar_{t-1} = prod of the alphas.
    The schedule's alpha_bar carries t roundings and 1 - alpha_bar amplifies them by
    1 / (1 - alpha_bar): bound 16 t ulps / min(1 - alpha_bar_{t-1}, 1 - alpha_t)."""
    alphas = np.asarray(alphas)
    t = data.draw(st.integers(2, len(alphas)))
    abp = float(np.prod(alphas[: t - 1]))
    a = alphas[t - 1]
    m, v = (float(u) for u in _schur(xt, x0, a, abp))
    rel = 16 * t * EPS64 / min(1 - abp, 1 - a)
    beta = 1 - alphas
    if layer == "reference":
        s = ref.Schedule(beta_t=beta)
        a_s, ab_s, abp_s = s.alpha_t[t - 1], s.alpha_bar_t[t - 1], s.alpha_bar_prev[t - 1]
        got_m = float(ref.mu_q(x_t=xt, x_0=x0, alpha_t=a_s, alpha_bar_t=ab_s, alpha_bar_prev=abp_s))
        got_v = float(s.var_q[t - 1])
    else:
        s = tim.Schedule(torch.as_tensor(beta), dtype=F64)
        tt = torch.tensor([t])
        got_m = s.posterior_mean(
            x_t=torch.tensor([xt], dtype=F64), x_0=torch.tensor([x0], dtype=F64), t=tt
        ).item()
        got_v = s.posterior_var(tt, torch.zeros(1, dtype=F64)).item()
    scale = abs(xt) + abs(x0)
    assert abs(got_m - m) <= rel * scale + 1e-300, (got_m, m)
    assert abs(got_v - v) <= rel * v, (got_v, v)


# --- perturbations ------------------------------------------------------------------------------------

P = {}  # eq -> list of (name, line)
P[71] = [
    (
        "q(x_t|x_0) at t - 1 in the denominator",
        lambda y, xt, x0, a, ab, abp: line71(y, xt, x0, a, abp, abp),
    ),
    (
        "numerator and denominator swapped in the last factor",
        lambda y, xt, x0, a, ab, abp: (
            line71(y, xt, x0, a, ab, abp) + 2 * stats.norm.logpdf(xt, sq(ab) * x0, sq(1 - ab))
        ),
    ),
]
P[72] = [
    (
        "sqrt dropped on alpha_t",
        lambda y, xt, x0, a, ab, abp: (
            _log_n(xt, a * y, 1 - a)
            + _log_n(y, sq(abp) * x0, 1 - abp)
            - _log_n(xt, sq(ab) * x0, 1 - ab)
        ),
    ),
    (
        "alpha_bar_t for alpha_bar_{t-1}",
        lambda y, xt, x0, a, ab, abp: (
            _log_n(xt, sq(a) * y, 1 - a)
            + _log_n(y, sq(ab) * x0, 1 - ab)
            - _log_n(xt, sq(ab) * x0, 1 - ab)
        ),
    ),
]
P[73] = [
    (
        "sign of the third term",
        lambda y, xt, x0, a, ab, abp: (
            line73(y, xt, x0, a, ab, abp) - (xt - sq(ab) * x0) ** 2 / (1 - ab)
        ),
    )
]
P[74] = [
    (
        "square dropped in the first term",
        lambda y, xt, x0, a, ab, abp: (
            -0.5
            * (
                (xt - sq(a) * y) / (1 - a)
                + (y - sq(abp) * x0) ** 2 / (1 - abp)
                - (xt - sq(ab) * x0) ** 2 / (1 - ab)
            )
        ),
    )
]
P[75] = [
    (
        "sign of the cross term",
        lambda y, xt, x0, a, ab, abp, C: (
            -0.5
            * (
                (2 * sq(a) * xt * y + a * y**2) / (1 - a)
                + (y**2 - 2 * sq(abp) * y * x0) / (1 - abp)
                + C
            )
        ),
    )
]
P[76] = [
    (
        "alpha_t dropped from the quadratic term",
        lambda y, xt, x0, a, ab, abp: (
            -0.5
            * (
                -(2 * sq(a) * xt * y) / (1 - a)
                + y**2 / (1 - a)
                + y**2 / (1 - abp)
                - 2 * sq(abp) * y * x0 / (1 - abp)
            )
        ),
    )
]
P[77] = [
    (
        "factor 2 dropped",
        lambda y, xt, x0, a, ab, abp: (
            -0.5 * ((a / (1 - a) + 1 / (1 - abp)) * y**2 - _b(xt, x0, a, abp) * y)
        ),
    )
]
P[78] = [
    (
        "alpha_bar_t for alpha_bar_{t-1}",
        lambda y, xt, x0, a, ab, abp: (
            -0.5
            * ((a * (1 - ab) + 1 - a) / ((1 - a) * (1 - abp)) * y**2 - 2 * _b(xt, x0, a, abp) * y)
        ),
    )
]
P[79] = [
    (
        "sign of alpha_bar_t",
        lambda y, xt, x0, a, ab, abp: (
            -0.5 * ((a + ab + 1 - a) / ((1 - a) * (1 - abp)) * y**2 - 2 * _b(xt, x0, a, abp) * y)
        ),
    )
]
P[80] = [
    (
        "alpha_bar_{t-1} for alpha_bar_t",
        lambda y, xt, x0, a, ab, abp: line80(y, xt, x0, a, abp, abp),
    )
]
P[81] = [
    (
        "precision not divided out",
        lambda y, xt, x0, a, ab, abp: (
            -0.5 * ((1 - ab) / ((1 - a) * (1 - abp))) * (y**2 - 2 * _b(xt, x0, a, abp) * y)
        ),
    )
]
P[82] = [
    (
        "fraction not inverted",
        lambda y, xt, x0, a, ab, abp: (
            -0.5
            * ((1 - ab) / ((1 - a) * (1 - abp)))
            * (y**2 - 2 * _b(xt, x0, a, abp) * (1 - ab) / ((1 - a) * (1 - abp)) * y)
        ),
    )
]
P[83] = [
    (
        "alpha_t for alpha_bar_{t-1} under the x_0 root",
        lambda y, xt, x0, a, ab, abp: (
            line83(y, xt, x0, a, ab, abp)
            - (1 - ab) / ((1 - a) * (1 - abp)) * (sq(a) - sq(abp)) * (1 - a) * x0 / (1 - ab) * y
        ),
    ),
    (
        "t - 1 for t in 1 - alpha_bar_t",
        lambda y, xt, x0, a, ab, abp: line83(y, xt, x0, a, abp, abp),
    ),
]
P[84] = [
    (
        "mean with (1 - alpha_t) and (1 - alpha_bar_{t-1}) swapped",
        lambda y, xt, x0, a, ab, abp: _log_n(
            y, (sq(a) * (1 - a) * xt + sq(abp) * (1 - abp) * x0) / (1 - ab), var85(a, ab, abp)
        ),
    ),
]
P[85] = [
    (
        "alpha_bar_{t-1} for alpha_bar_t in the denominator",
        lambda a, ab, abp: (1 - a) * (1 - abp) / (1 - abp),
    )
]

CHECKS = {
    71: check_bayes,
    72: check_bayes,
    73: check_full_exponent,
    74: check_full_exponent,
    75: check_eq75,
    84: check_bayes,
}
CHECKS |= dict.fromkeys(EXPONENT_LINES, check_reduced_exponent)
CASES = [(eq, name, fn) for eq in sorted(P) for name, fn in P[eq]]


@pytest.mark.eq(*sorted(P))
@pytest.mark.parametrize(("eq", "name", "line"), CASES, ids=[f"{e}-{n}" for e, n, _ in CASES])
def test_perturbed_lines_fail(eq, name, line):
    """Each check rejects the perturbed line at generic points (and accepts the paper's)."""
    args = _args(1.1, -0.7, 0.75, 0.5)
    if eq == 85:
        check_moments(mu84, var85, *args)  # the paper's line passes here
        with pytest.raises(AssertionError):
            check_moments(mu84, line, *args)
        return
    paper = {71: line71, 72: line72, 73: line73, 74: line74, 75: line75, 84: line84}
    CHECKS[eq]((paper | EXPONENT_LINES)[eq], *args)  # the paper's line passes here
    with pytest.raises(AssertionError):
        CHECKS[eq](line, *args)
