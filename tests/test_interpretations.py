"""Three equivalent interpretations (eqs. (115)-(151)): conversions, losses, Tweedie, oracle."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate

import udm.reference.interpretations as ref
import udm.torch_impl.interpretations as tim
import udm.torch_impl.vdm as tim_vdm
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import alpha_bars

F64_EPS = float(np.finfo(np.float64).eps)

# conversion name -> (prediction argument, exact value and condition scale in mpmath)
CONVERSIONS = {
    "x_0_from_eps": (
        "eps_hat",
        lambda x, p, sa, s1, om: ((x - s1 * p) / sa, (abs(x) + abs(s1 * p)) / sa),
    ),
    "eps_from_x_0": (
        "x_0_hat",
        lambda x, p, sa, s1, om: ((x - sa * p) / s1, (abs(x) + abs(sa * p)) / s1),
    ),
    "x_0_from_score": (
        "score_hat",
        lambda x, p, sa, s1, om: ((x + om * p) / sa, (abs(x) + abs(om * p)) / sa),
    ),
    "score_from_x_0": (
        "x_0_hat",
        lambda x, p, sa, s1, om: ((sa * p - x) / om, (abs(x) + abs(sa * p)) / om),
    ),
    "score_from_eps": ("eps_hat", lambda x, p, sa, s1, om: (-p / s1, abs(p / s1))),
    "eps_from_score": ("score_hat", lambda x, p, sa, s1, om: (-s1 * p, abs(s1 * p))),
    "x_0_from_v": ("v_hat", lambda x, p, sa, s1, om: (sa * x - s1 * p, abs(sa * x) + abs(s1 * p))),
    "eps_from_v": ("v_hat", lambda x, p, sa, s1, om: (s1 * x + sa * p, abs(s1 * x) + abs(sa * p))),
    "v_from_x_0": (
        "x_0_hat",
        lambda x, p, sa, s1, om: ((sa * x - p) / s1, (abs(sa * x) + abs(p)) / s1),
    ),
    "v_from_eps": (
        "eps_hat",
        lambda x, p, sa, s1, om: ((p - s1 * x) / sa, (abs(p) + abs(s1 * x)) / sa),
    ),
    "v_from_score": (
        "score_hat",
        lambda x, p, sa, s1, om: (-s1 * (x + p) / sa, s1 * (abs(x) + abs(p)) / sa),
    ),
    "score_from_v": (
        "v_hat",
        lambda x, p, sa, s1, om: (-(x + sa * p / s1), abs(x) + abs(sa * p / s1)),
    ),
}
NO_X_T = {"score_from_eps", "eps_from_score"}
EQS = {"score_from_eps": 151, "eps_from_score": 151, "x_0_from_score": 133, "score_from_x_0": 133}

open_alpha_bars = alpha_bars.filter(lambda a: a < 1.0)
values = st.floats(-50, 50)


def _t(value, dtype=torch.float64, device="cpu"):
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


def _call(layer, name, x_t, pred, **level):
    arg = CONVERSIONS[name][0]
    kwargs = {arg: pred, **level} if name in NO_X_T else {"x_t": x_t, arg: pred, **level}
    return getattr(layer, name)(**kwargs)


def _exact(name, x_t, pred, *, alpha_bar_t=None, log_snr=None):
    with mp.workdps(50):
        if log_snr is not None:
            lam = mp.mpf(log_snr)
            ab, om = 1 / (1 + mp.exp(-lam)), 1 / (1 + mp.exp(lam))
        else:
            ab = mp.mpf(alpha_bar_t)
            om = 1 - ab
        value, scale = CONVERSIONS[name][1](mp.mpf(x_t), mp.mpf(pred), mp.sqrt(ab), mp.sqrt(om), om)
        return float(value), float(scale)


# --- conversions: torch vs reference, vs mpmath, round trips (eqs. (115), (133), (151)) ------


@pytest.mark.eq(115, 133, 151)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CONVERSIONS))
@given(x_t=values, pred=values, alpha_bar_t=open_alpha_bars)
@example(x_t=1.0, pred=-2.0, alpha_bar_t=1e-12)
@example(x_t=1.0, pred=-2.0, alpha_bar_t=1 - 1e-12)
def test_conversion_torch_matches_reference_and_mpmath(device, name, x_t, pred, alpha_bar_t):
    got = _call(tim, name, _t(x_t, device=device), _t(pred, device=device), alpha_bar_t=alpha_bar_t)
    want = _call(ref, name, x_t, pred, alpha_bar_t=alpha_bar_t)
    exact, scale = _exact(name, x_t, pred, alpha_bar_t=alpha_bar_t)
    bound = tol.CONVERSION_ULPS * F64_EPS * scale
    assert abs(float(got) - exact) <= bound
    assert abs(float(want) - exact) <= bound


@pytest.mark.eq(115, 133, 151)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(CONVERSIONS))
@given(x_t=values, pred=values, log_snr=st.floats(-35, 35))
@example(x_t=1.0, pred=-2.0, log_snr=30.0)  # alpha_bar = 1 - 1e-13: rounds to 1 in float32
@example(x_t=1.0, pred=-2.0, log_snr=-30.0)
def test_conversion_in_log_snr_within_ulps_of_mpmath(dtype, name, x_t, pred, log_snr):
    eps = float(torch.finfo(dtype).eps)
    x32, p32, l32 = (float(_t(v, dtype)) for v in (x_t, pred, log_snr))  # rounded inputs
    got = _call(tim, name, _t(x32, dtype), _t(p32, dtype), log_snr=_t(l32, dtype))
    exact, scale = _exact(name, x32, p32, log_snr=l32)
    # absolute floor: subnormal results carry less than full precision
    floor = tol.CONVERSION_ULPS * float(torch.finfo(dtype).tiny)
    assert abs(float(got) - exact) <= tol.CONVERSION_ULPS * eps * scale + floor


@pytest.mark.eq(115, 133, 151)
@pytest.mark.parametrize("name", sorted(CONVERSIONS))
@given(x_t=values, pred=values, alpha_bar_t=open_alpha_bars.filter(lambda a: a > 1e-9))
def test_log_snr_and_alpha_bar_routes_agree(name, x_t, pred, alpha_bar_t):
    lam = float(np.log(alpha_bar_t) - np.log1p(-alpha_bar_t))
    by_ab = _call(tim, name, _t(x_t), _t(pred), alpha_bar_t=alpha_bar_t)
    by_lam = _call(tim, name, _t(x_t), _t(pred), log_snr=lam)
    _, scale = _exact(name, x_t, pred, alpha_bar_t=alpha_bar_t)
    # lam itself carries ~1 ulp of relative error, worth <= |lam| ulps in alpha_bar terms
    assert (
        abs(float(by_ab) - float(by_lam)) <= (2 * tol.CONVERSION_ULPS + abs(lam)) * F64_EPS * scale
    )


def _round_trip(layer, x_0, eps, alpha_bar_t, x_t, order):
    if order == "x0-eps-score-v":
        e = layer.eps_from_x_0(x_t=x_t, x_0_hat=x_0, alpha_bar_t=alpha_bar_t)
        s = layer.score_from_eps(eps_hat=e, alpha_bar_t=alpha_bar_t)
        v = layer.v_from_score(x_t=x_t, score_hat=s, alpha_bar_t=alpha_bar_t)
        return layer.x_0_from_v(x_t=x_t, v_hat=v, alpha_bar_t=alpha_bar_t)
    v = layer.v_from_x_0(x_t=x_t, x_0_hat=x_0, alpha_bar_t=alpha_bar_t)
    s = layer.score_from_v(x_t=x_t, v_hat=v, alpha_bar_t=alpha_bar_t)
    e = layer.eps_from_score(score_hat=s, alpha_bar_t=alpha_bar_t)
    return layer.x_0_from_eps(x_t=x_t, eps_hat=e, alpha_bar_t=alpha_bar_t)


@pytest.mark.eq(115, 133, 149, 150, 151)
@pytest.mark.parametrize("order", ["x0-eps-score-v", "x0-v-score-eps"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@given(x_0=st.floats(-10, 10), eps=st.floats(-6, 6), alpha_bar_t=open_alpha_bars)
@example(x_0=1.5, eps=-0.7, alpha_bar_t=1e-12)
@example(x_0=1.5, eps=-0.7, alpha_bar_t=1 - 1e-7)
@example(x_0=1.5, eps=-0.7, alpha_bar_t=0.5)
def test_round_trip_is_identity(order, dtype, x_0, eps, alpha_bar_t):
    """x_0 -> eps -> score -> v -> x_0 (and the reverse order) returns x_0. Error scale:
    x_0 is determined by x_t only up to ulp(|x_t|) / sqrt(alpha_bar_t) (a small signal
    under unit noise as alpha_bar -> 0), so the bound is in ulps of (|x_0| + |eps| + |x_t|) /
    sqrt(alpha_bar_t)."""
    u = float(torch.finfo(dtype).eps)
    ab = float(_t(alpha_bar_t, dtype))
    if ab >= 1.0:  # float32 rounds alpha_bar near 1 up to 1: noise is gone, nothing to invert
        ab = float(np.nextafter(np.float32(1), np.float32(0))) if dtype == torch.float32 else ab
    x0, e = _t(x_0, dtype), _t(eps, dtype)
    x_t = (ab**0.5) * x0 + ((1 - ab) ** 0.5) * e
    back = _round_trip(tim, x0, e, _t(ab, dtype), x_t, order)
    scale = (abs(x_0) + abs(eps) + abs(float(x_t))) / ab**0.5
    assert abs(float(back) - float(x0)) <= tol.ROUND_TRIP_ULPS * u * scale
    if dtype == torch.float64:
        back_ref = _round_trip(ref, x_0, eps, ab, float(x_t), order)
        assert abs(float(back_ref) - x_0) <= tol.ROUND_TRIP_ULPS * u * scale


# --- the model means, eqs. (124)-(125), (142)-(143) ----------------------------------------------

schedule_pairs = st.tuples(st.floats(0.01, 1 - 1e-6), st.floats(1e-6, 1 - 1e-6))


def _mu_q_paper(x_t, x_0, alpha_t, alpha_bar_prev):
    """The paper's posterior mean, eq. (116), written out independently of the layers."""
    ab = alpha_t * alpha_bar_prev
    return (
        np.sqrt(alpha_t) * (1 - alpha_bar_prev) * x_t
        + np.sqrt(alpha_bar_prev) * (1 - alpha_t) * x_0
    ) / (1 - ab)


