"""Variational diffusion models (eqs. (30)-(100)): torch vs reference vs independent oracles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import assume, example, given
from hypothesis import strategies as st
from scipy import integrate, stats

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import alpha_bars, reals, schedules
from udm.cli import main as udm_main
from udm.torch_impl._tensors import append_dims

f32 = np.float32


def _t(value, dtype, device):
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


# Added by the vdm-elbo helper: eqs. (30)-(58) on the linear-Gaussian reverse model.


def _reverse_models(T, seed):
    """A random linear-Gaussian reverse model (a_t, c_t, var_theta_t), t = 1..T."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.5, 1.5, T), rng.uniform(-1, 1, T), rng.uniform(0.05, 2.0, T)


def _elbo_case(alphas, seed):
    a, c, v = _reverse_models(alphas.size, seed)
    return dict(alpha_t=alphas, a_t=a, c_t=c, var_theta=v)


# open-unit schedules for the ELBO: alpha_t = 1 makes q(x_t|x_{t-1}) degenerate
elbo_schedules = schedules(max_T=1000).map(lambda al: np.minimum(al, 1 - 1e-9))


@pytest.mark.eq(30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45)
@pytest.mark.eq(46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58)
@pytest.mark.parametrize(
    ("builder", "T"),
    [
        ("forward_process", 3),
        ("reverse_process", 3),
        ("elbo_bound", 1),
        ("elbo_derivation_one", 1),
        ("elbo_derivation_one", 3),  # ~4 s: three joint expectations over (x_1, x_2, x_3)
        ("elbo_derivation_two", 1),
        ("forward_step_bayes", None),
    ],
)
def test_elbo_derivations_check_at_other_T(builder, T):
    import udm.derivations.vdm as der

    build = getattr(der, builder)
    derivation = build() if T is None else build(T)
    derivation.verify()


@pytest.mark.eq(34, 37, 45, 58)
@given(alphas=elbo_schedules, seed=st.integers(0, 2**31), x_0=st.floats(-5, 5))
@example(alphas=np.array([0.5]), seed=0, x_0=1.0)  # T = 1: no consistency/denoising terms
def test_both_decompositions_give_the_same_elbo_below_log_likelihood(alphas, seed, x_0):
    case = _elbo_case(alphas, seed)
    recon1, prior1, consistency = ref.vdm_elbo_terms_consistency(x_0=x_0, **case)
    recon2, prior2, denoising = ref.vdm_elbo_terms_denoising(x_0=x_0, **case)
    assert consistency.shape == denoising.shape == (alphas.size - 1,)
    elbo_one = recon1 - prior1 - consistency.sum()
    elbo_two = recon2 - prior2 - denoising.sum()
    elbo = ref.vdm_elbo(x_0=x_0, **case)
    scale = abs(recon1) + prior1 + np.abs(consistency).sum() + 1
    assert abs(elbo_one - elbo_two) <= 1e-12 * scale * max(1, alphas.size) ** 0.5
    assert elbo == pytest.approx(
        elbo_two, rel=1e-15, abs=0
    )  # the full ELBO is the sum of its terms
    assert np.all(denoising >= -1e-12 * scale)  # KLs
    log_px = ref.vdm_log_likelihood(
        x_0=x_0, a_t=case["a_t"], c_t=case["c_t"], var_theta=case["var_theta"]
    )
    assert elbo <= log_px + 1e-12 * scale


def _reverse_joint_log_marginal(x_0, a, c, v):
    """log p(x_0) from the joint Gaussian of (x_0..x_T) as a linear map of independent noises,
    via scipy: the reverse chain's covariance as a matrix product (not the scalar recursion)."""
    T = a.size
    # x_T = e_T, x_{t-1} = a_t x_t + c_t + sqrt(v_t) e_{t-1}: rows = x_0..x_T, cols = e_0..e_T
    L = np.zeros((T + 1, T + 1))
    b = np.zeros(T + 1)
    L[T, T] = 1.0
    for t in range(T, 0, -1):
        L[t - 1] = a[t - 1] * L[t]
        L[t - 1, t - 1] += np.sqrt(v[t - 1])
        b[t - 1] = a[t - 1] * b[t] + c[t - 1]
    cov = L @ L.T
    return stats.norm(b[0], np.sqrt(cov[0, 0])).logpdf(x_0)


@pytest.mark.eq(34)
@given(T=st.integers(1, 30), seed=st.integers(0, 2**31), x_0=st.floats(-5, 5))
def test_log_likelihood_matches_the_joint_covariance(T, seed, x_0):
    a, c, v = _reverse_models(T, seed)
    want = _reverse_joint_log_marginal(x_0, a, c, v)
    got = ref.vdm_log_likelihood(x_0=x_0, a_t=a, c_t=c, var_theta=v)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.eq(37, 44, 57)
@pytest.mark.parametrize("T", [1, 2, 4])
def test_reference_elbo_matches_the_sympy_marginal_expectations(T):
    """The derivation's eq. (44) line (expectations under the marginals of the chain, not the
    per-t closed forms) evaluated at numbers vs the reference ELBO."""
    import sympy as sp

    import udm.derivations.vdm as der

    derivation = der.elbo_derivation_one(T)
    line44 = next(s.expr for s in derivation.steps if s.eq == 44)
    ch = der.Chain(T)
    case = _elbo_case(1 - np.linspace(0.05, 0.4, T), seed=T)
    x_0 = 0.7
    values = {der.x_0: x_0}
    for t in range(1, T + 1):
        values.update(
            {
                ch.al[t]: case["alpha_t"][t - 1],
                ch.a[t]: case["a_t"][t - 1],
                ch.c[t]: case["c_t"][t - 1],
                ch.v[t]: case["var_theta"][t - 1],
            }
        )
    exact = float(sp.N(line44.subs({k: sp.Float(v, 30) for k, v in values.items()}), 30))
    np.testing.assert_allclose(ref.vdm_elbo(x_0=x_0, **case), exact, **tol.F64)


@pytest.mark.eq(37, 38, 58)
@pytest.mark.statistical
@pytest.mark.parametrize("T", [1, 3, 50])
def test_elbo_matches_monte_carlo_of_the_chain(T):
    """Simulate x_1..x_T ~ q(x_{1:T}|x_0) step by step and average log p(x_{0:T}) -
    log q(x_{1:T}|x_0) (scipy log-densities): within 4 standard errors of the closed form."""
    rng = np.random.default_rng(100 + T)
    alphas = 1 - np.linspace(0.02, 0.3, T)
    case = _elbo_case(alphas, seed=T)
    a, c, v = case["a_t"], case["c_t"], case["var_theta"]
    n, x_0 = 200_000, 0.8
    x_prev = np.full(n, x_0)
    total = np.zeros(n)
    for t in range(T):
        x_t = np.sqrt(alphas[t]) * x_prev + np.sqrt(1 - alphas[t]) * rng.standard_normal(n)
        total += stats.norm(a[t] * x_t + c[t], np.sqrt(v[t])).logpdf(x_prev)
        total -= stats.norm(np.sqrt(alphas[t]) * x_prev, np.sqrt(1 - alphas[t])).logpdf(x_t)
        x_prev = x_t
    total += stats.norm(0, 1).logpdf(x_prev)
    se = total.std(ddof=1) / np.sqrt(n)
    assert abs(total.mean() - ref.vdm_elbo(x_0=x_0, **case)) <= tol.MC_SIGMAS * se


@pytest.mark.eq(58)
@given(alphas=elbo_schedules, mean=st.floats(-3, 3), var=st.floats(0.01, 10))
def test_elbo_at_the_optimal_reverse_model_equals_its_closed_form(alphas, mean, var):
    a, c, v = ref.vdm_optimal_reverse_model(alpha_t=alphas, mean=mean, var=var)
    got = ref.vdm_elbo_data_average(mean=mean, var=var, alpha_t=alphas, a_t=a, c_t=c, var_theta=v)
    want = ref.vdm_elbo_optimal(alpha_t=alphas, mean=mean, var=var)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * max(1, alphas.size))


@pytest.mark.eq(58)
def test_optimal_reverse_model_is_a_maximum_and_the_data_average_is_exact():
    alphas = 1 - np.linspace(1e-3, 0.2, 20)
    mean, var = 0.4, 0.5
    a, c, v = ref.vdm_optimal_reverse_model(alpha_t=alphas, mean=mean, var=var)
    best = ref.vdm_elbo_data_average(mean=mean, var=var, alpha_t=alphas, a_t=a, c_t=c, var_theta=v)
    for which, delta in [(0, 0.05), (1, -0.05), (2, 0.05)]:
        params = [a.copy(), c.copy(), v.copy()]
        params[which][7] += delta
        worse = ref.vdm_elbo_data_average(
            mean=mean, var=var, alpha_t=alphas, a_t=params[0], c_t=params[1], var_theta=params[2]
        )
        assert worse < best
    # the two-point rule against quadrature over x_0 ~ N(mean, var)
    sd = np.sqrt(var)
    quad, _ = integrate.quad(
        lambda x: (
            stats.norm(mean, sd).pdf(x)
            * ref.vdm_elbo(x_0=x, alpha_t=alphas, a_t=a, c_t=c, var_theta=v)
        ),
        mean - 12 * sd,
        mean + 12 * sd,
        epsabs=1e-12,
        epsrel=1e-11,
    )
    np.testing.assert_allclose(best, quad, **tol.F64_VS_QUADRATURE)


