"""Learning diffusion noise parameters (eqs. (101)-(114)): SNR weights, omega, VDM's losses."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import udm.reference.noise_params as ref
import udm.reference.vdm as ref_vdm
import udm.torch_impl.noise_params as tim
import udm.torch_impl.vdm as tim_vdm
from tests.devices import DEVICES
from tests.strategies import schedules

F64_EPS = float(np.finfo(np.float64).eps)


def _t(value, dtype=torch.float64, device="cpu"):
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


# --- eqs. (101)-(110): the x_0 weight as half the SNR drop ----------------------------------------


@pytest.mark.eq(101, 102, 103, 104, 105, 106, 107, 108, 109, 110)
@pytest.mark.parametrize("device", DEVICES)
@given(alphas=schedules(min_T=2, max_T=4000))
def test_snr_weight_equals_original_weight_at_every_t(device, alphas):
    """At every t >= 2: the paper's weight (1 / (2 sigma_q^2)) alpha_bar_{t-1} (1 - alpha_t)^2 /
    (1 - alpha_bar_t)^2, with sigma_q^2 from the posterior precision 1/(1 - alpha_bar_{t-1}) +
    alpha_t / (1 - alpha_t) (an independent form of eq. (85)), equals (SNR(t-1) - SNR(t)) / 2."""
    alpha_bar = np.cumprod(alphas)
    keep = np.flatnonzero(alpha_bar[:-1] > 1e-300) + 1  # t >= 2 with alpha_bar_{t-1} > 0
    keep = keep[alpha_bar[keep] > 1e-300]
    if keep.size == 0:
        return
    a, abp, ab = alphas[keep], alpha_bar[keep - 1], alpha_bar[keep]
    var_q = 1 / (1 / (1 - abp) + a / (1 - a))
    # 1 - alpha_bar_t without cancellation: (1 - alpha_t) + alpha_t (1 - alpha_bar_{t-1})
    one_minus = (1 - a) + a * (1 - abp)
    paper = abp * (1 - a) ** 2 / (2 * var_q * one_minus**2)
    snr_s, snr_t = abp / (1 - abp), ab / one_minus
    by_snr = ref.x0_loss_weight_snr(snr_s=snr_s, snr_t=snr_t)
    # SNR(t-1) - SNR(t) cancels when the steps are small: error <= few ulp of SNR(t-1)
    atol = 16 * F64_EPS * snr_s
    assert np.all(np.abs(by_snr - paper) <= 1e-10 * paper + atol)
    # eq. (99)'s one weight, x_0_loss_weight (both layers): it reads 1 - alpha_bar_t off the
    # given alpha_bar_t, which differs from the cancellation-free `one_minus` by the rounding
    # of alpha_bar_t: 8 eps / (1 - alpha_bar_t) relative on top of a few roundings
    rtol = 1e-12 + 8 * F64_EPS / one_minus.min()
    kw = {"alpha_t": a, "alpha_bar_t": ab, "alpha_bar_prev": abp}
    got = tim_vdm.x_0_loss_weight(**{k: _t(v, device=device) for k, v in kw.items()})
    np.testing.assert_allclose(got.cpu().numpy(), paper, rtol=rtol)
    np.testing.assert_allclose(ref_vdm.x_0_loss_weight(**kw), paper, rtol=rtol)
    omega = np.log(one_minus) - np.log(ab)
    omega_s = np.log1p(-abp) - np.log(abp)
    stable = tim.x0_loss_weight_from_omega(
        omega_s=_t(omega_s, device=device), omega_t=_t(omega, device=device)
    )
    np.testing.assert_allclose(stable.cpu().numpy(), paper, rtol=1e-9)


def _level_pairs():
    """(alpha_bar_{t-1}, alpha_bar_t) with 0 < alpha_bar_t < alpha_bar_{t-1} < 1: far apart,
    nearly equal (fine schedules), or both near 1 or near 0."""
    level = st.one_of(st.floats(1e-12, 1 - 1e-12), st.floats(1 - 1e-6, 1 - 1e-15))
    ratio = st.one_of(st.floats(1e-6, 1 - 1e-6), st.floats(1 - 1e-6, 1 - 1e-15))
    return st.tuples(level, ratio).map(lambda p: (p[0], p[0] * p[1])).filter(lambda p: p[1] > 0)


@pytest.mark.eq(108)
@pytest.mark.parametrize("device", DEVICES)
@given(levels=_level_pairs())
@example(levels=(0.5, 0.5 * (1 - 1e-12)))  # one fine step: the SNRs nearly cancel
@example(levels=(1 - 1e-12, 1 - 2e-12))  # t = 1 of a fine schedule
@example(levels=(1e-11, 1e-12))
def test_eq_108_weight_vs_mpmath_snr_drop(device, levels):
    """Eq. (108)'s right side, (1/2)(alpha_bar_{t-1} / (1 - alpha_bar_{t-1}) - alpha_bar_t /
    (1 - alpha_bar_t)), against the SNR drop computed in 50 digits from the same inputs. Torch
    subtracts the levels once (a few ulps always); the generated reference is the paper's
    difference of two SNRs, exact to a few ulps of the larger SNR."""
    abp, ab = levels
    mp.mp.dps = 50
    snr_s, snr_t = mp.mpf(abp) / (1 - mp.mpf(abp)), mp.mpf(ab) / (1 - mp.mpf(ab))
    exact = float((snr_s - snr_t) / 2)
    assert exact > 0
    got = tim.x0_loss_weight_from_alpha_bars(
        alpha_bar_prev=_t(abp, device=device), alpha_bar_t=_t(ab, device=device)
    )
    assert got.dtype == torch.float64 and got.device.type == device
    assert abs(float(got) - exact) <= 8 * F64_EPS * exact
    want = ref.x0_loss_weight_from_alpha_bars(alpha_bar_prev=abp, alpha_bar_t=ab)
    assert abs(float(want) - exact) <= 8 * F64_EPS * float(snr_s)
    # float32: rounded inputs, evaluated in float32: a few float32 ulps of the same scale
    a32, b32 = (mp.mpf(float(np.float32(v))) for v in levels)
    if 1 > a32 > b32 > 0:
        got32 = tim.x0_loss_weight_from_alpha_bars(
            alpha_bar_prev=_t(abp, torch.float32, device),
            alpha_bar_t=_t(ab, torch.float32, device),
        )
        exact32 = float((a32 / (1 - a32) - b32 / (1 - b32)) / 2)
        f32_eps = float(np.finfo(np.float32).eps)
        assert abs(float(got32) - exact32) <= 8 * f32_eps * exact32


@pytest.mark.eq(110)
@given(alphas=schedules(min_T=1, max_T=4000))
def test_weights_telescope_to_the_endpoint_snrs(alphas):
    """Sum over t of (SNR(t-1) - SNR(t)) for t = 2..T is SNR(1) - SNR(T): only endpoints matter."""
    alpha_bar = np.cumprod(alphas)
    alpha_bar = alpha_bar[alpha_bar > 1e-300]
    if alpha_bar.size < 2:
        return
    snr = alpha_bar / (1 - alpha_bar)
    total = np.sum(ref.x0_loss_weight_snr(snr_s=snr[:-1], snr_t=snr[1:]))
    np.testing.assert_allclose(total, (snr[0] - snr[-1]) / 2, rtol=1e-12, atol=1e-12 * snr[0])


# --- eqs. (111)-(114): omega, SNR, sigmoids --------------------------------------------------------


@pytest.mark.eq(111, 112, 113, 114)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@given(omega=st.floats(-80, 80))
@example(omega=-40.0)  # alpha_bar = 1 - 4e-18: 1 - sigmoid(-omega) would be 0
@example(omega=40.0)
@example(omega=0.0)
def test_alpha_bar_sigmoids_within_ulps_of_mpmath(dtype, omega):
    eps = float(torch.finfo(dtype).eps)
    w = float(_t(omega, dtype))
    with mp.workdps(50):
        ab, om, snr = (float(v) for v in (1 / (1 + mp.exp(w)), 1 / (1 + mp.exp(-w)), mp.exp(-w)))
    for fn, want in (
        (tim.alpha_bar_from_omega, ab),
        (tim.one_minus_alpha_bar_from_omega, om),
        (tim.snr_from_omega, snr),
    ):
        got = float(fn(omega=_t(w, dtype)))
        if want < float(torch.finfo(dtype).tiny) or want > float(torch.finfo(dtype).max):
            continue  # out of the dtype's normal range
        # sigmoid / exp: <= 2 ulps; exp(-w) amplifies the input's own rounding, not measured here
        assert abs(got - want) <= 4 * eps * want
    # the generated float64 reference agrees at the same inputs
    np.testing.assert_allclose(ref.alpha_bar_from_omega(omega=w), ab, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(
        ref.one_minus_alpha_bar_from_omega(omega=w), om, rtol=1e-14, atol=1e-300
    )
    np.testing.assert_allclose(ref.snr_from_omega(omega=w), snr, rtol=1e-14)


@pytest.mark.eq(109, 111, 112, 113)
@given(alpha_bar_t=st.floats(1e-12, 1 - 1e-12))
def test_omega_round_trip_and_snr(alpha_bar_t):
    w = tim.omega_from_alpha_bar(alpha_bar_t=_t(alpha_bar_t))
    back = tim.alpha_bar_from_omega(omega=w)
    np.testing.assert_allclose(float(back), alpha_bar_t, rtol=8 * F64_EPS * (1 + abs(float(w))))
    np.testing.assert_allclose(
        float(w), ref.omega_from_alpha_bar(alpha_bar_t=alpha_bar_t), rtol=1e-9, atol=1e-13
    )
    np.testing.assert_allclose(
        float(tim.snr(alpha_bar_t=_t(alpha_bar_t))), ref.snr(alpha_bar_t=alpha_bar_t), rtol=1e-14
    )
    np.testing.assert_allclose(
        float(tim.snr_from_omega(omega=w)),
        alpha_bar_t / (1 - alpha_bar_t),
        rtol=1e-12 + 4 * F64_EPS * abs(float(w)),
    )


@pytest.mark.eq(113, 114)
@pytest.mark.parametrize("device", DEVICES)
@given(omega=st.floats(-30, 30), x_0=st.floats(-10, 10), eps=st.floats(-5, 5))
def test_q_sample_from_omega_is_q_sample(device, omega, x_0, eps):
    got = tim.q_sample_from_omega(
        x_0=_t(x_0, device=device), omega=_t(omega, device=device), eps=_t(eps, device=device)
    )
    ab = float(ref.alpha_bar_from_omega(omega=omega))
    want = ref_vdm.q_sample(x_0=x_0, alpha_bar_t=ab, eps=eps)
    np.testing.assert_allclose(float(got), want, rtol=1e-12, atol=1e-12 * (abs(x_0) + abs(eps)))


# --- the learned schedule ------------------------------------------------------------------------


def _schedule(hidden, raw, dtype=torch.float64):
    """A LearnedNoiseSchedule with every parameter set from `raw` values."""
    s = tim.LearnedNoiseSchedule(hidden=hidden, dtype=dtype)
    with torch.no_grad():
        for p, values in zip(s.parameters(), raw, strict=True):
            p.copy_(torch.as_tensor(values, dtype=dtype).reshape(p.shape))
    return s


@st.composite
def schedule_params(draw):
    hidden = draw(st.integers(1, 8))
    big = st.floats(-30, 30)
    vec = st.lists(big, min_size=hidden, max_size=hidden)
    raw = [
        draw(st.floats(-20, 10)),  # omega_min
        draw(st.floats(-15, 4)),  # raw gap: softplus down to 3e-7
        draw(big),  # raw w1
        draw(vec),  # raw w2
        draw(vec),  # b2
        draw(vec),  # raw w3
    ]
    return hidden, raw


@pytest.mark.eq(111, 113, 114)
@given(params=schedule_params())
@example(params=(1, [-13.3, -15.0, -30.0, [30.0], [-30.0], [30.0]]))  # steep sigmoid, tiny gap
@example(params=(2, [-13.3, 3.0, 30.0, [-30.0, -30.0], [0.0, 0.0], [-30.0, -30.0]]))
def test_learned_schedule_strictly_monotone_with_finite_gradients(params):
    hidden, raw = params
    s = _schedule(hidden, raw)
    t = torch.linspace(0, 1, 257, dtype=torch.float64)
    omega = s(t)
    assert torch.all(torch.diff(omega) > 0), "omega must increase strictly"
    torch.testing.assert_close(omega[0], s.omega_min, rtol=0, atol=1e-12)
    torch.testing.assert_close(omega[-1], s.omega_max, rtol=1e-12, atol=1e-12)
    # gradients at the endpoints: w.r.t. every parameter and t, finite
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    w, dw = s.omega_and_derivative(ends)
    grads = torch.autograd.grad((w.sum() + dw.sum()), [ends, *s.parameters()], allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert torch.all(dw > 0)


@pytest.mark.eq(111)
@given(params=schedule_params())
def test_schedule_derivative_matches_autograd(params):
    s = _schedule(*params)
    t = torch.linspace(0, 1, 33, dtype=torch.float64, requires_grad=True)
    w, dw = s.omega_and_derivative(t)
    (auto,) = torch.autograd.grad(w.sum(), t)
    torch.testing.assert_close(dw, auto, rtol=1e-10, atol=1e-10 * float(dw.detach().abs().max()))


# --- VDM's losses: continuous time, discrete T, invariance ------------------------------------------


def _mmse_eps(omega, data_var):
    """E||eps - E[eps | x_t]||^2 per coordinate for x_0 ~ N(0, data_var): v SNR / (1 + v SNR)."""
    return torch.sigmoid(np.log(data_var) - omega)


def _gauss_legendre(panels=64, nodes=16):
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(0, 1, panels + 1)
    t = (
        (edges[:-1, None] + edges[1:, None]) / 2 + (edges[1:, None] - edges[:-1, None]) / 2 * x
    ).ravel()
    weights = ((edges[1:, None] - edges[:-1, None]) / 2 * w).ravel()
    return torch.tensor(t), torch.tensor(weights)


@torch.no_grad()
def _continuous_loss_by_quadrature(s, data_var, mse=None):
    """int_0^1 of the continuous-time loss with E||eps - eps_hat||^2 = mse(t, omega)."""
    t, w = _gauss_legendre()
    omega, dw = s.omega_and_derivative(t)
    err = _mmse_eps(omega, data_var) if mse is None else mse(t, omega)
    per_t = tim.continuous_diffusion_loss(
        eps=err.sqrt()[:, None], eps_hat=torch.zeros(len(t), 1, dtype=t.dtype), domega_dt=dw
    )
    return float((w * per_t).sum())


@torch.no_grad()
def _discrete_loss(s, data_var, T):
    """E_{i ~ U{1..T}} of the discrete loss with the optimal denoiser's expected error at t_i."""
    i = torch.arange(1, T + 1, dtype=torch.float64)
    omega_t, omega_s = s(i / T), s((i - 1) / T)
    err = _mmse_eps(omega_t, data_var)
    per_i = tim.discrete_diffusion_loss(
        eps=err.sqrt()[:, None],
        eps_hat=torch.zeros(T, 1, dtype=i.dtype),
        omega_s=omega_s,
        omega_t=omega_t,
        T=T,
    )
    return float(per_i.mean())