@pytest.mark.eq(
    116,
    117,
    118,
    119,
    120,
    121,
    122,
    123,
    124,
    125,
    134,
    135,
    136,
    137,
    138,
    139,
    140,
    141,
    142,
    143,
)
@pytest.mark.parametrize("device", DEVICES)
@given(pair=schedule_pairs, x_0=st.floats(-5, 5), eps=st.floats(-5, 5))
def test_mu_theta_with_true_noise_or_score_is_mu_q(device, pair, x_0, eps):
    alpha_t, alpha_bar_prev = pair
    ab = alpha_t * alpha_bar_prev
    x_t = np.sqrt(ab) * x_0 + np.sqrt(1 - ab) * eps
    want = _mu_q_paper(x_t, x_0, alpha_t, alpha_bar_prev)
    score = -eps / np.sqrt(1 - ab)  # the score of q(x_t | x_0), eq. (151)
    by_eps = tim.mu_theta_from_eps(
        x_t=_t(x_t, device=device), eps_hat=_t(eps, device=device), alpha_t=alpha_t, alpha_bar_t=ab
    )
    by_score = tim.mu_theta_from_score(
        x_t=_t(x_t, device=device), score_hat=_t(score, device=device), alpha_t=alpha_t
    )
    scale = (abs(x_t) + abs(x_0) + abs(eps)) / np.sqrt(alpha_t * (1 - ab))
    for got in (by_eps, by_score):
        assert abs(float(got) - want) <= 64 * F64_EPS * scale
    np.testing.assert_allclose(
        ref.mu_theta_from_eps(x_t=x_t, eps_hat=eps, alpha_t=alpha_t, alpha_bar_t=ab),
        float(by_eps),
        rtol=1e-12,
        atol=64 * F64_EPS * scale,
    )
    np.testing.assert_allclose(
        ref.mu_theta_from_score(x_t=x_t, score_hat=score, alpha_t=alpha_t),
        float(by_score),
        rtol=1e-12,
        atol=64 * F64_EPS * scale,
    )