@pytest.mark.eq(45)
@pytest.mark.xfail(
    strict=True,
    reason="eq. (45) takes the consistency KL over q(x_t|x_{t-1}) while x_{t+1} is fixed; "
    "given x_{t+1}, x_t follows q(x_t|x_{t-1}, x_{t+1}): the literal form is not the ELBO",
)
def test_paper_literal_consistency_kl_sums_to_the_elbo():
    alphas = np.array([0.9, 0.8, 0.7])
    case = _elbo_case(alphas, seed=3)
    x_0 = 0.5
    recon, prior, _ = ref.vdm_elbo_terms_consistency(x_0=x_0, **case)
    a, c, v = case["a_t"], case["c_t"], case["var_theta"]
    ab = np.concatenate([[1.0], np.cumprod(alphas)])
    literal = 0.0
    for t in range(
        1, alphas.size
    ):  # E_{q(x_{t-1}, x_{t+1}|x_0)} KL(q(x_t|x_{t-1}) || p(x_t|x_{t+1}))
        rng = np.random.default_rng(t)
        n = 400_000
        x_prev = np.sqrt(ab[t - 1]) * x_0 + np.sqrt(1 - ab[t - 1]) * rng.standard_normal(n)
        x_t = np.sqrt(alphas[t - 1]) * x_prev + np.sqrt(1 - alphas[t - 1]) * rng.standard_normal(n)
        x_next = np.sqrt(alphas[t]) * x_t + np.sqrt(1 - alphas[t]) * rng.standard_normal(n)
        kl = ref.kl_normal(
            mean_q=np.sqrt(alphas[t - 1]) * x_prev,
            var_q=1 - alphas[t - 1],
            mean_p=a[t] * x_next + c[t],
            var_p=v[t],
        )
        literal += kl.mean()
    elbo = ref.vdm_elbo(x_0=x_0, **case)
    assert abs((recon - prior - literal) - elbo) < 1e-2


@pytest.mark.eq(37, 45, 58)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(alpha_t=[0.5, 1.5]), ValueError, r"alpha_t must lie in \(0, 1\)"),
        (dict(alpha_t=[0.5, 0.0]), ValueError, "alpha_t"),
        (dict(alpha_t=[0.5, 1.0]), ValueError, "alpha_t"),  # degenerate step: log(1 - alpha) = -inf
        (dict(alpha_t=[]), ValueError, "T >= 1"),
        (dict(alpha_t=[[0.5, 0.5]]), ValueError, "1-D"),
        (dict(a_t=[1.0, 1.0, 1.0]), ValueError, r"a_t must have shape \(2,\)"),
        (dict(var_theta=[1.0, -1.0]), ValueError, "var_theta must be > 0"),
        (dict(c_t="x"), TypeError, "c_t"),
    ],
)
@pytest.mark.parametrize(
    "fn", [ref.vdm_elbo, ref.vdm_elbo_terms_consistency, ref.vdm_elbo_terms_denoising]
)
def test_elbo_bad_input_is_refused_by_name(fn, kwargs, error, message):
    args = dict(x_0=0.3, alpha_t=[0.5, 0.6], a_t=[1.0, 0.5], c_t=[0.0, 0.1], var_theta=[1.0, 0.5])
    args.update(kwargs)
    if len(np.shape(args["alpha_t"])) == 1 and np.size(args["alpha_t"]) == 0:
        args.update(a_t=[], c_t=[], var_theta=[])
    with pytest.raises(error, match=message):
        fn(**args)


@pytest.mark.eq(34, 58)
def test_log_likelihood_and_optimal_model_bad_input():
    with pytest.raises(ValueError, match="T >= 1"):
        ref.vdm_log_likelihood(x_0=0.0, a_t=[], c_t=[], var_theta=[])
    with pytest.raises(ValueError, match=r"c_t must have shape \(2,\)"):
        ref.vdm_log_likelihood(x_0=0.0, a_t=[1.0, 1.0], c_t=[0.0], var_theta=[1.0, 1.0])
    with pytest.raises(ValueError, match="var must be > 0"):
        ref.vdm_optimal_reverse_model(alpha_t=[0.5], mean=0.0, var=0.0)
    with pytest.raises(ValueError, match="alpha_t"):
        ref.vdm_elbo_optimal(alpha_t=[1.2], mean=0.0, var=1.0)


F64_EPS = float(np.finfo(np.float64).eps)


@st.composite
def schedule_and_t(draw, max_T: int = 4000):
    """(alphas, t): a generated schedule and a time step in 1..T, edges pinned often."""
    alphas = draw(schedules(max_T=max_T))
    T = alphas.size
    t = draw(st.one_of(st.just(1), st.just(T), st.integers(1, T)))
    return alphas, t


def _both(alphas):
    """The reference schedule and the torch schedule (float64) of the same alphas."""
    return ref.schedule_from_alphas(alphas), tim.schedule_from_alphas(alphas, dtype=torch.float64)


@pytest.mark.eq(31, 70, 85)
@given(alphas=schedules(max_T=4000))
@example(alphas=np.array([0.5]))  # T = 1
@example(alphas=np.full(4000, 1 - 1e-5))  # alpha_bar stays near 1
@example(alphas=np.full(4000, 0.5))  # alpha_bar underflows to 0 at t ~ 1075
def test_schedule_torch_float64_matches_reference(alphas):
    r, s = _both(alphas)
    for name in ref._COEFFICIENTS:
        np.testing.assert_allclose(
            s.coefficients()[name].numpy(), getattr(r, name), err_msg=name, **tol.F64
        )
    assert s.T == r.T == alphas.size


@pytest.mark.eq(31, 70, 85)
@given(alphas=schedules(max_T=4000))
def test_schedule_float32_coefficients_are_rounded_once(alphas):
    """float32 buffers are the float64 values rounded once: within half a float32 ulp."""
    s = tim.schedule_from_alphas(alphas, dtype=torch.float32)
    r = ref.schedule_from_alphas(alphas)
    for name in ("alpha_t", "alpha_bar_t", "alpha_bar_prev", "var_q", "log_var_q", "log_snr"):
        got = s.coefficients()[name].numpy().astype(np.float64)
        want = getattr(r, name)
        normal = np.abs(want) >= np.finfo(np.float32).tiny
        half_ulp = np.spacing(np.abs(want[normal]).astype(np.float32)).astype(np.float64) / 2
        assert np.all(np.abs(got[normal] - want[normal]) <= half_ulp * (1 + 1e-6)), name


@pytest.mark.eq(70, 85)
@given(alphas=schedules(max_T=4000))
@example(alphas=np.full(3, 1 - 1e-9))
def test_schedule_log_space_forms_match_the_direct_formulas(alphas):
    """Schedule (cumsum of logs, expm1) vs the direct float64 products and eq. (85) as
    generated from the derivation. The direct route loses eps / (1 - alpha_bar) relative
    accuracy to cancellation, so the tolerance scales with that condition number."""
    r = ref.schedule_from_alphas(alphas)
    direct = np.cumprod(alphas)
    # cumsum of t logs carries <= t eps |log alpha_bar_t| absolute error, which exp turns
    # into relative error; cumprod carries <= t eps relative
    t = np.arange(1, alphas.size + 1)
    bound = 2 * F64_EPS * t * (1 + np.abs(r.log_alpha_bar_t)) * direct
    assert np.all(np.abs(r.alpha_bar_t - direct) <= bound + 1e-300)
    if r.T >= 2:
        ab, abp, a = r.alpha_bar_t[1:], r.alpha_bar_prev[1:], r.alpha_t[1:]
        gen = ref.var_q(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
        cond = 1 / (1 - abp) + 1 / (1 - ab) + 1 / (1 - a)
        assert np.all(np.abs(r.var_q[1:] - gen) <= 8 * F64_EPS * cond * gen)
        # log_var_q is the log of var_q where var_q > 0, clipped at t = 1
        np.testing.assert_allclose(np.exp(r.log_var_q[1:]), r.var_q[1:], rtol=1e-13)
        assert r.log_var_q[0] == r.log_var_q[1]
    else:
        assert r.log_var_q[0] == np.log(1 - alphas[0])
    assert r.var_q[0] == 0.0 and r.alpha_bar_prev[0] == 1.0
    np.testing.assert_allclose(r.alpha_bar_prev[1:], r.alpha_bar_t[:-1], rtol=0, atol=0)
    ok = r.alpha_bar_t > 1e-300
    np.testing.assert_allclose(
        r.snr[ok], r.alpha_bar_t[ok] / (1 - r.alpha_bar_t[ok]), rtol=1e-12 / (1 - r.alpha_bar_t[0])
    )
    np.testing.assert_allclose(r.log_snr[ok], np.log(r.snr[ok]), rtol=1e-12, atol=1e-12)


@pytest.mark.eq(31, 70)
def test_schedules_match_their_published_definitions():
    lin = ref.linear_schedule()
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)  # DDPM, diffusion_utils_2.py
    np.testing.assert_allclose(lin.beta_t, betas, rtol=0, atol=0)
    np.testing.assert_allclose(lin.alpha_bar_t, np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(lin.alpha_bar_t[-1], 4.0358e-05, rtol=1e-4)  # DDPM's value
    sd = ref.scaled_linear_schedule()
    np.testing.assert_allclose(
        sd.beta_t, np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, rtol=1e-15
    )
    np.testing.assert_allclose(sd.alpha_bar_t[-1], 0.0047, rtol=1e-2)  # SD's final value
    cos = ref.cosine_schedule()

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    # improved-diffusion's betas_for_alpha_bar, as a Python loop (independent of ours)
    want = [min(1 - f((i + 1) / 1000) / f(i / 1000), 0.999) for i in range(1000)]
    np.testing.assert_allclose(cos.beta_t, want, rtol=1e-14)
    assert cos.beta_t[-1] == 0.999 and np.all(cos.beta_t <= 0.999)
    unclipped = cos.beta_t < 0.999
    np.testing.assert_allclose(
        cos.alpha_bar_t[unclipped],
        [f((t + 1) / 1000) / f(0) for t in np.flatnonzero(unclipped)],
        rtol=1e-12,
    )


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["linear", "scaled-linear", "cosine"])
@pytest.mark.parametrize("T", [1, 2, 1000, 4000])
def test_named_schedules_torch_matches_reference(device, name, T):
    r = ref.make_schedule(name, T)
    s = tim.make_schedule(name, T, dtype=torch.float64, device=device)
    for key in ref._COEFFICIENTS:
        got = getattr(s, key)
        assert got.device.type == device and got.dtype == torch.float64
        np.testing.assert_allclose(got.cpu().numpy(), getattr(r, key), err_msg=key, **tol.F64)


