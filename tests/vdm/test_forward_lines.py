"""Forward process, eqs. (59)-(70): every line of the reparameterization derivation.

Each derivation line is written here as a float64 NumPy expression transcribed from the
catalog's LaTeX (`LINES`), and checked against a route that does not use it:

- eqs. (59)-(61) (one step): the pushforward density of eps ~ N(0, 1) through the line, by
  change of variables (finite-difference Jacobian), vs q(x_t | x_{t-1}) = N(sqrt(alpha_t)
  x_{t-1}, 1 - alpha_t) of eq. (31) from scipy.stats; seeded Monte Carlo (KS, moments).
- eqs. (62), (63): pathwise equality with two actual chain steps at the same two noises.
- eqs. (64)-(66): the law of x_t given x_{t-2} by quadrature of the convolution of the two
  transition densities (scipy.stats.norm), vs the law the line defines; Monte Carlo.
- eqs. (67)-(70): the T-step chain's law by the exact one-step moment recursion
  (m <- sqrt(alpha) m, v <- alpha v + 1 - alpha) over Hypothesis schedules, vs the line and
  vs reference/torch `q_sample`, `q_mean`, `q_var`, `Schedule.q_sample`.

`test_perturbed_lines_fail` runs the same checks on perturbed lines (flipped sign, t - 1
for t, dropped square / sqrt) and asserts that each check then fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st
from scipy import integrate, stats

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests import strategies as S
from tests import tolerances as tol

F64 = torch.float64
EPS64 = float(np.finfo(np.float64).eps)
# Pathwise/law identities in float64: each side is a handful of products and square roots
# (<= 2^-52 relative each); 16 ulps of the sum of the absolute values of the terms.
LINE_ULPS = 16
# The change-of-variables Jacobian by a central difference of step H = 1 on an affine map:
# exact but for rounding. Each evaluation of a line is good to a few ulps of
# |x_{t-1}| + |eps| (<= 16 ulps below); in units of the law's standard deviation sd that is a
# resolution r = 16 eps64 (|x_{t-1}| + 6) / sd, which bounds the relative error of the
# Jacobian and, times |z| <= 5 more, of the density at the rounded point: rtol = 6 r, plus
# 1e-12 for the pdf evaluations. A wrong scale or shift changes the density by O(1).
H = 1.0
JACOBIAN_RTOL = 1e-12
# The moment recursion vs a product of t factors: <= t + 2 roundings of 2^-53 relative each.
RECURSION_ULPS_PER_STEP = 4
KS_ALPHA = 1e-3
SQRT_2PI = math.sqrt(2 * math.pi)

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def sq(v):
    return np.sqrt(v)


# --- the paper's lines, transcribed from udm/catalog.yaml ----------------------------------------
# a[t] is alpha_t (paper's 1-based t; a[0] unused). x is the state the line starts from.


def line59(x_prev, a, t, eps):  # x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps
    return sq(a[t]) * x_prev + sq(1 - a[t]) * eps


def line60(x_prev2, a, t, eps):  # x_{t-1} = sqrt(alpha_{t-1}) x_{t-2} + sqrt(1 - alpha_{t-1}) eps
    return sq(a[t - 1]) * x_prev2 + sq(1 - a[t - 1]) * eps


def line61(x_prev, a, t, eps):  # x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps*_{t-1}
    return sq(a[t]) * x_prev + sq(1 - a[t]) * eps


def line62(x2, a, t, e2, e1):  # e2 = eps*_{t-2}, e1 = eps*_{t-1}
    return sq(a[t]) * (sq(a[t - 1]) * x2 + sq(1 - a[t - 1]) * e2) + sq(1 - a[t]) * e1


def line63(x2, a, t, e2, e1):
    return sq(a[t] * a[t - 1]) * x2 + sq(a[t] - a[t] * a[t - 1]) * e2 + sq(1 - a[t]) * e1


def line64(x2, a, t, e):
    return sq(a[t] * a[t - 1]) * x2 + sq(sq(a[t] - a[t] * a[t - 1]) ** 2 + sq(1 - a[t]) ** 2) * e


def line65(x2, a, t, e):
    return sq(a[t] * a[t - 1]) * x2 + sq(a[t] - a[t] * a[t - 1] + 1 - a[t]) * e


def line66(x2, a, t, e):
    return sq(a[t] * a[t - 1]) * x2 + sq(1 - a[t] * a[t - 1]) * e


def line68(x0, a, t, e):  # sqrt(prod_{i=1}^t alpha_i) x_0 + sqrt(1 - prod_{i=1}^t alpha_i) eps_0
    p = np.prod(a[1 : t + 1])
    return sq(p) * x0 + sq(1 - p) * e


def line69(x0, alpha_bar_t, e):
    return sq(alpha_bar_t) * x0 + sq(1 - alpha_bar_t) * e


# perturbations: (equation, name, line) -- each must make its equation's check fail
PERTURBED = [
    (59, "sqrt dropped on alpha_t", lambda x, a, t, e: a[t] * x + sq(1 - a[t]) * e),
    (59, "noise sign and scale 1 + alpha_t", lambda x, a, t, e: sq(a[t]) * x + sq(1 + a[t]) * e),
    (59, "alpha_{t-1} for alpha_t", lambda x, a, t, e: sq(a[t - 1]) * x + sq(1 - a[t - 1]) * e),
    (60, "alpha_t for alpha_{t-1}", lambda x, a, t, e: sq(a[t]) * x + sq(1 - a[t]) * e),
    (60, "square on the noise scale", lambda x, a, t, e: sq(a[t - 1]) * x + (1 - a[t - 1]) * e),
    (61, "constant shift 0.1", lambda x, a, t, e: sq(a[t]) * x + sq(1 - a[t]) * e - 0.1),
    (
        62,
        "alpha_t inside for alpha_{t-1}",
        lambda x, a, t, e2, e1: (
            sq(a[t]) * (sq(a[t]) * x + sq(1 - a[t - 1]) * e2) + sq(1 - a[t]) * e1
        ),
    ),
    (
        63,
        "sign flipped in alpha_t - alpha_t alpha_{t-1}",
        lambda x, a, t, e2, e1: (
            sq(a[t] * a[t - 1]) * x + sq(a[t] + a[t] * a[t - 1]) * e2 + sq(1 - a[t]) * e1
        ),
    ),
    (
        64,
        "squares dropped",
        lambda x, a, t, e: (
            sq(a[t] * a[t - 1]) * x + sq(sq(a[t] - a[t] * a[t - 1]) + sq(1 - a[t])) * e
        ),
    ),
    (
        65,
        "sign flipped on the last alpha_t",
        lambda x, a, t, e: sq(a[t] * a[t - 1]) * x + sq(a[t] - a[t] * a[t - 1] + 1 + a[t]) * e,
    ),
    (66, "t - 1 for t", lambda x, a, t, e: sq(a[t - 1]) * x + sq(1 - a[t - 1]) * e),
    (
        68,
        "product to t - 1",
        lambda x, a, t, e: sq(np.prod(a[1:t])) * x + sq(1 - np.prod(a[1:t])) * e,
    ),
    (
        68,
        "sqrt dropped on the mean",
        lambda x, a, t, e: np.prod(a[1 : t + 1]) * x + sq(1 - np.prod(a[1 : t + 1])) * e,
    ),
]


# --- checks (raise AssertionError on disagreement) -----------------------------------------------


def _scale(*terms):
    return sum(np.abs(np.asarray(v, dtype=float)) for v in terms)


def check_one_step(line, x_prev, a, t, which):
    """The line's pushforward of N(0, 1) (change of variables) is the transition density of
    eq. (31) at the step `which` (t or t - 1)."""
    s = t if which == "t" else t - 1
    law = stats.norm(np.sqrt(a[s]) * x_prev, np.sqrt(1 - a[s]))
    eps = np.linspace(-5, 5, 11)
    x = line(x_prev, a, t, eps)
    jac = (line(x_prev, a, t, eps + H) - line(x_prev, a, t, eps - H)) / (2 * H)
    assert np.all(jac > 0), "the line is not an increasing map of eps"
    pushforward = stats.norm.pdf(eps) / jac
    r = LINE_ULPS * EPS64 * (abs(x_prev) + 6) / np.sqrt(1 - a[s])
    np.testing.assert_allclose(pushforward, law.pdf(x), rtol=JACOBIAN_RTOL + 6 * r, atol=0)


def _normal_pdf(x, mean, sd):
    return math.exp(-0.5 * ((x - mean) / sd) ** 2) / (SQRT_2PI * sd)


def _two_step_law(x2, a, t):
    """Law of x_t | x_{t-2}: density of two chain steps by quadrature of the convolution
    int N(x_t; sqrt(a_t) y, 1 - a_t) N(y; sqrt(a_{t-1}) x2, 1 - a_{t-1}) dy."""
    s1, s2 = math.sqrt(1 - a[t - 1]), math.sqrt(1 - a[t])
    m1, r = math.sqrt(a[t - 1]) * x2, math.sqrt(a[t])

    def density(x):
        def f(y):
            return _normal_pdf(x, r * y, s2) * _normal_pdf(y, m1, s1)

        # the integrand is negligible (< exp(-98)) outside both windows of 14 widths: the
        # first factor peaks at y = x / sqrt(a_t) with width s2 / sqrt(a_t), the second at m1
        peak, w2 = x / r, s2 / r
        lo, hi = max(m1 - 14 * s1, peak - 14 * w2), min(m1 + 14 * s1, peak + 14 * w2)
        # both peaks as break points (one, when they nearly coincide: no sliver interval)
        peaks = (peak,) if abs(peak - m1) < 1e-3 * min(s1, w2) else (peak, m1)
        pts = sorted(p for p in peaks if lo < p < hi)
        return integrate.quad(f, lo, hi, points=pts, epsabs=0, epsrel=1e-11, limit=400)[0]

    return density


def check_two_step_law(line, x2, a, t):
    """The law the line gives x_t (affine in one or two standard normals) equals the two-step
    chain's law: densities at 9 points vs quadrature of the convolution."""
    n_eps = line.__code__.co_argcount - 3
    zeros = [0.0] * n_eps
    mean = line(x2, a, t, *zeros)
    var = sum(
        line(0.0, a, t, *[1.0 if j == i else 0.0 for j in range(n_eps)]) ** 2 for i in range(n_eps)
    )
    density = _two_step_law(x2, a, t)
    chain_mean = np.sqrt(a[t] * a[t - 1]) * x2
    chain_sd = np.sqrt(a[t] * (1 - a[t - 1]) + 1 - a[t])  # a moment of the chain, for the grid
    xs = chain_mean + chain_sd * np.linspace(-4, 4, 9)
    want = np.array([density(x) for x in xs])
    got = stats.norm.pdf(xs, mean, np.sqrt(var))
    np.testing.assert_allclose(got, want, **tol.F64_VS_QUADRATURE)