# --- the three losses: equal sample by sample, and equal to the KL (eqs. (110), (126)-(130), (144)-(148))


@pytest.mark.eq(110, 126, 127, 128, 129, 130, 144, 145, 146, 147, 148)
@pytest.mark.parametrize("device", DEVICES)
@given(
    pair=schedule_pairs,
    x_0=st.floats(-5, 5),
    eps=st.floats(-5, 5),
    err=st.floats(0.01, 3).flatmap(lambda m: st.sampled_from([m, -m])),
)
@example(pair=(0.98, 0.999), x_0=1.0, eps=0.3, err=0.5)
@example(pair=(0.999, 1e-6), x_0=1.0, eps=0.3, err=0.5)
def test_three_losses_equal_the_kl_sample_by_sample(device, pair, x_0, eps, err):
    alpha_t, alpha_bar_prev = pair
    ab = alpha_t * alpha_bar_prev
    x_t = np.sqrt(ab) * x_0 + np.sqrt(1 - ab) * eps
    x_0_hat = x_0 + err
    T = lambda v: _t(v, device=device)  # noqa: E731
    eps_hat = tim.eps_from_x_0(x_t=T(x_t), x_0_hat=T(x_0_hat), alpha_bar_t=ab)
    score = tim.score_from_eps(eps_hat=T(eps), alpha_bar_t=ab)
    score_hat = tim.score_from_eps(eps_hat=eps_hat, alpha_bar_t=ab)
    kw = {"alpha_t": alpha_t, "alpha_bar_prev": alpha_bar_prev}
    l_x = float(tim.x0_loss(x_0=T(x_0), x_0_hat=T(x_0_hat), **kw))
    l_e = float(tim.eps_loss(eps=T(eps), eps_hat=eps_hat, **kw))
    l_s = float(tim.score_loss(score=score, score_hat=score_hat, **kw))
    # independent route: KL between q(x_{t-1} | x_t, x_0) and p_theta with the same variance,
    # mu_q by the paper's eq. (116), mu_theta = mu_q(x_t, x_0_hat), sigma_q^2 by eq. (85)
    var_q = (1 - alpha_t) * (1 - alpha_bar_prev) / (1 - ab)
    mu_q = _mu_q_paper(x_t, x_0, alpha_t, alpha_bar_prev)
    mu_p = _mu_q_paper(x_t, x_0_hat, alpha_t, alpha_bar_prev)
    # udm.torch_impl.vdm's KL is the stable form (expm1(l) - l): exact 0 variance term here
    kl = float(
        tim_vdm.kl_normal(mean_q=_t(mu_q), var_q=_t(var_q), mean_p=_t(mu_p), var_p=_t(var_q))
    )
    # eps_hat is recovered from x_t with abs. error ~ulp(|x_t| + |x_0_hat|) / sqrt(1 - alpha_bar),
    # while |eps - eps_hat| = sqrt(alpha_bar) |err| / sqrt(1 - alpha_bar): relative error of the
    # loss <= 2 * 8 ulp (|x_t| + |x_0_hat|) / (sqrt(alpha_bar) |err|); mu_q - mu_p loses
    # ulp(|mu|) / |mu_q - mu_p| to cancellation
    rtol = 1e-12 + 16 * F64_EPS * (abs(x_t) + abs(x_0_hat)) / (abs(err) * np.sqrt(ab))
    rtol += 8 * F64_EPS * (abs(mu_q) + abs(mu_p)) / abs(mu_q - mu_p)
    np.testing.assert_allclose([l_x, l_e, l_s], [kl] * 3, rtol=max(rtol, 1e-9))
    np.testing.assert_allclose(
        [
            ref.x0_loss(x_0=x_0, x_0_hat=x_0_hat, **kw),
            ref.eps_loss(eps=eps, eps_hat=float(eps_hat), **kw),
            ref.score_loss(score=float(score), score_hat=float(score_hat), **kw),
        ],
        [l_x, l_e, l_s],
        # both layers form 1 - alpha_t alpha_bar_{t-1} as (1 - alpha_t) + alpha_t (1 -
        # alpha_bar_{t-1}), without cancellation (the reference through
        # udm.derivations._stable.one_minus_product; it used to subtract, 1.1e-11 off at
        # 1 - alpha_bar_t = 2e-6)
        rtol=1e-12,
    )