@pytest.mark.eq(84, 85, 93)
@pytest.mark.parametrize("device", DEVICES)
@given(st_=schedule_and_t(), x=st.tuples(reals, reals))
def test_posterior_torch_matches_reference_float64(device, st_, x):
    (alphas, t), (x_t, x_0) = st_, x
    r, s = _both(alphas)
    c = r.at(t)
    assume(c["alpha_bar_t"] < 1)
    args = dict(
        alpha_t=c["alpha_t"], alpha_bar_t=c["alpha_bar_t"], alpha_bar_prev=c["alpha_bar_prev"]
    )
    assume(args["alpha_bar_t"] > 0)  # underflowed alpha_bar is outside the closed form's domain
    want_mean = ref.mu_q(x_t=x_t, x_0=x_0, **args)
    want_var = ref.var_q(**args)
    tt = torch.tensor([t], device=device)
    xt_, x0_ = _t([x_t], torch.float64, device), _t([x_0], torch.float64, device)
    got_mean = tim.mu_q(
        x_t=xt_, x_0=x0_, **{k: _t(v, torch.float64, device) for k, v in args.items()}
    )
    got_sched = s.posterior_mean(x_t=xt_, x_0=x0_, t=tt)
    # the pure function is the same formula (tight); the schedule's coefficients come from
    # log space, which differs from the direct formula by eps / (1 - alpha_bar) (see above)
    scale = abs(want_mean) + abs(x_t) + abs(x_0)
    np.testing.assert_allclose(got_mean.cpu().numpy(), [want_mean], rtol=1e-12, atol=1e-13 * scale)
    cond = 1 / (1 - args["alpha_bar_t"]) + (1 / (1 - args["alpha_bar_prev"]) if t > 1 else 0)
    np.testing.assert_allclose(
        got_sched.cpu().numpy(), [want_mean], rtol=0, atol=16 * F64_EPS * cond * scale + 1e-300
    )
    got_var = tim.var_q(**{k: _t(v, torch.float64, device) for k, v in args.items()})
    np.testing.assert_allclose(got_var.cpu().numpy(), want_var, **tol.F64)


@pytest.mark.eq(84, 85, 93)
@pytest.mark.parametrize("device", DEVICES)
@given(
    a=st.floats(2**-10, 1 - 2**-10, width=32),
    abp=st.floats(2**-10, 1.0, width=32),
    x=st.tuples(st.floats(-100, 100, width=32), st.floats(-100, 100, width=32)),
)
@example(a=0.5, abp=1.0, x=(0.0, 1.1476634422820252e-42))  # subnormal result: 1 ulp = 2^-149
def test_posterior_float32_within_ulps(device, a, abp, x):
    ab = np.float32(a) * np.float32(abp)
    assume(ab < 1)
    a64, abp64, ab64 = float(a), float(abp), float(ab)  # the float32 inputs, exactly
    x_t, x_0 = x
    kw = {
        k: _t(v, torch.float32, device)
        for k, v in dict(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp).items()
    }
    got = tim.mu_q(x_t=_t(x_t, torch.float32, device), x_0=_t(x_0, torch.float32, device), **kw)
    term_t = math.sqrt(a64) * (1 - abp64) * x_t / (1 - ab64)
    term_0 = math.sqrt(abp64) * (1 - a64) * x_0 / (1 - ab64)
    # 1 - a, 1 - abp, 1 - ab are exact or 1-ulp (Sterbenz); ~6 roundings per term, 1 for the sum
    bound = 8 * tol.F32_EPS * (abs(term_t) + abs(term_0)) + 8 * tol.F32_SUBNORMAL
    assert abs(float(got) - (term_t + term_0)) <= bound
    got_var = float(tim.var_q(**kw))
    want_var = (1 - a64) * (1 - abp64) / (1 - ab64)
    assert abs(got_var - want_var) <= 6 * tol.F32_EPS * want_var


@pytest.mark.eq(71, 72, 84, 85)
@given(
    a=st.floats(0.01, 0.99),
    abp=st.floats(0.01, 1.0),
    x_t=st.floats(-3, 3),
    x_0=st.floats(-3, 3),
)
@example(a=0.5, abp=1.0, x_t=1.0, x_0=-1.0)  # t = 1: the posterior is a point mass at x_0
def test_posterior_is_bayes_rule_by_quadrature(a, abp, x_t, x_0):
    """Normalize q(x_t | x_{t-1}) q(x_{t-1} | x_0) over x_{t-1} numerically: the normalizer is
    q(x_t | x_0) (the denominator of eq. (71)); mean and variance are eqs. (84), (85)."""
    ab = a * abp
    mean = ref.mu_q(x_t=x_t, x_0=x_0, alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
    var = ref.var_q(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
    if abp == 1.0:  # q(x_{t-1} | x_0) is a point mass at x_0
        assert mean == pytest.approx(x_0, rel=1e-12, abs=1e-12) and var == 0
        return

    def pdf(x, m, v):  # plain floats: scipy.stats' per-call overhead dominates quad
        return math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    m0, v0 = math.sqrt(abp) * x_0, 1 - abp

    def joint(u):
        return pdf(x_t, math.sqrt(a) * u, 1 - a) * pdf(u, m0, v0)

    # integrate over the prior's bulk (independent of the tested mean/variance)
    lo, hi = m0 - 12 * math.sqrt(v0), m0 + 12 * math.sqrt(v0)
    peak = (math.sqrt(a) * x_t / (1 - a) + m0 / v0) / (a / (1 - a) + 1 / v0)
    opts = dict(epsabs=0, epsrel=1e-10, limit=400, points=[min(max(peak, lo), hi)])
    z = integrate.quad(joint, lo, hi, **opts)[0]
    m1 = integrate.quad(lambda u: u * joint(u), lo, hi, **opts)[0] / z
    m2 = integrate.quad(lambda u: (u - m1) ** 2 * joint(u), lo, hi, **opts)[0] / z
    np.testing.assert_allclose(
        z, stats.norm(math.sqrt(ab) * x_0, math.sqrt(1 - ab)).pdf(x_t), rtol=1e-8
    )
    np.testing.assert_allclose(m1, mean, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(m2, var, rtol=1e-7)


@pytest.mark.eq(71, 84, 85)
@pytest.mark.statistical
@pytest.mark.parametrize(("T", "t"), [(2, 2), (10, 6), (50, 50)])
def test_posterior_matches_monte_carlo_of_the_chain(T, t):
    """Run the chain x_0 -> x_1 -> ... -> x_t step by step (eq. (31)) and regress x_{t-1} on
    x_t. (x_{t-1}, x_t) given x_0 is jointly Gaussian, so E[x_{t-1} | x_t] is exactly linear
    in x_t: OLS is an unbiased, sound estimator of mu_q's slope and intercept, and the
    residual variance estimates sigma_q^2. Each within 4 standard errors."""
    rng = np.random.default_rng(1000 * T + t)
    alphas = 1 - np.linspace(0.02, 0.3, T)
    r = ref.schedule_from_alphas(alphas)
    n, x_0 = 200_000, 0.7
    x = np.full(n, x_0)
    for a in alphas[: t - 1]:
        x = np.sqrt(a) * x + np.sqrt(1 - a) * rng.standard_normal(n)
    x_prev = x
    x_t = np.sqrt(alphas[t - 1]) * x_prev + np.sqrt(1 - alphas[t - 1]) * rng.standard_normal(n)
    design = np.stack([np.ones(n), x_t], axis=1)
    coef, *_ = np.linalg.lstsq(design, x_prev, rcond=None)
    resid = x_prev - design @ coef
    s2 = resid @ resid / (n - 2)
    cov = s2 * np.linalg.inv(design.T @ design)
    c = r.at(t)
    args = dict(
        alpha_t=c["alpha_t"], alpha_bar_t=c["alpha_bar_t"], alpha_bar_prev=c["alpha_bar_prev"]
    )
    slope = ref.mu_q(x_t=1.0, x_0=0.0, **args)  # coefficient of x_t
    intercept = ref.mu_q(x_t=0.0, x_0=x_0, **args)
    assert abs(coef[1] - slope) <= tol.MC_SIGMAS * math.sqrt(cov[1, 1])
    assert abs(coef[0] - intercept) <= tol.MC_SIGMAS * math.sqrt(cov[0, 0])
    var = ref.var_q(**args)
    assert abs(s2 - var) <= tol.MC_SIGMAS * var * math.sqrt(2 / (n - 2))
    # power: a 3% error in the variance would be detected
    assert abs(s2 - 1.03 * var) > tol.MC_SIGMAS * var * math.sqrt(2 / (n - 2))


@pytest.mark.eq(84, 85, 94)
def test_gather_broadcasts_over_data_of_any_shape():
    s = tim.linear_schedule(T=10, dtype=torch.float64)
    for shape in [(3,), (3, 2), (3, 2, 4, 4)]:
        x = torch.randn(shape, dtype=torch.float64)
        t = torch.tensor([1, 5, 10])
        got = s.posterior_mean(x_t=x, x_0=2 * x, t=t)
        want = np.stack(
            [
                ref.mu_q(
                    x_t=x[i].numpy(),
                    x_0=2 * x[i].numpy(),
                    **{
                        k: s.coefficients()[k][ti - 1].item()
                        for k in ("alpha_t", "alpha_bar_t", "alpha_bar_prev")
                    },
                )
                for i, ti in enumerate(t.tolist())
            ]
        )
        assert got.shape == x.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-15)
        assert s.posterior_var(t, x).shape == (3,) + (1,) * (len(shape) - 1)
        assert torch.isfinite(s.posterior_log_var(t, x)).all()


@pytest.mark.eq(84, 85)
@pytest.mark.parametrize("T", [2, 1000])
def test_docs_mapping_matches_ddpm_style_arrays(T):
    """docs/ddpm_mapping.md: DDPM's arrays (0-based, computed the way their code does, in
    float64 numpy) equal ours at t = i + 1."""
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas, axis=0)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    clipped = np.log(np.append(posterior_variance[1], posterior_variance[1:]))
    coef1 = betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    coef2 = (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod)
    s = tim.linear_schedule(T, dtype=torch.float64)
    ours = {k: v.numpy() for k, v in s.coefficients().items()}
    rtol = 1e-9  # DDPM's 1 - alphas_cumprod cancels near t = 1 (our log-space form does not)
    for mine, theirs in [
        ("beta_t", betas),
        ("alpha_bar_t", alphas_cumprod),
        ("alpha_bar_prev", alphas_cumprod_prev),
        ("var_q", posterior_variance),
        ("log_var_q", clipped),
        ("mu_q_coef_x_0", coef1),
        ("mu_q_coef_x_t", coef2),
    ]:
        np.testing.assert_allclose(ours[mine], theirs, rtol=rtol, atol=1e-300, err_msg=mine)


# --- schedules: bad input ---------------------------------------------------------------------


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.schedule_from_alphas([0.9, 1.5]), ValueError, r"alpha_t must lie in \(0, 1\)"),
        (lambda m: m.schedule_from_alphas([0.9, 0.0]), ValueError, "alpha_t"),
        (lambda m: m.schedule_from_alphas([0.9, -0.1]), ValueError, "alpha_t"),
        (lambda m: m.schedule_from_alphas([1.0, 0.9]), ValueError, "alpha_t"),
        (
            lambda m: m.schedule_from_alphas([0.9, float("nan")]),
            ValueError,
            "alpha_t must be finite",
        ),
        (
            lambda m: m.schedule_from_alpha_bars([0.9, 0.5, 0.6]),
            ValueError,
            r"strictly decreasing.*t = 3",
        ),
        (lambda m: m.schedule_from_alpha_bars([0.9, 0.9]), ValueError, "strictly decreasing"),
        (lambda m: m.linear_schedule(T=0), ValueError, "T must be an int >= 1"),
        (lambda m: m.linear_schedule(T=10, beta_end=1.2), ValueError, "beta_end"),
        (lambda m: m.make_schedule("quadratic"), ValueError, "unknown schedule 'quadratic'"),
        (lambda m: m.make_schedule("cosine", beta_start=0.1), ValueError, "cosine"),
        (
            lambda m: m.mu_q(x_t=0.0, x_0=0.0, alpha_t=0.5, alpha_bar_t=1.0, alpha_bar_prev=1.0),
            ValueError,
            "alpha_bar_t",
        ),
        (
            lambda m: m.x_0_loss_weight(alpha_t=0.5, alpha_bar_t=0.5, alpha_bar_prev=1.0),
            ValueError,
            "alpha_bar_prev",
        ),
    ],
)
def test_schedule_bad_input_is_refused_by_name(layer, call, error, message):
    with pytest.raises(error, match=message):
        call(layer)


