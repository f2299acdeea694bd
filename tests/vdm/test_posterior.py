"""The forward posterior q(x_{t-1} | x_t, x_0), eqs. (71)-(85): mu_q and sigma_q^2(t), alone and
from a schedule.

Oracles: the generated float64 reference (torch on every device) and the float32 result within
ulps; Bayes' rule normalized by quadrature (scipy.integrate); a regression of x_{t-1} on x_t over a
simulated chain (Monte Carlo); DDPM's arrays computed as their code does; the posterior between
any two levels from float64 products (no log space). Every line of the derivation is checked in
test_posterior_lines.py."""

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
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import reals, schedules
from tests.vdm._helpers import F64_EPS, _both, _t, schedule_and_t


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
