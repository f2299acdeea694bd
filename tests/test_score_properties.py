"""Score section (eqs. (157)-(161)) as properties over the domain: udm.torch_impl.score vs
udm.reference.score vs an independent oracle, with the extremes drawn deliberately.

Oracles: scipy.spatial.distance / scipy.stats.multivariate_normal / scipy.special.logsumexp
(losses and mixture densities); autograd of torch.distributions log-densities (mixture scores,
the denoising target grad log N(x~; x, sigma^2 I)); 1-D quadrature of the convolution
(perturbed mixtures) and of beta(t) (VP alpha_bar); an Euler-Maruyama step of the Langevin SDE
(Langevin step); scipy.integrate.solve_ivp on the probability-flow ODE (RK4 sampler).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate, special, stats
from scipy.spatial import distance

import udm.reference.score as ref
import udm.torch_impl.score as tim
from tests import strategies as S
from tests import tolerances as tol

F64 = torch.float64
EPS64 = float(np.finfo(np.float64).eps)
# a sum/difference of O(10) rounded terms, relative to the sum of the terms' magnitudes
ULPS = 64

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _t(a):
    return torch.as_tensor(np.array(a), dtype=F64)  # a copy: broadcast views are read-only


def _arrays(draw, shape, lo=-1e3, hi=1e3):
    n = int(np.prod(shape))
    vals = draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n))
    return np.reshape(np.array(vals, dtype=float), shape)


# --- score-matching objectives, eqs. (157), (161) ----------------------------------------------------

sigmas_st = st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-3, 1e3]))


@st.composite
def loss_inputs(draw):
    b, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    x = _arrays(draw, (b, d), -10, 10)
    s_hat = _arrays(draw, (b, d))
    eps = _arrays(draw, (b, d), -8, 8)
    sigma = np.array([draw(sigmas_st) for _ in range(b)])[:, None]
    return x, s_hat, eps, sigma


def _dsm_target_by_autograd(x, eps, sigma):
    """grad_{x~} log N(x~; x, sigma^2 I) at x~ = x + sigma eps, autograd of torch.distributions."""
    x_t, sig = _t(x), _t(sigma)
    x_noisy = (x_t + sig * _t(eps)).requires_grad_(True)
    lp = torch.distributions.Normal(x_t, sig.expand_as(x_t)).log_prob(x_noisy).sum()
    (g,) = torch.autograd.grad(lp, x_noisy)
    return g.numpy()


@pytest.mark.eq(157)
@given(inp=loss_inputs())
def test_explicit_loss_is_squared_distance(inp):
    _, s_hat, score, _ = inp
    want = np.array([distance.sqeuclidean(a, b) for a, b in zip(s_hat, score, strict=True)])
    got_ref = ref.explicit_score_matching_loss(score_hat=s_hat, score=score)
    got_t = tim.explicit_score_matching_loss(score_hat=_t(s_hat), score=_t(score)).numpy()
    # a sum of squares of differences: ULPS of the sum of (|a| + |b|)^2
    bound = ULPS * EPS64 * ((np.abs(s_hat) + np.abs(score)) ** 2).sum(1)
    assert np.all(np.abs(got_ref - want) <= bound)
    np.testing.assert_allclose(got_t, got_ref, **tol.F64)


@pytest.mark.eq(157, 161)
@given(inp=loss_inputs())
@example(inp=(np.zeros((1, 1)), np.full((1, 1), 1e3), np.full((1, 1), -8.0), np.array([[1e-3]])))
def test_denoising_losses_vs_autograd_target(inp):
    """||s + eps / sigma||^2 (eq. (161)) is ||s - grad log N(x~; x, sigma^2 I)||^2 with the
    gradient by autograd; the lambda = sigma^2 weighted form is sigma^2 times it. The
    autograd target carries the rounding of x~ - x: delta = 4 ulps (|x| + |sigma eps|) / sigma^2
    per coordinate, so the loss error is at most sum 2 |s - target| delta + delta^2 + ULPS."""
    x, s_hat, eps, sigma = inp
    target = _dsm_target_by_autograd(x, eps, sigma)
    diff = s_hat - target
    want = (diff**2).sum(1)
    delta = 4 * EPS64 * (np.abs(x) + np.abs(sigma * eps)) / sigma**2 + 4 * EPS64 * np.abs(
        eps / sigma
    )
    bound = (2 * np.abs(diff) * delta + delta**2).sum(1) + ULPS * EPS64 * (
        (np.abs(s_hat) + np.abs(eps / sigma)) ** 2
    ).sum(1)
    got_ref = ref.denoising_score_matching_loss(score_hat=s_hat, eps=eps, sigma=sigma)
    assert np.all(np.abs(got_ref - want) <= bound), (got_ref, want, bound)
    got_t = tim.denoising_score_matching_loss(score_hat=_t(s_hat), eps=_t(eps), sigma=_t(sigma))
    np.testing.assert_allclose(got_t.numpy(), got_ref, **tol.F64)
    weighted_ref = ref.multi_noise_score_matching_loss(score_hat=s_hat, eps=eps, sigma=sigma)
    s2 = sigma[:, 0] ** 2
    assert np.all(np.abs(weighted_ref - s2 * want) <= s2 * bound + ULPS * EPS64 * s2 * want)
    weighted_t = tim.multi_noise_score_matching_loss(
        score_hat=_t(s_hat), eps=_t(eps), sigma=_t(sigma)
    )
    # (sigma s + eps)^2 vs (s + eps / sigma)^2 sigma^2: ULPS of the terms' magnitudes
    scale = ((np.abs(sigma * s_hat) + np.abs(eps)) ** 2).sum(1)
    assert np.all(np.abs(weighted_t.numpy() - weighted_ref) <= ULPS * EPS64 * scale)


# --- the Gaussian-mixture oracle, eqs. (159), (160) ---------------------------------------------------


@st.composite
def mixtures(draw):
    """K in 1..4 components in D in 1..3 dims; isotropic [K] or diagonal [K, D] variances from
    1e-2 to 1e2; weights from a seeded Dirichlet (down to ~1e-6); x up to 50 away."""
    k, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(k, draw(st.sampled_from([0.3, 1.0, 10.0]))))
    w = np.maximum(w, 1e-6)
    w = w / w.sum()
    means = _arrays(draw, (k, d), -10, 10)
    diag = draw(st.booleans())
    shape = (k, d) if diag else (k,)
    variances = np.exp(rng.uniform(np.log(1e-2), np.log(1e2), size=shape))
    x = _arrays(draw, (draw(st.integers(1, 5)), d), -50, 50)
    return w, means, variances, x


def _full_var(means, variances):
    return np.broadcast_to(variances[:, None] if variances.ndim == 1 else variances, means.shape)


def _td_mixture(w, means, variances):
    d = torch.distributions
    var = _t(_full_var(means, variances))
    comp = d.Independent(d.Normal(_t(means), var.sqrt()), 1)
    return d.MixtureSameFamily(d.Categorical(probs=_t(w)), comp)


@pytest.mark.eq(159)
@given(mix=mixtures())
def test_mixture_log_prob_vs_scipy(mix):
    w, means, variances, x = mix
    var = _full_var(means, variances)
    comps = np.stack(
        [
            stats.multivariate_normal(means[k], np.diag(var[k])).logpdf(x).reshape(len(x))
            for k in range(len(w))
        ],
        axis=-1,
    )
    want = special.logsumexp(np.log(w) + comps, axis=-1)
    # ULPS of the largest component log-density magnitude (logsumexp of rounded terms)
    bound = ULPS * EPS64 * (1 + np.abs(comps).max(-1) + np.abs(np.log(w)).max())
    got_ref = ref.gaussian_mixture_log_prob(x=x, weights=w, means=means, variances=variances)
    got_t = tim.gaussian_mixture_log_prob(
        x=_t(x), weights=_t(w), means=_t(means), variances=_t(variances)
    ).numpy()
    assert np.all(np.abs(got_ref - want) <= bound), (got_ref, want)
    assert np.all(np.abs(got_t - want) <= bound), (got_t, want)


@pytest.mark.eq(159)
@given(mix=mixtures())
@example(
    mix=(
        np.array([0.5, 0.5]),
        np.array([[-10.0], [10.0]]),
        np.array([1e-2, 1e-2]),
        np.array([[50.0], [-50.0], [0.0]]),
    )
)
def test_mixture_score_vs_autograd_of_torch_distributions(mix):
    """The exact mixture score in both layers vs autograd of MixtureSameFamily.log_prob, also
    where responsibilities underflow (x far from all modes, tiny variances) and at the
    midpoint between two equal modes (score 0)."""
    w, means, variances, x = mix
    xt = _t(x).requires_grad_(True)
    (want,) = torch.autograd.grad(_td_mixture(w, means, variances).log_prob(xt).sum(), xt)
    want = want.numpy()
    var = _full_var(means, variances)
    # each score is sum_k r_k (x - mu_k) / v_k: ULPS of max_k |x - mu_k| / v_k, times
    # (1 + L): the responsibilities r are a softmax of logits of magnitude up to L, each
    # rounded to ulps of L, so r carries a relative error ~ L ulps; 1e-300 for subnormals
    scale = (np.abs(x[:, None, :]) + np.abs(means)) / var
    big_l = np.abs(np.log(w)) + (
        (np.abs(x[:, None, :]) + np.abs(means)) ** 2 / (2 * var)
        + np.abs(0.5 * np.log(2 * np.pi * var))
    ).sum(-1)
    bound = ULPS * EPS64 * scale.max(1) * (1 + big_l.max(1))[:, None] + 1e-300
    got_ref = ref.gaussian_mixture_score(x=x, weights=w, means=means, variances=variances)
    got_t = tim.gaussian_mixture_score(
        x=_t(x), weights=_t(w), means=_t(means), variances=_t(variances)
    ).numpy()
    assert np.all(np.isfinite(got_ref)) and np.all(np.isfinite(got_t))
    assert np.all(np.abs(got_ref - want) <= bound), (got_ref, want, bound)
    assert np.all(np.abs(got_t - want) <= bound), (got_t, want, bound)


def _normal_pdf(x, m, v):
    return math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)


def _convolution(x, mean, var, scale, noise_var):
    """Density at x of scale * X + noise, X ~ N(mean, var), noise ~ N(0, noise_var), by
    quadrature over X (the window where both factors are non-negligible)."""
    sd = math.sqrt(var)
    centre, width = x / scale, math.sqrt(noise_var) / scale
    lo, hi = max(mean - 14 * sd, centre - 14 * width), min(mean + 14 * sd, centre + 14 * width)
    if lo >= hi:
        return 0.0
    pts = sorted({p for p in (mean, centre) if lo < p < hi})

    def f(u):
        return _normal_pdf(u, mean, var) * _normal_pdf(x, scale * u, noise_var)

    return integrate.quad(f, lo, hi, points=pts or None, epsabs=0, epsrel=1e-12, limit=200)[0]


@pytest.mark.eq(159, 160)
@given(
    mean=st.floats(-10, 10),
    var=st.floats(1e-3, 1e2),
    alpha_bar_t=st.one_of(st.floats(1e-3, 1.0), st.sampled_from([1e-3, 1 - 1e-3])),
    sigma=st.floats(3e-2, 30),
)
def test_perturbed_components_are_the_convolutions(mean, var, alpha_bar_t, sigma):
    """One component N(mean, var) under the VP process (scale sqrt(alpha_bar), noise
    1 - alpha_bar) and under additive N(0, sigma^2) noise: the perturbed component's density
    (scipy.stats.norm with the library's parameters) equals quadrature of the convolution
    at 5 points; torch and reference give the same parameters."""
    w, m, v = np.array([1.0]), np.array([[mean]]), np.array([var])
    _, vm, vv = ref.vp_perturbed_mixture(weights=w, means=m, variances=v, alpha_bar_t=alpha_bar_t)
    _, tm, tv = tim.vp_perturbed_mixture(
        weights=_t(w), means=_t(m), variances=_t(v), alpha_bar_t=_t(alpha_bar_t)
    )
    np.testing.assert_allclose(tm.numpy(), vm, **tol.F64)
    np.testing.assert_allclose(tv.numpy(), vv, **tol.F64)
    _, nm, nv = ref.noise_perturbed_mixture(weights=w, means=m, variances=v, sigma=sigma)
    _, tnm, tnv = tim.noise_perturbed_mixture(
        weights=_t(w), means=_t(m), variances=_t(v), sigma=_t(sigma)
    )
    np.testing.assert_allclose(tnm.numpy(), nm, **tol.F64)
    np.testing.assert_allclose(tnv.numpy(), nv, **tol.F64)
    for (mm, vvv), (scale, noise) in [
        ((vm[0, 0], vv[0, 0]), (math.sqrt(alpha_bar_t), 1 - alpha_bar_t)),
        ((nm[0, 0], nv[0, 0]), (1.0, sigma**2)),
    ]:
        if noise == 0:
            continue
        xs = mm + math.sqrt(vvv) * np.linspace(-3, 3, 5)
        got = stats.norm.pdf(xs, mm, math.sqrt(vvv))
        want = [_convolution(x, mean, var, scale, noise) for x in xs]
        np.testing.assert_allclose(got, want, **tol.F64_VS_QUADRATURE)


# --- Langevin dynamics, eq. (158) ------------------------------------------------------------------


@pytest.mark.eq(158)
@given(
    shape=S.batch_shapes,
    step_size=st.one_of(st.floats(1e-8, 1e2), st.sampled_from([1e-8, 1e2])),
    data=st.data(),
)
def test_langevin_step_is_an_euler_maruyama_step(shape, step_size, data):
    """Eq. (158) is one Euler-Maruyama step of dx = grad log p(x) dt + sqrt(2) dW with dt = c
    and dW = sqrt(c) eps (computed in that order here); torch equals reference."""
    x = _arrays(data.draw, shape)
    s = _arrays(data.draw, shape)
    e = _arrays(data.draw, shape, -8, 8)
    dw = math.sqrt(step_size) * e
    want = x + s * step_size + math.sqrt(2.0) * dw
    got_ref = ref.langevin_step(x=x, score=s, step_size=step_size, eps=e)
    got_t = tim.langevin_step(x=_t(x), score=_t(s), step_size=step_size, eps=_t(e)).numpy()
    bound = 8 * EPS64 * (np.abs(x) + np.abs(s * step_size) + np.abs(math.sqrt(2 * step_size) * e))
    bound = bound + 1e-300  # subnormal inputs carry no relative precision
    assert np.all(np.abs(got_ref - want) <= bound)
    assert np.all(np.abs(got_t - want) <= bound)


@pytest.mark.eq(158, 161)
@given(
    sigmas=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=8, unique=True).map(sorted),
    step_size=st.floats(1e-8, 1.0),
)
def test_annealed_step_sizes_torch_vs_reference_vs_ratio(sigmas, step_size):
    """alpha_i = step_size sigma_i^2 / sigma_1^2: the step at the smallest scale is step_size,
    alpha_i / alpha_j = (sigma_i / sigma_j)^2."""
    got_ref = ref.annealed_langevin_step_sizes(sigmas=sigmas, step_size=step_size)
    got_t = tim.annealed_langevin_step_sizes(sigmas=sigmas, step_size=step_size, like=_t(0.0))
    np.testing.assert_allclose(got_t.numpy(), got_ref, **tol.F64)
    sig = np.array(sigmas)
    np.testing.assert_allclose(got_ref[0], step_size, rtol=4 * EPS64)
    np.testing.assert_allclose(got_ref / got_ref[-1], (sig / sig[-1]) ** 2, rtol=8 * EPS64)


# --- the SDE view (after eq. (161)) ----------------------------------------------------------------


@pytest.mark.eq(161)
@given(t=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1e-6, 1.0])))
def test_vp_alpha_bar_is_exp_minus_integral_of_beta(t):
    integral = integrate.quad(lambda s: float(ref.vp_beta(t=s)), 0, t, epsabs=0, epsrel=1e-13)[0]
    want = math.exp(-integral)
    np.testing.assert_allclose(ref.vp_alpha_bar(t=t), want, **tol.F64_VS_QUADRATURE)
    np.testing.assert_allclose(tim.vp_alpha_bar(t=_t(t)).numpy(), want, **tol.F64_VS_QUADRATURE)
    np.testing.assert_allclose(tim.vp_beta(t=_t(t)).numpy(), ref.vp_beta(t=t), **tol.F64)



@pytest.mark.eq(161)
@pytest.mark.parametrize("t", [-0.1, 1.5, math.nan])
@pytest.mark.parametrize("name", ["vp_beta", "vp_alpha_bar"])
def test_vp_levels_refuse_t_outside_0_1_by_name(name, t):
    """The SDE runs on t in [0, 1]: beyond it both layers refuse t, naming it."""
    for call in (lambda: getattr(ref, name)(t=t), lambda: getattr(tim, name)(t=_t(t))):
        with pytest.raises(ValueError, match=r"\bt\b"):
            call()


W1, M1, V1 = np.array([0.3, 0.7]), np.array([[-1.0], [1.5]]), np.array([0.4, 0.6])


def _ref_vp_score(z, t):
    ab = float(ref.vp_alpha_bar(t=t))
    w, m, v = ref.vp_perturbed_mixture(weights=W1, means=M1, variances=V1, alpha_bar_t=ab)
    return ref.gaussian_mixture_score(x=z, weights=w, means=m, variances=v)


def _rk4_errors(t_end):
    x1 = np.linspace(-3, 3, 13)[:, None]

    def rhs(t, y):
        beta = float(ref.vp_beta(t=t))
        return (-0.5 * beta * y[:, None] - 0.5 * beta * _ref_vp_score(y[:, None], t))[:, 0]

    sol = integrate.solve_ivp(rhs, (1.0, t_end), x1[:, 0], method="DOP853", rtol=1e-12, atol=1e-12)
    exact = sol.y[:, -1]
    return [
        np.abs(
            ref.probability_flow_sample(score_fn=_ref_vp_score, x=x1, n_steps=n, t_end=t_end)[:, 0]
            - exact
        ).max()
        for n in (40, 80)
    ]


@pytest.mark.eq(159, 160, 161)
@pytest.mark.parametrize("t_end", [1e-3, 0.1, 0.5])
def test_probability_flow_rk4_converges_to_solve_ivp(t_end):
    """RK4 with 40 and 80 steps on dx/dt = -beta x / 2 - beta score / 2 (exact mixture score)
    vs scipy's DOP853 at rtol 1e-12, max over 13 starting points in [-3, 3]: fourth order, so
    the error falls ~16x when the steps double (measured 15.6-16.4; bound 12: a first- or
    second-order method, or a different ODE, fails), and is <= 1e-7 at 80 steps (measured
    <= 3e-8)."""
    e40, e80 = _rk4_errors(t_end)
    assert e80 <= 1e-7, e80
    assert e40 / e80 >= 12, (e40, e80)


@pytest.mark.eq(161)
@given(
    x=st.lists(st.floats(-5, 5), min_size=1, max_size=4),
    t_end=st.one_of(st.floats(1e-4, 0.9), st.sampled_from([1e-4, 0.9])),
    n_steps=st.integers(1, 12),
)
def test_probability_flow_torch_matches_reference_over_the_domain(x, t_end, n_steps):
    """The same method, classical RK4, written two ways: the reference steps through its
    Butcher tableau, torch writes the stages out. Their roundings differ, and the score is
    evaluated in a different order (torch's perturbed mixture vs the reference's): 1e-10
    relative leaves room for that, while a wrong stage weight or node moves x by far more."""
    x1 = np.array(x)[:, None]
    want = ref.probability_flow_sample(score_fn=_ref_vp_score, x=x1, n_steps=n_steps, t_end=t_end)
    w, m, v = _t(W1), _t(M1), _t(V1)
    got = tim.probability_flow_sample(
        score_fn=lambda z, t: tim.vp_mixture_score(x=z, t=t, weights=w, means=m, variances=v),
        x=_t(x1),
        n_steps=n_steps,
        t_end=t_end,
    ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.eq(159, 160, 161)
@given(
    mix=mixtures(),
    t=st.one_of(st.floats(1e-4, 1.0), st.sampled_from([1e-4, 1.0])),
)
def test_vp_mixture_score_vs_autograd_of_the_perturbed_density(mix, t):
    """torch's exact score of p_t vs autograd of MixtureSameFamily built here: each component
    N(mu, v) becomes N(sqrt(ab) mu, ab v + 1 - ab), ab = exp(-int_0^t beta) by quadrature."""
    w, means, variances, x = mix
    ab = math.exp(-integrate.quad(lambda s: 0.1 + s * 19.9, 0, t, epsabs=0, epsrel=1e-13)[0])
    var = _full_var(means, variances)
    pm, pv = math.sqrt(ab) * means, ab * var + (1 - ab)
    xt = _t(x).requires_grad_(True)
    (want,) = torch.autograd.grad(_td_mixture(w, pm, pv).log_prob(xt).sum(), xt)
    want = want.numpy()
    got = tim.vp_mixture_score(
        x=_t(x), t=_t(t), weights=_t(w), means=_t(means), variances=_t(variances)
    ).numpy()
    # as for the mixture score, plus the quadrature: 1e-13 relative in int beta (<= 10.05)
    # is <= 1e-12 relative in ab and the perturbed parameters, times the logit magnitude
    scale = (np.abs(x[:, None, :]) + np.abs(pm)) / pv
    big_l = np.abs(np.log(w)) + (
        (np.abs(x[:, None, :]) + np.abs(pm)) ** 2 / (2 * pv) + np.abs(0.5 * np.log(2 * np.pi * pv))
    ).sum(-1)
    rel = ULPS * EPS64 + 1e-12
    bound = rel * scale.max(1) * (1 + big_l.max(1))[:, None] + 1e-300
    assert np.all(np.abs(got - want) <= bound), (got, want, bound)