@pytest.mark.eq(110, 130, 148)
@given(pair=schedule_pairs)
def test_weights_convert_by_snr_and_one_minus_alpha_bar(pair):
    """w_eps = w_x / SNR(t) and w_score = w_eps (1 - alpha_bar_t), with the paper's original
    weights (eqs. (130), (148): 1 / (2 sigma_q^2) times (1 - alpha_t)^2 / ((1 - alpha_bar) alpha_t)
    and (1 - alpha_t)^2 / alpha_t) typed from the paper here."""
    import udm.reference.vdm as vdm_ref

    alpha_t, alpha_bar_prev = pair
    ab = alpha_t * alpha_bar_prev
    one_minus_ab = (1 - alpha_t) + alpha_t * (1 - alpha_bar_prev)  # no cancellation near 1
    var_q = (1 - alpha_t) * (1 - alpha_bar_prev) / one_minus_ab
    # the paper's weights, typed here, with 1 - alpha_bar_t formed without cancellation
    want_e = (1 - alpha_t) ** 2 / (2 * var_q * one_minus_ab * alpha_t)
    want_s = (1 - alpha_t) ** 2 / (2 * var_q * alpha_t)
    # the generated reference prints 1 - alpha_t alpha_bar_prev as written: it loses
    # eps / (1 - alpha_bar_t) relative accuracy to cancellation near alpha_bar_t = 1
    rtol_ref = 1e-12 + 8 * F64_EPS / one_minus_ab
    w_x = vdm_ref.x_0_loss_weight(alpha_t=alpha_t, alpha_bar_t=ab, alpha_bar_prev=alpha_bar_prev)
    w_e = ref.eps_loss_weight(alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    w_s = ref.score_loss_weight(alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    np.testing.assert_allclose(w_e, want_e, rtol=rtol_ref)
    np.testing.assert_allclose(w_s, want_s, rtol=rtol_ref)
    # the conversions: w_eps = w_x / SNR(t), w_score = w_eps (1 - alpha_bar_t)
    np.testing.assert_allclose(want_e, w_x / (ab / one_minus_ab), rtol=rtol_ref)
    np.testing.assert_allclose(want_s, want_e * one_minus_ab, rtol=1e-12)
    for name, want in (("eps_loss_weight", want_e), ("score_loss_weight", want_s)):
        got = getattr(tim, name)(alpha_t=_t(alpha_t), alpha_bar_prev=_t(alpha_bar_prev))
        np.testing.assert_allclose(float(got), want, rtol=1e-12)


# --- Tweedie and the Gaussian-mixture oracle, eqs. (131)-(133) ------------------------------------


@st.composite
def mixtures(draw, dim=1, max_k=3):
    k = draw(st.integers(1, max_k))
    raw = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k)))
    means = np.array(draw(st.lists(st.floats(-4, 4), min_size=k * dim, max_size=k * dim)))
    variances = np.array(draw(st.lists(st.floats(0.01, 2.0), min_size=k, max_size=k)))
    return raw / raw.sum(), means.reshape(k, dim), variances