@pytest.mark.eq(110, 111)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_continuous_loss_invariant_to_schedule_shape(seed):
    """VDM: for fixed endpoints the continuous-time loss of the optimal denoiser does not
    depend on the schedule's shape. Random schedules with the same endpoints, integrated
    by composite Gauss-Legendre (1024 nodes), against the closed form in the reference."""
    torch.manual_seed(seed)
    s = tim.LearnedNoiseSchedule(omega_min=-10.0, omega_max=6.0, hidden=32, dtype=torch.float64)
    with torch.no_grad():
        for p in (s.raw_w2, s.b2, s.raw_w3):
            p.mul_(3.0)  # strongly non-linear shapes
    data_var = 0.7
    quad = _continuous_loss_by_quadrature(s, data_var)
    want = ref.optimal_continuous_loss_gaussian(
        omega_min=float(s.omega_min.detach()),
        omega_max=float(s.omega_max.detach()),
        data_var=data_var,
    )
    np.testing.assert_allclose(quad, want, rtol=1e-9)
    # control: a denoiser whose error depends on t, not on the SNR, does see the shape
    other = _schedule(32, [p.detach() for p in s.parameters()])
    with torch.no_grad():
        other.b2.add_(2.0)
    mse = lambda t, omega: 0.5 + 0.4 * t  # noqa: E731
    a, b = (
        _continuous_loss_by_quadrature(s, data_var, mse),
        _continuous_loss_by_quadrature(other, data_var, mse),
    )
    assert abs(a - b) > 1e-3