@pytest.mark.eq(31)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize("name", ["linear", "scaled-linear"])
@pytest.mark.parametrize("end", ["beta_start", "beta_end"])
def test_make_schedule_passes_every_given_end_on(layer, name, end):
    """A given beta end reaches the builder whatever its value: 0.0 is refused by name (the
    reference used to drop a falsy 0.0 and silently build the default schedule), and a
    given value is used, not the default."""
    with pytest.raises(ValueError, match=f"{end} must lie in"):
        layer.make_schedule(name, 10, **{end: 0.0})
    value = {"beta_start": 3e-4, "beta_end": 0.05}[end]
    built = layer.make_schedule(name, 10, **{end: value})
    builder = {"linear": layer.linear_schedule, "scaled-linear": layer.scaled_linear_schedule}
    want = builder[name](10, **{end: value})
    got_beta, want_beta = (np.asarray(s.beta_t, dtype=np.float64) for s in (built, want))
    np.testing.assert_array_equal(got_beta, want_beta)
    default = np.asarray(builder[name](10).beta_t, dtype=np.float64)
    assert not np.array_equal(got_beta, default)


def _alpha_bar_lists():
    """alpha_bar_1 > ... > alpha_bar_T in (0, 1): spread out, near 1, or nearly equal neighbours."""
    levels = st.one_of(st.floats(1e-12, 1 - 1e-12), st.floats(1 - 1e-6, 1 - 1e-15))
    return st.lists(levels, min_size=1, max_size=40, unique=True).map(
        lambda v: np.array(sorted(v, reverse=True))
    )


@pytest.mark.eq(31, 70)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@given(alpha_bar=_alpha_bar_lists())
@example(alpha_bar=np.array([0.5]))
@example(alpha_bar=np.array([1e-12, np.nextafter(1e-12, 0)]))  # beta_2 below log alpha_bar's ulp
@example(alpha_bar=np.array([1 - 1e-9, 0.5, 0.5 * (1 - 1e-9), 1e-3, 1e-3 * (1 - 1e-8), 1e-10]))
def test_schedule_from_alpha_bars_values_vs_mpmath(layer, alpha_bar):
    """Every coefficient of the schedule built from alpha_bar_1..alpha_bar_T against a 50-digit
    computation straight from the definitions: alpha_t = alpha_bar_t / alpha_bar_{t-1} (eq. (31)
    with alpha_bar_0 = 1, eq. (70)), beta_t = 1 - alpha_t, sigma_q^2(t) (eq. (85)), SNR(t)."""
    import mpmath

    mpmath.mp.dps = 50
    ab = [mpmath.mpf(float(v)) for v in alpha_bar]
    abp = [mpmath.mpf(1), *ab[:-1]]
    alpha = [a / b for a, b in zip(ab, abp, strict=True)]
    want = {
        "beta_t": [1 - a for a in alpha],
        "alpha_t": alpha,
        "alpha_bar_t": ab,
        "alpha_bar_prev": abp,
        "var_q": [(1 - a) * (1 - p) / (1 - b) for a, p, b in zip(alpha, abp, ab, strict=True)],
        "snr": [b / (1 - b) for b in ab],
        "log_snr": [mpmath.log(b / (1 - b)) for b in ab],
    }
    kw = {"dtype": torch.float64} if layer is tim else {}
    s = layer.schedule_from_alpha_bars(alpha_bar, **kw)
    # beta_t is formed once from the inputs (<= 2 ulps); the rest is rebuilt from beta_t by
    # log alpha_bar_t = cumsum log1p(-beta_t): each step adds a few ulps, amplified by
    # 1 / alpha_t where 1 - beta_t is small, and by 1 / (1 - alpha_bar_t) in the SNR.
    cond = np.cumsum([float(1 + 1 / a) for a in alpha])
    scale = {"beta_t": np.full(len(ab), 1.0), "alpha_t": 1 / np.array([float(a) for a in alpha])}
    for key, exact in want.items():
        got = np.asarray(getattr(s, key), dtype=np.float64)
        exact = np.array([float(v) for v in exact])
        rel = scale.get(key, cond * (1 + 1 / (1 - np.asarray(alpha_bar))))
        err = np.abs(got - exact)
        bound = 8 * F64_EPS * rel * np.abs(exact) + (2 * F64_EPS * rel if key == "log_snr" else 0)
        assert np.all(err <= bound), (key, err / np.maximum(np.abs(exact), 1e-300))


@pytest.mark.eq(31, 85)
@pytest.mark.parametrize("bad_t", [0, 11, -1])
def test_t_outside_1_to_T_is_refused(bad_t):
    r, s = ref.linear_schedule(T=10), tim.linear_schedule(T=10)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        r.at(bad_t)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        s.check_t(torch.tensor([1, bad_t]))
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        tim.vb_term(s, x_0=x, x_t=x, x_0_hat=x, t=torch.tensor([1, bad_t]), levels=256)
    with pytest.raises(TypeError, match="integer time step"):
        s.check_t(torch.tensor([1.5]))


@pytest.mark.eq(84, 93)
def test_posterior_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"x_t\(4, 3\).*x_0\(4, 2\)"):
        ref.mu_q(
            x_t=np.zeros((4, 3)),
            x_0=np.zeros((4, 2)),
            alpha_t=0.9,
            alpha_bar_t=0.5,
            alpha_bar_prev=0.6,
        )
    with pytest.raises(ValueError, match="do not broadcast"):
        tim.mu_q(
            x_t=torch.zeros(4, 3),
            x_0=torch.zeros(4, 2),
            alpha_t=0.9,
            alpha_bar_t=0.5,
            alpha_bar_prev=0.6,
        )
    s, x = tim.linear_schedule(T=10), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="shapes must be equal"):
        tim.vb_term(s, x_0=x, x_t=torch.zeros(2, 4), x_0_hat=x, t=torch.tensor([1, 2]), levels=256)
    with pytest.raises(ValueError, match=r"t must have shape \[B\]"):
        tim.vb_term(s, x_0=x, x_t=x, x_0_hat=x, t=torch.tensor([1, 2, 3]), levels=256)
    with pytest.raises(ValueError, match=r"eps must have shape \[T, B, \.\.\.\]"):
        tim.vb_terms(s, lambda x_t, t: x_t, x, eps=torch.zeros(10, 2, 4), levels=256)