def _posterior_mean_by_quadrature(x_t, weights, means, variances, ab):
    """E[x_0 | x_t] = int x0 p(x0) q(x_t | x0) / int p(x0) q(x_t | x0), in 1-D."""
    a, s2 = np.sqrt(ab), 1 - ab

    def log_joint(x0):
        log_prior = (
            np.log(weights)
            - 0.5 * np.log(2 * np.pi * variances)
            - 0.5 * (x0 - means[:, 0]) ** 2 / variances
        )
        return np.logaddexp.reduce(log_prior) - 0.5 * (x_t - a * x0) ** 2 / s2

    # per component, the posterior of x0 is N(m_k', v_k'): breakpoints there, +-14 std around
    v_post = 1 / (1 / variances + ab / s2)
    m_post = v_post * (means[:, 0] / variances + a * x_t / s2)
    top = max(log_joint(m) for m in m_post)
    lo = min(m_post - 14 * np.sqrt(v_post))
    hi = max(m_post + 14 * np.sqrt(v_post))
    opts = {"points": sorted(m_post), "limit": 400, "epsabs": 0, "epsrel": 1e-12}
    z, _ = integrate.quad(lambda x0: np.exp(log_joint(x0) - top), lo, hi, **opts)
    m1, _ = integrate.quad(lambda x0: x0 * np.exp(log_joint(x0) - top), lo, hi, **opts)
    return m1 / z