def check_pathwise_two_steps(line, x2, a, t, e2, e1):
    """Two actual chain steps (eq. (31) applied twice) with noises e2 then e1 equal the line."""
    x1 = np.sqrt(a[t - 1]) * x2 + np.sqrt(1 - a[t - 1]) * e2
    chain = np.sqrt(a[t]) * x1 + np.sqrt(1 - a[t]) * e1
    got = line(x2, a, t, e2, e1)
    # eq. (63) takes sqrt(alpha_t - alpha_t alpha_{t-1}): the difference has an absolute error
    # of ~2 ulps of alpha_t, which the square root turns into 2 eps alpha_t / (2 sqrt(diff))
    diff = a[t] * (1 - a[t - 1])
    cancellation = 2 * EPS64 * a[t] / (2 * np.sqrt(diff)) * abs(e2)
    bound = LINE_ULPS * EPS64 * _scale(x2, e2, e1, x1) + LINE_ULPS * cancellation + 1e-300
    assert np.all(np.abs(got - chain) <= bound), (got, chain, bound)


def _bound(a, t, log_space):
    log_ab = abs(float(np.sum(np.log(a[1 : t + 1])))) if log_space else 0.0
    return RECURSION_ULPS_PER_STEP * (t + 2) * (1 + log_ab) * EPS64