# --- udm schedule -----------------------------------------------------------------------------


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("linear", []),
        ("scaled-linear", ["--T", "50"]),
        ("cosine", ["--T", "1"]),
        ("linear", ["--T", "7", "--beta-start", "0.001", "--beta-end", "0.3"]),
    ],
)
def test_udm_schedule_json_matches_the_schedule(name, args, dtype):
    result = CliRunner().invoke(udm_main, ["schedule", name, *args, "--dtype", dtype, "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.output)
    assert {"t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"} <= set(obj)
    opts = dict(zip(args[::2], args[1::2], strict=True))
    r = ref.make_schedule(
        name,
        int(opts.get("--T", 1000)),
        beta_start=float(opts["--beta-start"]) if "--beta-start" in opts else None,
        beta_end=float(opts["--beta-end"]) if "--beta-end" in opts else None,
    )
    assert obj["t"] == list(range(1, r.T + 1))
    for key in ("alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"):
        want, got = getattr(r, key), np.asarray(obj[key])
        if dtype == "float32":  # the float64 value rounded once to float32: <= 1 ulp apart
            assert np.all(got == got.astype(np.float32)), key  # printed float32 values
            assert np.all(np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32))), key
        else:
            np.testing.assert_allclose(got, want, err_msg=key, **tol.F64)


@pytest.mark.eq(31)
def test_udm_schedule_text_plot_and_errors(tmp_path):
    result = CliRunner().invoke(udm_main, ["schedule", "cosine", "--T", "3"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 4
    assert result.output.split()[:6] == ["t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"]
    bad = CliRunner().invoke(udm_main, ["schedule", "linear", "--T", "0"])
    assert bad.exit_code == 2 and "T must be an int >= 1" in bad.output
    bad = CliRunner().invoke(udm_main, ["schedule", "quadratic"])
    assert bad.exit_code == 2
    png = tmp_path / "s.png"
    out = CliRunner().invoke(udm_main, ["schedule", "linear", "--T", "20", "--plot", str(png)])
    assert out.exit_code == 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "needs matplotlib" in out.output and not png.exists()
    else:
        assert png.stat().st_size > 0


# --- q(x_t | x_0), eqs. (69)-(70) -------------------------------------------------------------


@pytest.mark.eq(69, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(x_0=reals, alpha_bar_t=alpha_bars, eps=st.floats(-6, 6))
@example(x_0=1.0, alpha_bar_t=1.0, eps=1.0)  # t = 0 limit: no noise at all
@example(x_0=1.0, alpha_bar_t=1e-12, eps=-1.0)  # t = T: pure noise
def test_q_sample_torch_matches_reference_float64(device, x_0, alpha_bar_t, eps):
    got = tim.q_sample(
        x_0=_t(x_0, torch.float64, device),
        alpha_bar_t=alpha_bar_t,
        eps=_t(eps, torch.float64, device),
    )
    want = ref.q_sample(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    np.testing.assert_allclose(got.cpu().numpy(), want, **tol.F64)
    np.testing.assert_allclose(
        tim.q_mean(x_0=_t(x_0, torch.float64, device), alpha_bar_t=alpha_bar_t).cpu().numpy(),
        ref.q_mean(x_0=x_0, alpha_bar_t=alpha_bar_t),
        **tol.F64,
    )


@pytest.mark.eq(69, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(x_0=reals, alpha_bar_t=alpha_bars, eps=st.floats(-6, 6))
def test_q_sample_float32_within_ulps(device, x_0, alpha_bar_t, eps):
    # reference evaluated at the float32-rounded inputs: only torch's arithmetic is measured
    x32, a32, e32 = f32(x_0), f32(alpha_bar_t), f32(eps)
    got = (
        tim.q_sample(
            x_0=_t(x32, torch.float32, device),
            alpha_bar_t=_t(a32, torch.float32, device),
            eps=_t(e32, torch.float32, device),
        )
        .cpu()
        .numpy()
    )
    signal = np.sqrt(np.float64(a32)) * np.float64(x32)
    noise = np.sqrt(1 - np.float64(a32)) * np.float64(e32)
    want = signal + noise
    # each term carries <= 2 roundings (sqrt, multiply), the sum one more: bound by magnitudes
    assert abs(float(got) - want) <= tol.F32_ULPS * tol.F32_EPS * (abs(signal) + abs(noise))


@pytest.mark.eq(70)
@given(alpha_bar_t=alpha_bars)
def test_q_var_is_one_minus_alpha_bar(alpha_bar_t):
    got = tim.q_var(alpha_bar_t=torch.tensor(alpha_bar_t, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), ref.q_var(alpha_bar_t=alpha_bar_t), **tol.F64)


@pytest.mark.eq(67, 68, 69, 70)
@pytest.mark.statistical
@pytest.mark.parametrize("T", [1, 2, 10, 200])
def test_q_marginal_matches_simulated_chain(T):
    """Run the chain x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps step by step (eq. (59))
    and compare with N(sqrt(alpha_bar_T) x_0, 1 - alpha_bar_T): moments within 4 standard
    errors, and a KS test. With n = 40000, KS detects a 2% error in the standard deviation
    with power > 0.99 (D ~ 0.008 vs critical value 0.0081 at alpha = 1e-3 ... checked below
    by the perturbed-variance control)."""
    rng = np.random.default_rng(T)
    alphas = 1 - np.linspace(1e-4, 0.05, T)
    alpha_bar = np.prod(alphas)
    n, x_0 = 40_000, 1.5
    x = np.full(n, x_0)
    for a in alphas:
        x = np.sqrt(a) * x + np.sqrt(1 - a) * rng.standard_normal(n)
    mean = ref.q_mean(x_0=x_0, alpha_bar_t=alpha_bar)
    var = ref.q_var(alpha_bar_t=alpha_bar)
    assert abs(x.mean() - mean) <= tol.MC_SIGMAS * np.sqrt(var / n)
    # Var of the sample variance of a Gaussian is 2 var^2 / (n - 1)
    assert abs(x.var(ddof=1) - var) <= tol.MC_SIGMAS * var * np.sqrt(2 / (n - 1))
    assert stats.kstest(x, stats.norm(mean, np.sqrt(var)).cdf).pvalue > 1e-3
    # control: the same test rejects a 5%-too-large standard deviation (power check)
    if T == 200:
        assert stats.kstest(x, stats.norm(mean, 1.05 * np.sqrt(var)).cdf).pvalue < 1e-3


@pytest.mark.eq(69, 70)
@given(alphas=schedules(max_T=4000))
def test_alpha_bar_of_generated_schedules_is_valid_input(alphas):
    alpha_bar = np.cumprod(alphas)
    assert np.all(alpha_bar > 0) and np.all(np.diff(alpha_bar) <= 0)
    assert np.all(ref.q_var(alpha_bar_t=alpha_bar) >= 0)


# --- Gaussian KL, eq. (86) ---------------------------------------------------------------------

gauss = st.tuples(st.floats(-10, 10), st.floats(1e-3, 1e3))


@pytest.mark.eq(86)
@pytest.mark.parametrize("device", DEVICES)
@given(q=gauss, p=gauss)
@example(q=(0.0, 1.0), p=(0.0, 1.0))  # identical: KL = 0 exactly
@example(q=(0.0, 1.0), p=(0.0, 1.0 + 1e-9))  # nearly identical: the cancellation case
def test_kl_torch_matches_reference_and_torch_distributions(device, q, p):
    (mq, vq), (mp, vp) = q, p
    args = {
        k: _t(v, torch.float64, device)
        for k, v in dict(mean_q=mq, var_q=vq, mean_p=mp, var_p=vp).items()
    }
    got = tim.kl_normal(**args).cpu().numpy()
    want = ref.kl_normal(mean_q=mq, var_q=vq, mean_p=mp, var_p=vp)
    oracle = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(mq, dtype=torch.float64), vq**0.5),
        torch.distributions.Normal(torch.tensor(mp, dtype=torch.float64), vp**0.5),
    ).numpy()
    # the naive closed form loses ~eps / KL relative accuracy when the KL is tiny
    atol = 1e-15 * (1 + abs(np.log(vq)) + abs(np.log(vp)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(got, oracle, rtol=1e-12, atol=atol)
    assert got >= 0


@pytest.mark.eq(86)
@given(q=gauss, p=gauss)
def test_kl_matches_quadrature(q, p):
    (mq, vq), (mp, vp) = q, p
    sq = np.sqrt(vq)
    dq, dp = stats.norm(mq, sq), stats.norm(mp, np.sqrt(vp))

    def integrand(x):
        return dq.pdf(x) * (dq.logpdf(x) - dp.logpdf(x))

    quad, _ = integrate.quad(
        integrand, mq - 12 * sq, mq + 12 * sq, epsabs=1e-13, epsrel=1e-11, limit=200
    )
    np.testing.assert_allclose(
        ref.kl_normal(mean_q=mq, var_q=vq, mean_p=mp, var_p=vp), quad, **tol.F64_VS_QUADRATURE
    )


@pytest.mark.eq(86)
def test_kl_broadcasts_over_a_batch_and_sums_for_diagonal():
    rng = np.random.default_rng(0)
    mq, mp = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    vq, vp = rng.uniform(0.1, 2, size=(5, 3)), rng.uniform(0.1, 2, size=(5, 3))
    got = tim.kl_normal(
        mean_q=torch.tensor(mq),
        var_q=torch.tensor(vq),
        mean_p=torch.tensor(mp),
        var_p=torch.tensor(vp),
    ).sum(-1)
    mvn = torch.distributions.MultivariateNormal
    want = torch.distributions.kl_divergence(
        mvn(torch.tensor(mq), torch.diag_embed(torch.tensor(vq))),
        mvn(torch.tensor(mp), torch.diag_embed(torch.tensor(vp))),
    )
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.eq(69, 70, 86)
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.q_var(alpha_bar_t=1.5), ValueError, r"alpha_bar_t must lie in \(0, 1\]"),
        (lambda m: m.q_var(alpha_bar_t=0.0), ValueError, "alpha_bar_t"),
        (lambda m: m.q_var(alpha_bar_t=float("nan")), ValueError, "alpha_bar_t must be finite"),
        (
            lambda m: m.kl_normal(mean_q=0.0, var_q=-1.0, mean_p=0.0, var_p=1.0),
            ValueError,
            "var_q must be > 0",
        ),
        (lambda m: m.kl_normal(mean_q="a", var_q=1.0, mean_p=0.0, var_p=1.0), TypeError, "mean_q"),
    ],
)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
def test_bad_input_is_refused_by_name(layer, call, error, message):
    with pytest.raises(error, match=message):
        call(layer)


@pytest.mark.eq(69)
def test_shape_mismatch_is_an_error_not_a_broadcast():
    x_0, eps = np.zeros((4, 3)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"x_0\(4, 3\).*eps\(4, 2\)"):
        ref.q_sample(x_0=x_0, alpha_bar_t=0.5, eps=eps)
    with pytest.raises(ValueError, match="do not broadcast"):
        tim.q_sample(
            x_0=torch.zeros(4, 3), alpha_bar_t=torch.full((4,), 0.5), eps=torch.zeros(4, 3)
        )


def _x0_denoiser(x_t, t):
    """A fixed, deterministic stand-in for a network: x_0_hat = 0.8 tanh(x_t) + 0.001 t."""
    if isinstance(x_t, torch.Tensor):
        return 0.8 * torch.tanh(x_t) + 0.001 * append_dims(t.to(x_t.dtype), x_t)
    return 0.8 * np.tanh(x_t) + 0.001 * t


def _pixels(rng, shape):
    """8-bit data scaled to [-1, 1]."""
    return rng.integers(0, 256, size=shape) / 127.5 - 1


@pytest.mark.eq(87, 88, 89, 90, 91, 92)
@pytest.mark.parametrize("device", DEVICES)
@given(q=gauss, mu_theta=st.floats(-10, 10))
@example(q=(0.0, 1e-3), mu_theta=0.0)  # KL = 0
def test_denoising_kl_matches_torch_distributions(device, q, mu_theta):
    mq, vq = q
    got = tim.denoising_kl(
        mu_q=_t(mq, torch.float64, device), mu_theta=_t(mu_theta, torch.float64, device), var_q=vq
    )
    want = ref.denoising_kl(mu_q=mq, mu_theta=mu_theta, var_q=vq)
    oracle = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(mq, dtype=torch.float64), vq**0.5),
        torch.distributions.Normal(torch.tensor(mu_theta, dtype=torch.float64), vq**0.5),
    ).numpy()
    np.testing.assert_allclose(got.cpu().numpy(), want, **tol.F64)
    np.testing.assert_allclose(want, oracle, rtol=1e-12, atol=1e-14)