@pytest.mark.eq(131, 132, 133)
@given(mix=mixtures(), x_t=st.floats(-5, 5), alpha_bar_t=st.floats(0.01, 0.995))
@example(
    mix=(np.array([0.5, 0.5]), np.array([[-2.0], [2.0]]), np.array([0.1, 0.1])),
    x_t=0.0,
    alpha_bar_t=0.9,
)
def test_tweedie_against_quadrature_1d(mix, x_t, alpha_bar_t):
    weights, means, variances = mix
    want = _posterior_mean_by_quadrature(x_t, weights, means, variances, alpha_bar_t)
    kw = dict(weights=weights, means=means, variances=variances)
    score = tim.gaussian_mixture_score(
        x_t=_t([[x_t]]), **{k: _t(v) for k, v in kw.items()}, alpha_bar_t=alpha_bar_t
    )
    tweedie = tim.tweedie_mean(x_t=_t([[x_t]]), score=score, alpha_bar_t=alpha_bar_t)
    np.testing.assert_allclose(float(tweedie), np.sqrt(alpha_bar_t) * want, **tol.QUADRATURE_RATIO)
    # the x_0 prediction from the score (eq. (133)) is the posterior mean
    x0 = tim.x_0_from_score(x_t=_t([[x_t]]), score_hat=score, alpha_bar_t=alpha_bar_t)
    np.testing.assert_allclose(float(x0), want, rtol=1e-9, atol=1e-9 / np.sqrt(alpha_bar_t))
    post = ref.gaussian_mixture_posterior_mean(x_t=[[x_t]], **kw, alpha_bar_t=alpha_bar_t)
    np.testing.assert_allclose(float(post[0, 0]), want, **tol.QUADRATURE_RATIO)
    ref_score = ref.gaussian_mixture_score(x_t=[[x_t]], **kw, alpha_bar_t=alpha_bar_t)
    np.testing.assert_allclose(float(ref_score[0, 0]), float(score), rtol=1e-12, atol=1e-12)