def _recursion(x0, a, t):
    """Exact law of the t-step chain by the one-step moment recursion (no products)."""
    m, v = float(x0), 0.0
    for s in range(1, t + 1):
        m, v = np.sqrt(a[s]) * m, a[s] * v + (1 - a[s])
    return m, v


def check_unrolled(line, x0, a, t, log_space=False):
    """The line's law (mean at eps = 0, scale at x_0 = 0, eps = 1) is the chain's law.

    log_space: alpha_bar_t came from a Schedule's cumsum of t logs, whose absolute error
    (<= t roundings at the magnitude |log alpha_bar_t|) exp turns into a relative one."""
    m, v = _recursion(x0, a, t)
    bound = _bound(a, t, log_space)
    mean, sd = line(x0, a, t, 0.0), line(0.0, a, t, 1.0)
    assert abs(mean - m) <= bound * abs(m) + 1e-300, (mean, m)
    assert abs(sd**2 - v) <= bound * max(v, 1.0), (sd**2, v)


# --- strategies -------------------------------------------------------------------------------

# alpha_t and alpha_{t-1} in (0, 1): extremes near 0 and near 1 (fine schedules)
alpha_values = st.one_of(
    st.floats(1e-6, 1 - 1e-6), st.floats(1 - 1e-6, 1 - 1e-12), st.floats(1e-12, 1e-6)
)
states = st.floats(-1e3, 1e3)
noises = st.floats(-8, 8)