@pytest.mark.eq(88, 89, 90, 91, 92)
def test_denoising_kl_sum_is_the_isotropic_multivariate_kl():
    rng = np.random.default_rng(3)
    mq, mt, vq = rng.normal(size=(6, 5)), rng.normal(size=(6, 5)), rng.uniform(0.01, 2, size=(6, 1))
    got = tim.denoising_kl(
        mu_q=torch.tensor(mq), mu_theta=torch.tensor(mt), var_q=torch.tensor(vq)
    ).sum(-1)
    cov = torch.tensor(vq)[:, :, None] * torch.eye(5, dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal
    want = torch.distributions.kl_divergence(mvn(torch.tensor(mq), cov), mvn(torch.tensor(mt), cov))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.eq(94, 95, 96, 97, 98, 99)
@pytest.mark.parametrize("device", DEVICES)
@given(st_=schedule_and_t(), x=st.tuples(reals, reals, reals))
def test_x_0_objective_torch_matches_reference_and_the_general_kl(device, st_, x):
    """mu_theta (eq. (94)) and the weight (eq. (99)): torch vs the generated reference, and
    weight * (x_0_hat - x_0)^2 vs the general Gaussian KL (eq. (86)) of the two means."""
    (alphas, t), (x_t, x_0, x_0_hat) = st_, x
    assume(t >= 2)
    r, s = _both(alphas)
    c = r.at(t)
    args = dict(
        alpha_t=c["alpha_t"], alpha_bar_t=c["alpha_bar_t"], alpha_bar_prev=c["alpha_bar_prev"]
    )
    assume(args["alpha_bar_t"] > 1e-300 and args["alpha_bar_prev"] < 1)
    targs = {k: _t(v, torch.float64, device) for k, v in args.items()}
    mt = ref.mu_theta(x_t=x_t, x_0_hat=x_0_hat, **args)
    got = tim.mu_theta(
        x_t=_t(x_t, torch.float64, device), x_0_hat=_t(x_0_hat, torch.float64, device), **targs
    )
    scale = abs(x_t) + abs(x_0_hat) + abs(mt)
    np.testing.assert_allclose(got.cpu().numpy(), mt, rtol=1e-12, atol=1e-13 * scale)
    w = ref.x_0_loss_weight(**args)
    np.testing.assert_allclose(tim.x_0_loss_weight(**targs).cpu().numpy(), w, **tol.F64)
    # schedule's log-space weight = (SNR(t-1) - SNR(t)) / 2 (eq. (108)'s form, independent)
    snr = np.concatenate([[np.inf], r.snr])
    if np.isfinite(snr[t - 1]):
        want = (snr[t - 1] - snr[t]) / 2
        cond = 1 + snr[t - 1] / max(want, 1e-300)
        assert abs(s.coefficients()["x_0_loss_weight"][t - 1].item() - want) <= 1e-13 * cond * want
    vq = ref.var_q(**args)
    assume(vq > 1e-250)
    kl = ref.kl_normal(mean_q=ref.mu_q(x_t=x_t, x_0=x_0, **args), var_q=vq, mean_p=mt, var_p=vq)
    direct = w * (x_0_hat - x_0) ** 2
    # the general KL subtracts means of size ~|x_t|: absolute error eps * |x_t|^2 / var_q;
    # and it forms (var_q + d^2) / var_q - 1, which cancels to within a few eps absolute
    means = abs(x_t) + abs(x_0) + abs(x_0_hat)
    bound = 1e-12 * direct + 64 * F64_EPS * means**2 / vq * max(1, 1 / vq) + 4 * F64_EPS
    assert abs(kl - direct) <= bound


@pytest.mark.eq(86, 58)
@pytest.mark.parametrize("device", DEVICES)
@given(x_0=st.floats(-1, 1), ab=st.floats(1e-12, 1 - 1e-6))
def test_prior_kl_term_matches_reference_and_torch_distributions(device, x_0, ab):
    got = tim.prior_kl_term(x_0=_t(x_0, torch.float64, device), alpha_bar_t=ab).cpu().numpy()
    want = ref.prior_kl_term(x_0=x_0, alpha_bar_t=ab)
    oracle = torch.distributions.kl_divergence(
        torch.distributions.Normal(
            torch.tensor(math.sqrt(ab) * x_0, dtype=torch.float64), math.sqrt(1 - ab)
        ),
        torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0),
    ).numpy()
    # the closed form cancels to O(ab^2): absolute error ~ eps
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=4 * F64_EPS)
    np.testing.assert_allclose(got, oracle, rtol=1e-10, atol=4 * F64_EPS)


@pytest.mark.eq(58)
@pytest.mark.parametrize("device", DEVICES)
@given(k=st.integers(0, 255), mean=st.floats(-1.5, 1.5), log_var=st.floats(-16, 1))
@example(k=128, mean=-1.0, log_var=-16.0)  # deep tail: DDPM's clamp would give -27.6
@example(k=0, mean=1.0, log_var=-16.0)
@example(k=255, mean=1.0, log_var=-16.0)
def test_discretized_decoder_matches_reference_and_mpmath(device, k, mean, log_var):
    import mpmath

    x = k / 127.5 - 1
    got = (
        tim.discretized_gaussian_log_likelihood(
            x_0=_t(x, torch.float64, device), mean=mean, log_var=log_var, levels=256
        )
        .cpu()
        .numpy()
    )
    want = ref.discretized_gaussian_log_likelihood(x_0=x, mean=mean, log_var=log_var)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    mpmath.mp.dps = 50
    std = mpmath.sqrt(mpmath.exp(mpmath.mpf(log_var)))
    hi = mpmath.inf if k == 255 else (mpmath.mpf(x) - mean + mpmath.mpf(1) / 255) / std
    lo = -mpmath.inf if k == 0 else (mpmath.mpf(x) - mean - mpmath.mpf(1) / 255) / std
    r2 = mpmath.sqrt(2)
    if (
        lo > 0
    ):  # both in the upper tail: erfc keeps the tiny masses (mpmath's exponent is unbounded)
        mass = (mpmath.erfc(lo / r2) - mpmath.erfc(hi / r2)) / 2
    elif hi < 0:
        mass = (mpmath.erfc(-hi / r2) - mpmath.erfc(-lo / r2)) / 2
    else:
        mass = mpmath.ncdf(hi) - mpmath.ncdf(lo)
    exact = float(mpmath.log(mass))
    np.testing.assert_allclose(want, exact, rtol=1e-9, atol=1e-12)


@pytest.mark.eq(58)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_discretized_decoder_sums_to_one_over_the_256_bins(dtype):
    x = torch.arange(256, dtype=dtype) / 127.5 - 1
    for mean, log_var in [(0.0, -2.0), (0.3, -9.8), (-0.99, -6.0), (2.0, 0.0)]:
        logp = tim.discretized_gaussian_log_likelihood(
            x_0=x, mean=mean, log_var=log_var, levels=256
        )
        assert torch.isfinite(logp).all()
        total = torch.logsumexp(logp.double(), 0).exp().item()
        assert abs(total - 1) <= (1e-12 if dtype == torch.float64 else 1e-5)