@pytest.mark.eq(131, 132)
@pytest.mark.statistical
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tweedie_against_importance_sampling_2d(seed):
    """E[x_0 | x_t] by self-normalized importance sampling: x_0 from the prior, weights
    q(x_t | x_0); standard error by the delta method; |mc - exact| <= 4 se per coordinate."""
    rng = np.random.default_rng(seed)
    k, n = 3, 400_000
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 2, size=(k, 2))
    variances = rng.uniform(0.2, 1.5, size=k)
    ab = rng.uniform(0.2, 0.6)
    x_t = np.sqrt(ab) * means[rng.integers(k)] + rng.normal(size=2) * 0.8
    comp = rng.choice(k, size=n, p=weights)
    x0 = means[comp] + np.sqrt(variances[comp])[:, None] * rng.normal(size=(n, 2))
    log_w = -0.5 * np.sum((x_t - np.sqrt(ab) * x0) ** 2, axis=1) / (1 - ab)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mc = w @ x0
    se = np.sqrt(np.sum(w[:, None] ** 2 * (x0 - mc) ** 2, axis=0))
    score = tim.gaussian_mixture_score(
        x_t=_t(x_t), weights=_t(weights), means=_t(means), variances=_t(variances), alpha_bar_t=ab
    ).numpy()
    tweedie = (x_t + (1 - ab) * score) / np.sqrt(ab)
    assert np.all(np.abs(tweedie - mc) <= tol.MC_SIGMAS * se), (tweedie, mc, se)
    exact = ref.gaussian_mixture_posterior_mean(
        x_t=x_t, weights=weights, means=means, variances=variances, alpha_bar_t=ab
    )
    np.testing.assert_allclose(tweedie, exact, rtol=1e-12, atol=1e-12)


@pytest.mark.eq(131)
@pytest.mark.parametrize("device", DEVICES)
@given(mix=mixtures(dim=2), alpha_bar_t=alpha_bars, seed=st.integers(0, 2**16))
@example(mix=(np.array([1.0]), np.array([[0.0, 1.0]]), np.array([0.5])), alpha_bar_t=1.0, seed=0)
def test_mixture_score_is_autograd_of_log_density(device, mix, alpha_bar_t, seed):
    weights, means, variances = mix
    x_t = torch.tensor(
        np.random.default_rng(seed).normal(0, 3, size=(4, 2)), device=device, requires_grad=True
    )
    kw = {
        "weights": _t(weights, device=device),
        "means": _t(means, device=device),
        "variances": _t(variances, device=device),
    }
    logp = tim.gaussian_mixture_log_prob(x_t=x_t, **kw, alpha_bar_t=alpha_bar_t)
    (grad,) = torch.autograd.grad(logp.sum(), x_t)
    score = tim.gaussian_mixture_score(x_t=x_t.detach(), **kw, alpha_bar_t=alpha_bar_t)
    torch.testing.assert_close(score, grad, rtol=1e-10, atol=1e-10)
    # the log-density itself against torch.distributions (an independent implementation)
    a = alpha_bar_t**0.5
    c = alpha_bar_t * kw["variances"] + (1 - alpha_bar_t)
    dist = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=kw["weights"]),
        torch.distributions.Independent(
            torch.distributions.Normal(a * kw["means"], c.sqrt()[:, None].expand_as(kw["means"])), 1
        ),
    )
    torch.testing.assert_close(logp, dist.log_prob(x_t.detach()), rtol=1e-12, atol=1e-12)
    ref_logp = ref.gaussian_mixture_log_prob(
        x_t=x_t.detach().cpu().numpy(),
        weights=weights,
        means=means,
        variances=variances,
        alpha_bar_t=alpha_bar_t,
    )
    np.testing.assert_allclose(logp.detach().cpu().numpy(), ref_logp, rtol=1e-12, atol=1e-12)