def _a(alpha_t, alpha_prev):
    """alpha array with the paper's indexing at t = 2: a[1] = alpha_{t-1}, a[2] = alpha_t."""
    return np.array([np.nan, alpha_prev, alpha_t]), 2


# --- eqs. (59)-(61): one step -------------------------------------------------------------------


@pytest.mark.eq(59)
@given(x=states, alpha_t=alpha_values, alpha_prev=alpha_values)
@example(x=0.0, alpha_t=1 - 1e-12, alpha_prev=0.5)
def test_eq59_one_step_pushforward_is_the_transition(x, alpha_t, alpha_prev):
    a, t = _a(alpha_t, alpha_prev)
    check_one_step(line59, x, a, t, "t")


@pytest.mark.eq(60)
@given(x=states, alpha_t=alpha_values, alpha_prev=alpha_values)
def test_eq60_one_step_earlier_pushforward(x, alpha_t, alpha_prev):
    a, t = _a(alpha_t, alpha_prev)
    check_one_step(line60, x, a, t, "t-1")


@pytest.mark.eq(61)
@given(x=states, alpha_t=alpha_values, alpha_prev=alpha_values)
def test_eq61_start_of_unrolling_pushforward(x, alpha_t, alpha_prev):
    a, t = _a(alpha_t, alpha_prev)
    check_one_step(line61, x, a, t, "t")


@pytest.mark.eq(59, 69)
@pytest.mark.parametrize("layer", ["reference", "torch", "schedule"])
@given(x=states, alpha_1=st.floats(1e-6, 1 - 1e-9), eps=noises)
def test_eq59_first_step_is_q_sample_at_t1(layer, x, alpha_1, eps):
    """At t = 1 (alpha_bar_1 = alpha_1, x_{t-1} = x_0) eq. (59) is the library's q_sample."""
    a = np.array([np.nan, alpha_1])
    ulps = LINE_ULPS
    if layer == "schedule":
        # the Schedule is built from beta_1 = 1 - alpha_1 (rounded once): its alpha_1 is
        # 1 - beta_1; it takes sqrt(alpha_bar) as exp(log(alpha_bar) / 2), whose error grows
        # with |log alpha_bar| ulps
        beta_1 = 1 - alpha_1
        a[1] = 1 - beta_1
        ulps = LINE_ULPS * (1 + abs(np.log(a[1])))
    want = line59(x, a, 1, eps)
    if layer == "reference":
        got = float(ref.q_sample(x_0=x, alpha_bar_t=alpha_1, eps=eps))
    elif layer == "torch":
        got = tim.q_sample(
            x_0=torch.tensor([x], dtype=F64),
            alpha_bar_t=torch.tensor(alpha_1, dtype=F64),
            eps=torch.tensor([eps], dtype=F64),
        ).item()
    else:
        s = tim.Schedule(torch.tensor([1 - alpha_1], dtype=F64), dtype=F64)
        got = s.q_sample(
            x_0=torch.tensor([x], dtype=F64),
            t=torch.tensor([1]),
            eps=torch.tensor([eps], dtype=F64),
        ).item()
    assert abs(got - want) <= ulps * EPS64 * _scale(x, eps)