def _reference_terms(alphas, x_0, eps):
    """Negative-ELBO terms one t at a time (Python loop), from the reference layer only:
    generated mu_q / mu_theta / var_q and the GENERAL Gaussian KL of eq. (86)."""
    r = ref.schedule_from_alphas(alphas)
    T, B = r.T, x_0.shape[0]
    terms = np.zeros((B, T))
    for t in range(1, T + 1):
        c = r.at(t)
        x_t = np.sqrt(c["alpha_bar_t"]) * x_0 + np.sqrt(1 - c["alpha_bar_t"]) * eps[t - 1]
        x_0_hat = _x0_denoiser(x_t, t)
        if t == 1:
            logp = ref.discretized_gaussian_log_likelihood(
                x_0=x_0, mean=x_0_hat, log_var=c["log_var_q"]
            )
            per = -logp
        else:
            args = dict(
                alpha_t=c["alpha_t"],
                alpha_bar_t=c["alpha_bar_t"],
                alpha_bar_prev=c["alpha_bar_prev"],
            )
            vq = ref.var_q(**args)
            per = ref.kl_normal(
                mean_q=ref.mu_q(x_t=x_t, x_0=x_0, **args),
                var_q=vq,
                mean_p=ref.mu_theta(x_t=x_t, x_0_hat=x_0_hat, **args),
                var_p=vq,
            )
        terms[:, t - 1] = per.reshape(B, -1).sum(1)
    prior = ref.prior_kl_term(x_0=x_0, alpha_bar_t=r.alpha_bar_t[-1]).reshape(B, -1).sum(1)
    return terms, prior