@pytest.mark.eq(110, 111)
def test_discrete_loss_converges_to_continuous_at_rate_one_over_T():
    """L_T - L_oo ~ c / T: the slope of log(L_T - L_oo) against log T is -1 (the SymPy proof in
    udm.derivations.noise_params.discrete_to_continuous_rate on linear log-SNR; here on a learned
    schedule), and L_T > L_oo (more steps, lower loss)."""
    torch.manual_seed(0)
    s = tim.LearnedNoiseSchedule(omega_min=-8.0, omega_max=5.0, hidden=16, dtype=torch.float64)
    data_var = 1.3
    l_inf = float(
        ref.optimal_continuous_loss_gaussian(
            omega_min=float(s.omega_min.detach()),
            omega_max=float(s.omega_max.detach()),
            data_var=data_var,
        )
    )
    Ts = 2 ** np.arange(6, 13)  # 64 .. 4096: the asymptotic regime
    gaps = np.array([_discrete_loss(s, data_var, int(T)) - l_inf for T in Ts])
    assert np.all(gaps > 0)
    slope = np.polyfit(np.log(Ts), np.log(gaps), 1)[0]
    assert abs(slope + 1) < 0.05, slope
    # with T = 1 the loss is the single-step one: (1/2) expm1(omega_max - omega_min) mse(1)
    one = _discrete_loss(s, data_var, 1)
    want = (
        0.5
        * np.expm1(float((s.omega_max - s.omega_min).detach()))
        * float(_mmse_eps(s.omega_max.detach(), data_var))
    )
    np.testing.assert_allclose(one, want, rtol=1e-12)