@pytest.mark.eq(59, 60)
@pytest.mark.statistical
@pytest.mark.parametrize("eq", [59, 60])
def test_eq59_60_monte_carlo_one_step(eq):
    """Seeded samples of the line vs the transition law of eq. (31): KS test and mean/variance
    within MC_SIGMAS standard errors."""
    a, t = _a(0.7, 0.35)
    x, n = 1.5, 20_000
    eps = np.random.default_rng(59 + eq).standard_normal(n)
    s = t if eq == 59 else t - 1
    samples = (line59 if eq == 59 else line60)(x, a, t, eps)
    m, v = np.sqrt(a[s]) * x, 1 - a[s]
    assert stats.kstest(samples, stats.norm(m, np.sqrt(v)).cdf).pvalue > KS_ALPHA
    assert abs(samples.mean() - m) <= tol.MC_SIGMAS * np.sqrt(v / n)
    assert abs(samples.var(ddof=1) - v) <= tol.MC_SIGMAS * v * np.sqrt(2 / (n - 1))


# --- eqs. (62)-(66): two steps merged -------------------------------------------------------------


@pytest.mark.eq(62, 63)
@pytest.mark.parametrize("eq", [62, 63])
@given(x=states, alpha_t=alpha_values, alpha_prev=alpha_values, e2=noises, e1=noises)
def test_eq62_63_pathwise_two_chain_steps(eq, x, alpha_t, alpha_prev, e2, e1):
    a, t = _a(alpha_t, alpha_prev)
    check_pathwise_two_steps({62: line62, 63: line63}[eq], x, a, t, e2, e1)


# the convolution quadrature needs the two Gaussians resolvable: variances >= 1e-6
alpha_law = st.one_of(st.floats(1e-6, 1 - 1e-6), st.sampled_from([1e-6, 1 - 1e-6]))


@pytest.mark.eq(62, 63, 64, 65, 66)
@pytest.mark.parametrize("eq", [62, 63, 64, 65, 66])
@given(x=st.floats(-10, 10), alpha_t=alpha_law, alpha_prev=alpha_law)
@example(x=3.0, alpha_t=1 - 1e-6, alpha_prev=1e-6)
@example(x=-3.0, alpha_t=1e-6, alpha_prev=1 - 1e-6)
def test_eq62_66_law_is_the_two_step_convolution(eq, x, alpha_t, alpha_prev):
    a, t = _a(alpha_t, alpha_prev)
    check_two_step_law({62: line62, 63: line63, 64: line64, 65: line65, 66: line66}[eq], x, a, t)


@pytest.mark.eq(64, 65, 66)
@pytest.mark.statistical
@pytest.mark.parametrize("eq", [64, 65, 66])
def test_eq64_66_monte_carlo_merged_noise(eq):
    """Two actual chain steps (two independent noises) vs the line with one merged noise:
    KS test of the chain samples against the line's law, and moments within MC_SIGMAS se."""
    a, t = _a(0.6, 0.3)
    x, n = -2.0, 20_000
    rng = np.random.default_rng(64)
    e2, e1 = rng.standard_normal(n), rng.standard_normal(n)
    chain = np.sqrt(a[t]) * (np.sqrt(a[t - 1]) * x + np.sqrt(1 - a[t - 1]) * e2)
    chain = chain + np.sqrt(1 - a[t]) * e1
    line = {64: line64, 65: line65, 66: line66}[eq]
    m, sd = line(x, a, t, 0.0), line(0.0, a, t, 1.0)
    assert stats.kstest(chain, stats.norm(m, sd).cdf).pvalue > KS_ALPHA
    assert abs(chain.mean() - m) <= tol.MC_SIGMAS * sd / np.sqrt(n)
    assert abs(chain.var(ddof=1) - sd**2) <= tol.MC_SIGMAS * sd**2 * np.sqrt(2 / (n - 1))


# --- eqs. (67)-(70): unrolled to x_0 ----------------------------------------------------------------