@pytest.mark.eq(58, 92, 99, 100)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("T", "shape"), [(1, (3, 2)), (2, (3,)), (25, (2, 3, 2, 2)), (300, (2, 4))]
)
def test_vectorized_elbo_equals_its_terms_one_at_a_time(device, T, shape):
    rng = np.random.default_rng(T)
    alphas = 1 - np.linspace(1e-3, 0.1, T) if T > 1 else np.array([0.99])
    x_0 = _pixels(rng, shape)
    eps = rng.standard_normal((T, *shape))
    calls = []

    def denoiser(x_t, t):
        calls.append(tuple(x_t.shape))
        return _x0_denoiser(x_t, t)

    s = tim.schedule_from_alphas(alphas, dtype=torch.float64)
    terms, prior = tim.vb_terms(
        s,
        denoiser,
        torch.tensor(x_0, device=device),
        eps=torch.tensor(eps, device=device),
        levels=256,
    )
    assert calls == [(T * shape[0], *shape[1:])]  # one batched call: no loop over t
    want_terms, want_prior = _reference_terms(alphas, x_0, eps)
    # KL via eq. (86) subtracts means (cancellation ~ eps |x|^2 / var_q); ours uses eq. (99)
    np.testing.assert_allclose(terms.cpu().numpy(), want_terms, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(prior.cpu().numpy(), want_prior, rtol=1e-12, atol=1e-15)
    # and the torch per-t entry point, one t at a time, gives the same numbers
    xt0 = torch.tensor(x_0, device=device)
    for t in sorted({1, T, (T + 1) // 2}):
        tt = torch.full((shape[0],), t, device=device)
        x_t = s.q_sample(x_0=xt0, t=tt, eps=torch.tensor(eps[t - 1], device=device))
        one = tim.vb_term(s, x_0=xt0, x_t=x_t, x_0_hat=_x0_denoiser(x_t, tt), t=tt, levels=256)
        torch.testing.assert_close(one, terms[:, t - 1], rtol=1e-12, atol=1e-12)
    bpd = tim.nll_bits_per_dim(
        s,
        _x0_denoiser,
        torch.tensor(x_0, device=device),
        eps=torch.tensor(eps, device=device),
        levels=256,
    )
    d = int(np.prod(shape[1:]))
    np.testing.assert_allclose(
        bpd.cpu().numpy(), (want_prior + want_terms.sum(1)) / (d * np.log(2)), rtol=1e-9
    )


@pytest.mark.eq(58, 100)
@pytest.mark.statistical
def test_one_t_estimator_is_unbiased_for_the_full_elbo():
    """E_{t, eps}[T L_t + prior] = E_eps[prior + sum_t L_t]: the one-t training loss (t
    uniform in 1..T) against the full vectorized negative ELBO, both averaged over noise;
    |difference| <= 4 standard errors of the difference."""
    T, n_full, n_one = 8, 2000, 40_000
    gen = torch.Generator().manual_seed(0)
    s = tim.cosine_schedule(T, dtype=torch.float64)
    x_0 = torch.tensor(_pixels(np.random.default_rng(0), (1, 3)))
    full = torch.stack(
        [
            tim.vb_terms(s, _x0_denoiser, x_0, generator=gen, levels=256)[0].sum(1)[0]
            for _ in range(n_full)
        ]
    )
    full = full + tim.vb_terms(s, _x0_denoiser, x_0, generator=gen, levels=256)[1][0]
    one = tim.training_loss(s, _x0_denoiser, x_0.expand(n_one, 3), generator=gen, levels=256)
    diff = one.mean() - full.mean()
    se = math.sqrt(one.var().item() / n_one + full.var().item() / n_full)
    assert abs(diff.item()) <= tol.MC_SIGMAS * se
    # power: an estimator weighted by T - 1 instead of T (12.5% low here) is rejected
    assert abs((one.mean() * (T - 1) / T - full.mean()).item()) > tol.MC_SIGMAS * se


@pytest.mark.eq(58, 100)
@pytest.mark.parametrize("device", DEVICES)
def test_elbo_dtype_and_device_follow_the_input(device):
    s = tim.linear_schedule(T=50)  # float32 working dtype; float64 data sees float64 coefficients
    for dtype in (torch.float32, torch.float64):
        x_0 = torch.tensor(_pixels(np.random.default_rng(1), (2, 3, 4)), dtype=dtype, device=device)
        bpd = tim.nll_bits_per_dim(s, _x0_denoiser, x_0, generator=None, levels=256)
        loss = tim.training_loss(s, _x0_denoiser, x_0, levels=256)
        for out in (bpd, loss):
            assert out.dtype == dtype and out.device.type == device and out.shape == (2,)
            assert torch.isfinite(out).all()
    x32 = torch.tensor(_pixels(np.random.default_rng(2), (2, 5)), dtype=torch.float32)
    eps = torch.randn((50, 2, 5), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b32 = tim.nll_bits_per_dim(s, _x0_denoiser, x32, eps=eps.float(), levels=256)
    b64 = tim.nll_bits_per_dim(s, _x0_denoiser, x32.double(), eps=eps, levels=256)
    torch.testing.assert_close(b32.double(), b64, rtol=1e-4, atol=0)  # float32: ~1e-6 per term


# --- decoders for other data: `levels` grey levels, or continuous (levels=None) ---------------


@pytest.mark.eq(58)
@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_decoder_bins_sum_to_one(levels):
    # an independent check of the bin edges: the probabilities of all levels sum to 1
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    for mean, log_var in [(0.3, -3.0), (-0.95, -8.0), (1.4, 0.5)]:
        logp = tim.discretized_gaussian_log_likelihood(
            x_0=grid, mean=torch.tensor(mean, dtype=torch.float64), log_var=log_var, levels=levels
        )
        assert abs(float(torch.logsumexp(logp, 0))) < 1e-12
        ref_logp = ref.discretized_gaussian_log_likelihood(
            x_0=grid.numpy(), mean=mean, log_var=log_var, levels=levels
        )
        np.testing.assert_allclose(logp.numpy(), ref_logp, rtol=1e-12, atol=1e-12)


@pytest.mark.eq(58)
def test_continuous_decoder_is_the_gaussian_log_density():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    got = tim.discretized_gaussian_log_likelihood(x_0=x, mean=0.25, log_var=-1.0, levels=None)
    want = stats.norm(0.25, np.exp(-0.5)).logpdf(x.numpy())
    np.testing.assert_allclose(got.numpy(), want, **tol.F64)
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        tim.discretized_gaussian_log_likelihood(x_0=x / 3, mean=0.0, log_var=0.0, levels=1)


@pytest.mark.eq(84, 85)
@given(alphas=schedules(min_T=2, max_T=400), data=st.data())
def test_posterior_coefficients_between_any_two_levels_match_the_reference(alphas, data):
    """q(x_s | x_t, x_0) between any two levels s < t of a schedule (a respaced chain, or
    one step) equals the reference's mu_q and var_q of eqs. (84), (85) with alpha_t replaced
    by alpha_bar_t / alpha_bar_s, computed in float64 from the products (an independent
    route: no log space). alpha_bar_s = 1 (s = 0) gives x_0 exactly and variance 0."""
    r = ref.schedule_from_alphas(alphas)
    ab = np.concatenate([[1.0], r.alpha_bar_t])  # index = t, alpha_bar_0 = 1
    t = data.draw(st.integers(1, r.T), label="t")
    s = data.draw(st.integers(0, t - 1), label="s")
    got = tim.posterior_coefficients(
        log_alpha_bar_t=torch.tensor(np.log(ab[t])),
        log_alpha_bar_prev=torch.tensor(np.log(ab[s])),
    )
    x_t, x_0 = 0.7, -1.3
    coef = {"alpha_t": ab[t] / ab[s], "alpha_bar_t": ab[t], "alpha_bar_prev": ab[s]}
    mean = float(got["coef_x_t"]) * x_t + float(got["coef_x_0"]) * x_0
    # the ratio of products and log-space differences agree to ~1e-11 relative (cancellation
    # in log alpha_bar_t - log alpha_bar_s when the two levels are close)
    assert mean == pytest.approx(float(ref.mu_q(x_t=x_t, x_0=x_0, **coef)), rel=1e-9, abs=1e-12)
    if s == 0:
        assert float(got["var_q"]) == 0.0 and float(got["coef_x_0"]) == 1.0
    else:
        assert float(got["var_q"]) == pytest.approx(float(ref.var_q(**coef)), rel=1e-9)


@pytest.mark.eq(58)
def test_discretized_decoder_needs_levels_and_data_in_its_range():
    """Continuous data outside [-1, 1] under a discretized decoder used to give a plausible
    number (max |x| = 8.8 gave a loss of 25.5): now it is an error naming the range, and no
    entry point guesses the level count."""
    s = tim.linear_schedule(10)
    x = torch.linspace(-8.8, 8.8, 8, dtype=torch.float64).view(2, 4)
    with pytest.raises(ValueError, match=r"\[-1, 1\].*levels=None"):
        tim.training_loss(s, lambda x_t, t: x_t, x, levels=256)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        tim.vb_terms(s, lambda x_t, t: x_t, x, levels=256)
    with pytest.raises(TypeError, match="levels"):
        tim.nll_bits_per_dim(s, lambda x_t, t: x_t, x)
    assert torch.isfinite(tim.vb_terms(s, lambda x_t, t: x_t, x, levels=None)[0]).all()


# --- a schedule's closed forms: torch vs the generated reference vs 50 digits ------------------


def _log_levels():
    """(log alpha_bar_{t-1}, log alpha_bar_t): 0 >= log_prev > log_t, near 0 (alpha_bar ~ 1),
    around -log 2 (where log1mexp switches form) and far below (alpha_bar ~ 1e-20)."""
    log_prev = st.one_of(
        st.just(0.0), st.floats(-1e-12, 0.0), st.floats(-0.8, -0.6), st.floats(-50.0, 0.0)
    )
    gap = st.one_of(st.floats(1e-15, 1e-6), st.floats(1e-6, 5.0))
    return st.tuples(log_prev, gap).map(lambda p: (p[0], p[0] - p[1])).filter(lambda p: p[1] < 0)


def _reference_log_space(beta, logs):
    log_t = logs["log_alpha_bar_t"]
    return {
        "log_alpha_t": ref.log_alpha_t(beta_t=beta),
        "q_var_from_log_alpha_bar": ref.q_var_from_log_alpha_bar(log_alpha_bar_t=log_t),
        "var_q": ref.var_q_from_log_alpha_bars(beta_t=beta, **logs),
        "log_snr_from_log_alpha_bar": ref.log_snr_from_log_alpha_bar(log_alpha_bar_t=log_t),
        "log_var_q_from_log_alpha_bars": ref.log_var_q_from_log_alpha_bars(beta_t=beta, **logs),
    }


@pytest.mark.eq(31, 70, 85, 109)
@pytest.mark.parametrize("device", DEVICES)
@given(levels=_log_levels(), beta=st.floats(1e-12, 1 - 1e-12))
@example(levels=(0.0, -1e-4), beta=1e-4)  # t = 1 of DDPM's schedule
@example(levels=(-math.log(2), -math.log(2) - 1e-9), beta=1e-9)  # log SNR ~ 0
def test_log_space_coefficients_torch_vs_generated_vs_mpmath(device, levels, beta):
    """The Schedule tables' closed forms (udm.derivations.vdm.schedules.schedule_in_log_space): torch's
    hand-written forms, the generated reference, and the paper's formulas in 50 digits at the
    same inputs: log alpha_t = log(1 - beta_t), 1 - alpha_bar_t, sigma_q^2(t) = beta_t (1 -
    alpha_bar_{t-1}) / (1 - alpha_bar_t) and its log, log SNR(t) (eqs. (31), (70), (85), (109)).
    Errors in ulps of each form's condition scale (sum of the magnitudes of its terms)."""
    import mpmath

    log_prev, log_t = levels
    mpmath.mp.dps = 50
    L, Lp, b = mpmath.mpf(log_t), mpmath.mpf(log_prev), mpmath.mpf(beta)
    om, om_prev = -mpmath.expm1(L), -mpmath.expm1(Lp)  # exact even for |L| < 1e-50
    exact = {
        "log_alpha_t": (mpmath.log(1 - b), abs(mpmath.log(1 - b))),
        "q_var_from_log_alpha_bar": (om, om),
        "var_q": (b * om_prev / om, b * om_prev / om),
        "log_snr_from_log_alpha_bar": (L - mpmath.log(om), abs(L) + abs(mpmath.log(om))),
    }
    if log_prev < 0:
        log_var = mpmath.log(b * om_prev / om)
        scale = abs(mpmath.log(b)) + abs(mpmath.log(om_prev)) + abs(mpmath.log(om))
        exact["log_var_q_from_log_alpha_bars"] = (log_var, scale)
    logs = {"log_alpha_bar_t": log_t, "log_alpha_bar_prev": log_prev}
    with np.errstate(divide="ignore"):  # the unused branch of log1mexp at log_prev ~ 0
        ref_values = _reference_log_space(beta, logs)

    def tt(v):
        return _t(v, torch.float64, device)

    tlogs = {k: tt(v) for k, v in logs.items()}
    torch_values = {
        "log_alpha_t": tim.log_alpha_t(beta_t=tt(beta)),
        "q_var_from_log_alpha_bar": tim.q_var_from_log_alpha_bar(log_alpha_bar_t=tt(log_t)),
        "var_q": tim.posterior_coefficients(**tlogs, log_alpha_t=tim.log_alpha_t(beta_t=tt(beta)))[
            "var_q"
        ],
        "log_snr_from_log_alpha_bar": tim.log_snr_from_log_alpha_bar(log_alpha_bar_t=tt(log_t)),
        "log_var_q_from_log_alpha_bars": tim.log_var_q_from_log_alpha_bars(
            beta_t=tt(beta), **tlogs
        ),
    }
    for key, (want, scale) in exact.items():
        bound = 8 * F64_EPS * float(scale) + tol.F64["atol"]  # floor: subnormal results
        for layer, got in (("reference", ref_values[key]), ("torch", torch_values[key])):
            got = float(got.cpu()) if isinstance(got, torch.Tensor) else float(got)
            assert abs(got - float(want)) <= bound, (key, layer, got, float(want))


def _steps_of_a_schedule():
    T = st.integers(2, 5000)
    return T.flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n)))


@pytest.mark.eq(31, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(
    Tt=_steps_of_a_schedule(),
    ends=st.tuples(st.floats(1e-6, 0.1), st.floats(1e-6, 0.9)).map(sorted),
    s=st.one_of(st.just(0.008), st.floats(1e-4, 0.5)),
)
@example(Tt=(1000, 1), ends=[1e-4, 0.02], s=0.008)
@example(Tt=(1000, 1000), ends=[1e-4, 0.02], s=0.008)
def test_named_betas_torch_vs_generated_vs_mpmath(device, Tt, ends, s):
    """beta_t of the linear, scaled-linear and cosine schedules at step t of T (eq. (31); the
    cosine one from its target alpha_bar, eq. (70)): torch's forms and the generated reference
    against the definitions in 50 digits (linear from beta_start at t = 1 to beta_end at t = T;
    sqrt(beta_t) linear; 1 - f(t / T) / f((t - 1) / T))."""
    import mpmath

    (T, t), (b0, b1) = Tt, ends
    mpmath.mp.dps = 50
    u = mpmath.mpf(t - 1) / (T - 1)
    r0, r1 = mpmath.sqrt(mpmath.mpf(b0)), mpmath.sqrt(mpmath.mpf(b1))

    def f(x):
        return mpmath.cos((x + mpmath.mpf(s)) / (1 + mpmath.mpf(s)) * mpmath.pi / 2) ** 2

    ratio = f(mpmath.mpf(t) / T) / f(mpmath.mpf(t - 1) / T)
    exact = {
        "linear_beta_t": (b0 + (b1 - b0) * u, b0 + b1),
        "scaled_linear_beta_t": ((r0 + (r1 - r0) * u) ** 2, (r0 + r1) ** 2),
        # 1 - ratio: the cos arguments carry a few ulps, amplified by tan near pi / 2
        "cosine_beta_t": (
            1 - ratio,
            ratio * (1 + 4 * t / T * abs(mpmath.tan(mpmath.pi / 2 * t / T))),
        ),
    }
    args = {
        "linear_beta_t": {"beta_start": b0, "beta_end": b1},
        "scaled_linear_beta_t": {"beta_start": b0, "beta_end": b1},
        "cosine_beta_t": {"s": s},
    }
    for key, (want, scale) in exact.items():
        got_ref = float(getattr(ref, key)(t=t, T=T, **args[key]))
        got_torch = getattr(tim, key)(t=_t(float(t), torch.float64, device), T=T, **args[key])
        bound = 16 * F64_EPS * float(scale)
        for layer, got in (("reference", got_ref), ("torch", float(got_torch.cpu()))):
            assert abs(got - float(want)) <= bound, (key, layer, got, float(want))
    assert float(ref.linear_beta_t(t=1, T=T, beta_start=b0, beta_end=b1)) == b0


@pytest.mark.eq(58)
@pytest.mark.parametrize("device", DEVICES)
@given(
    x=st.one_of(
        st.floats(-1e-300, -1e-320),
        st.floats(-1e-6, -1e-300),
        st.floats(-0.8, -0.6),
        st.floats(-745.0, -1e-6),
    )
)
@example(x=-math.log(2))  # where the two forms meet
@example(x=-40.0)  # 1 - exp(x) rounds to 1: only log1p(-exp(x)) keeps the digits
def test_log1mexp_torch_vs_reference_vs_mpmath(device, x):
    """log(1 - exp(x)), x < 0, behind the discretized decoder (both layers) and the schedules'
    log(1 - alpha_bar): the reference's and torch's forms against 50 digits, to a few ulps of
    the result at both ends (x -> 0-: log|x|; x -> -oo: -exp(x))."""
    import mpmath

    mpmath.mp.dps = 50
    xm = mpmath.mpf(x)  # 50 digits of each form where it has them: no cancellation in either
    exact = float(mpmath.log1p(-mpmath.exp(xm)) if x < -1 else mpmath.log(-mpmath.expm1(xm)))
    got_ref = float(ref._log1mexp(np.float64(x)))
    got_torch = float(tim._log1mexp(_t(x, torch.float64, device)).cpu())
    for got in (got_ref, got_torch):
        assert abs(got - exact) <= 4 * F64_EPS * abs(exact) + tol.F64["atol"], (got, exact)