@pytest.mark.eq(110, 111)
@pytest.mark.parametrize("device", DEVICES)
def test_losses_match_the_snr_form_per_sample(device):
    """Continuous: 0.5 omega' ||eps - eps_hat||^2 == -0.5 SNR'(t) ||x_0 - x_0_hat||^2 (SNR' by
    autograd); discrete: the expm1 form == (T/2)(SNR(s) - SNR(t)) ||x_0 - x_0_hat||^2."""
    torch.manual_seed(1)
    s = tim.LearnedNoiseSchedule(hidden=8, dtype=torch.float64).to(device)
    B, T = 6, 50
    t = torch.rand(B, dtype=torch.float64, device=device).requires_grad_(True)
    omega, dw = s.omega_and_derivative(t)
    (dsnr,) = torch.autograd.grad(torch.exp(-omega).sum(), t)
    x_0 = torch.randn(B, 3, 2, dtype=torch.float64, device=device)
    eps, eps_hat = torch.randn_like(x_0), torch.randn_like(x_0)
    snr = torch.exp(-omega.detach())[:, None, None]
    x_t = (snr / (1 + snr)).sqrt() * x_0 + (1 / (1 + snr)).sqrt() * eps
    x_0_hat = (x_t - (1 / (1 + snr)).sqrt() * eps_hat) / (snr / (1 + snr)).sqrt()
    sq_x = (x_0 - x_0_hat).square().flatten(1).sum(-1)
    got = tim.continuous_diffusion_loss(eps=eps, eps_hat=eps_hat, domega_dt=dw.detach())
    torch.testing.assert_close(got, -0.5 * dsnr * sq_x, rtol=1e-9, atol=0)
    i = torch.randint(1, T + 1, (B,), device=device)
    w_t, w_s = s(i / T).detach(), s((i - 1) / T).detach()
    snr_t = torch.exp(-w_t)[:, None, None]
    x_t = (snr_t / (1 + snr_t)).sqrt() * x_0 + (1 / (1 + snr_t)).sqrt() * eps
    x_0_hat = (x_t - (1 / (1 + snr_t)).sqrt() * eps_hat) / (snr_t / (1 + snr_t)).sqrt()
    sq_x = (x_0 - x_0_hat).square().flatten(1).sum(-1)
    got = tim.discrete_diffusion_loss(eps=eps, eps_hat=eps_hat, omega_s=w_s, omega_t=w_t, T=T)
    want = T * tim.x0_loss_weight_snr(snr_s=torch.exp(-w_s), snr_t=torch.exp(-w_t)) * sq_x
    torch.testing.assert_close(got, want, rtol=1e-8, atol=0)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.eq(101, 109, 110, 111)
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: tim.LearnedNoiseSchedule(omega_min=5.0, omega_max=-5.0),
            ValueError,
            "omega_min < omega_max",
        ),
        (lambda: tim.LearnedNoiseSchedule(hidden=0), ValueError, "hidden"),
        (
            lambda: tim.LearnedNoiseSchedule(hidden=2)(torch.tensor([1.5])),
            ValueError,
            r"t must lie in \[0, 1\]",
        ),
        (
            lambda: tim.discrete_diffusion_loss(
                eps=torch.zeros(2, 1), eps_hat=torch.zeros(2, 1), omega_s=0.0, omega_t=1.0, T=0
            ),
            ValueError,
            "T must be an int >= 1",
        ),
        (
            lambda: tim.continuous_diffusion_loss(
                eps=torch.zeros(2, 1), eps_hat=torch.zeros(2, 2), domega_dt=torch.ones(2)
            ),
            ValueError,
            "must match",
        ),
        (
            lambda: tim.continuous_diffusion_loss(
                eps=torch.zeros(2, 1), eps_hat=torch.zeros(2, 1), domega_dt=-torch.ones(2)
            ),
            ValueError,
            "domega_dt must be > 0",
        ),
        (lambda: tim.snr(alpha_bar_t=1.0), ValueError, r"alpha_bar_t must lie in \(0, 1\)"),
        (lambda: ref.snr(alpha_bar_t=1.0), ValueError, r"alpha_bar_t must lie in \(0, 1\)"),
        (
            lambda: ref_vdm.x_0_loss_weight(alpha_t=1.5, alpha_bar_t=0.5, alpha_bar_prev=0.6),
            ValueError,
            "alpha_t",
        ),
        # the second spelling of eq. (99)'s weight is gone from both layers, with a pointer
        (
            lambda: ref.x0_loss_weight,
            AttributeError,
            r"removed: use udm\.reference\.vdm\.x_0_loss_weight",
        ),
        (
            lambda: tim.x0_loss_weight,
            AttributeError,
            r"removed: use udm\.torch_impl\.vdm\.x_0_loss_weight",
        ),
        (lambda: tim.x0_loss_weight_snr(snr_s=-1.0, snr_t=1.0), ValueError, "snr_s must be > 0"),
        (
            lambda: ref.optimal_continuous_loss_gaussian(
                omega_min=1.0, omega_max=0.0, data_var=1.0
            ),
            ValueError,
            "omega_min must be < omega_max",
        ),
    ],
)
def test_bad_input_is_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()