@pytest.mark.eq(67, 68, 69, 70)
@given(alphas=S.schedules(max_T=2000), x0=st.floats(-1e3, 1e3), data=st.data())
def test_eq67_70_unrolled_law_is_the_chain_law(alphas, x0, data):
    """The ellipsis of eq. (67) stands for repeating the merge t - 2 more times: the law of the
    t-step chain (moment recursion) is the line of eq. (68), and with alpha_bar_t from the
    reference Schedule eq. (69) / (70) and the library's q_sample, q_mean, q_var."""
    T = len(alphas)
    t = data.draw(st.integers(1, T))
    a = np.concatenate([[np.nan], alphas])
    # alpha_bar_t must be a normal float64 (long schedules of large betas underflow to 0,
    # outside the library's domain (0, 1]): keep alpha_bar_t >= 1e-290
    assume(np.sum(np.log(alphas[:t])) > math.log(1e-290))
    check_unrolled(line68, x0, a, t)
    schedule = ref.Schedule(beta_t=1 - alphas)
    ab = float(schedule.alpha_bar_t[t - 1])

    def lib_line(x, _a, _t, e):
        return float(ref.q_sample(x_0=x, alpha_bar_t=ab, eps=e))

    check_unrolled(lambda x, a_, t_, e: line69(x, ab, e), x0, a, t, log_space=True)
    check_unrolled(lib_line, x0, a, t, log_space=True)
    m, v = _recursion(x0, a, t)
    bound = _bound(a, t, log_space=True)
    assert abs(float(ref.q_mean(x_0=x0, alpha_bar_t=ab)) - m) <= bound * abs(m) + 1e-300
    assert abs(float(ref.q_var(alpha_bar_t=ab)) - v) <= bound * max(v, 1.0)
    ts = tim.Schedule(torch.as_tensor(1 - alphas), dtype=F64)
    x0_t = torch.tensor([x0], dtype=F64)
    got_m = ts.q_sample(x_0=x0_t, t=torch.tensor([t]), eps=torch.zeros(1, dtype=F64)).item()
    got_s = ts.q_sample(x_0=0 * x0_t, t=torch.tensor([t]), eps=torch.ones(1, dtype=F64)).item()
    assert abs(got_m - m) <= bound * abs(m) + 1e-300
    assert abs(got_s**2 - v) <= bound * max(v, 1.0)
    abt = torch.tensor(ab, dtype=F64)
    assert abs(tim.q_mean(x_0=x0_t, alpha_bar_t=abt).item() - m) <= bound * abs(m) + 1e-300
    assert abs(tim.q_var(alpha_bar_t=abt).item() - v) <= bound * max(v, 1.0)


@pytest.mark.eq(68, 69, 70)
@pytest.mark.statistical
def test_eq68_70_monte_carlo_chain_vs_closed_form():
    """T = 30 actual chain steps (seeded) vs N(sqrt(alpha_bar_T) x_0, 1 - alpha_bar_T) with
    alpha_bar_T = prod alpha_i (eq. (68)) and from the reference Schedule (eqs. (69), (70))."""
    alphas = 1 - np.linspace(0.01, 0.08, 30)
    x0, n = 2.5, 20_000
    rng = np.random.default_rng(68)
    x = np.full(n, x0)
    for al in alphas:
        x = np.sqrt(al) * x + np.sqrt(1 - al) * rng.standard_normal(n)
    ab = float(ref.Schedule(beta_t=1 - alphas).alpha_bar_t[-1])
    a = np.concatenate([[np.nan], alphas])
    for m, sd in [
        (line68(x0, a, 30, 0.0), line68(0.0, a, 30, 1.0)),
        (float(ref.q_mean(x_0=x0, alpha_bar_t=ab)), float(np.sqrt(ref.q_var(alpha_bar_t=ab)))),
    ]:
        assert stats.kstest(x, stats.norm(m, sd).cdf).pvalue > KS_ALPHA
        assert abs(x.mean() - m) <= tol.MC_SIGMAS * sd / np.sqrt(n)
        assert abs(x.var(ddof=1) - sd**2) <= tol.MC_SIGMAS * sd**2 * np.sqrt(2 / (n - 1))


# --- every perturbation is caught ------------------------------------------------------------------


@pytest.mark.eq(59, 60, 61, 62, 63, 64, 65, 66, 68)
@pytest.mark.parametrize(
    ("eq", "name", "line"), PERTURBED, ids=[f"{e}-{n}" for e, n, _ in PERTURBED]
)
def test_perturbed_lines_fail(eq, name, line):
    """The checks above reject each perturbed line at a generic point."""
    a, t = _a(0.7, 0.4)
    a68 = np.array([np.nan, 0.9, 0.8, 0.7, 0.6])
    with pytest.raises(AssertionError):
        if eq in (59, 61):
            check_one_step(line, 1.3, a, t, "t")
        elif eq == 60:
            check_one_step(line, 1.3, a, t, "t-1")
        elif eq in (62, 63):
            check_pathwise_two_steps(line, 1.3, a, t, 0.8, -0.4)
        elif eq in (64, 65, 66):
            check_two_step_law(line, 1.3, a, t)
        else:
            check_unrolled(line, 1.3, a68, 4)