@pytest.mark.eq(131, 132, 151)
def test_optimal_eps_denoiser_is_minus_scaled_score():
    """For Gaussian-mixture data E[eps | x_t] = -sqrt(1 - alpha_bar) score (eqs. (132), (151)
    averaged over the posterior): the eps conversion of the exact posterior mean."""
    rng = np.random.default_rng(3)
    weights, means, variances = np.array([0.2, 0.8]), rng.normal(size=(2, 3)), np.array([0.3, 1.2])
    x_t, ab = rng.normal(size=(5, 3)), np.array([0.01, 0.3, 0.5, 0.9, 0.999])[:, None]
    post = ref.gaussian_mixture_posterior_mean(
        x_t=x_t, weights=weights, means=means, variances=variances, alpha_bar_t=ab[:, 0]
    )
    score = ref.gaussian_mixture_score(
        x_t=x_t, weights=weights, means=means, variances=variances, alpha_bar_t=ab[:, 0]
    )
    np.testing.assert_allclose(
        ref.eps_from_x_0(x_t=x_t, x_0_hat=post, alpha_bar_t=ab),
        ref.eps_from_score(score_hat=score, alpha_bar_t=ab),
        rtol=1e-9,
        atol=1e-9,
    )


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.eq(115, 131, 151)
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: tim.x_0_from_eps(x_t=torch.zeros(2), eps_hat=torch.zeros(2)),
            TypeError,
            "exactly one",
        ),
        (
            lambda: tim.x_0_from_eps(
                x_t=torch.zeros(2), eps_hat=torch.zeros(2), alpha_bar_t=0.5, log_snr=0.0
            ),
            TypeError,
            "exactly one",
        ),
        (
            lambda: tim.eps_from_x_0(x_t=torch.zeros(2), x_0_hat=torch.zeros(2), alpha_bar_t=1.0),
            ValueError,
            r"alpha_bar_t must lie in \(0, 1\)",
        ),
        (
            lambda: tim.score_from_eps(eps_hat=torch.zeros(2), alpha_bar_t=0.0),
            ValueError,
            "alpha_bar_t",
        ),
        (
            lambda: tim.x_0_from_v(x_t=torch.zeros(3), v_hat=torch.zeros(2), alpha_bar_t=0.5),
            ValueError,
            "do not broadcast",
        ),
        (
            lambda: ref.x_0_from_eps(x_t=0.0, eps_hat=0.0, alpha_bar_t=1.5),
            ValueError,
            "alpha_bar_t",
        ),
        (
            lambda: tim.x_0_from_eps(x_t="a", eps_hat=torch.zeros(2), alpha_bar_t=0.5),
            TypeError,
            "x_t",
        ),
        (
            lambda: tim.gaussian_mixture_score(
                x_t=torch.zeros(1, 2),
                weights=torch.tensor([0.5, 0.6]),
                means=torch.zeros(2, 2),
                variances=torch.ones(2),
                alpha_bar_t=0.5,
            ),
            ValueError,
            "sum to 1",
        ),
        (
            lambda: ref.gaussian_mixture_score(
                x_t=np.zeros((1, 3)),
                weights=[1.0],
                means=np.zeros((1, 2)),
                variances=[1.0],
                alpha_bar_t=0.5,
            ),
            ValueError,
            "disagree",
        ),
        (
            lambda: ref.gaussian_mixture_score(
                x_t=np.zeros((1, 2)),
                weights=[1.0],
                means=np.zeros((1, 2)),
                variances=[-1.0],
                alpha_bar_t=0.5,
            ),
            ValueError,
            "variances must be > 0",
        ),
    ],
)
def test_bad_input_is_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()
