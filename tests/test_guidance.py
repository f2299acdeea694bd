"""Guidance (eqs. (162)-(170)): torch vs reference vs independent oracles.

Oracles: torch.distributions (MixtureSameFamily) densities differentiated by autograd for
the exact score of the tilted density p(x) p(y | x)^gamma; quadrature-normalized tilted
densities for samplers (KS tests); the generated reference for the closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate, stats

import udm.reference.guidance as ref
import udm.reference.score as ref_score
import udm.torch_impl.guidance as tim
import udm.torch_impl.score as tim_score
from tests import tolerances as tol
from tests.devices import DEVICES

F64 = torch.float64
W = np.array([0.2, 0.3, 0.5])
M = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])
V = np.array([0.5, 0.8, 0.4])


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _t(a, device="cpu"):
    return torch.as_tensor(np.asarray(a), dtype=F64, device=device)


def _torch_distributions_mixture(w, m, v):
    d = torch.distributions
    comp = d.Independent(d.Normal(m, v.sqrt().unsqueeze(-1).expand_as(m)), 1)
    return d.MixtureSameFamily(d.Categorical(probs=w), comp), comp


def _tilted_score_oracle(x, y, gamma, w, m, v):
    """grad_x [log p(x) + gamma log p(y | x)] by autograd through torch.distributions."""
    mix, comp = _torch_distributions_mixture(w, m, v)
    x_ = x.detach().requires_grad_(True)
    log_px = mix.log_prob(x_)
    log_joint_y = torch.log(w[y]) + comp.log_prob(x_.unsqueeze(-2))[..., y]
    tilted = log_px + gamma * (log_joint_y - log_px)
    (g,) = torch.autograd.grad(tilted.sum(), x_)
    return g


def _classifier_grad_oracle(x, y, w, m, v):
    """grad_x log p(y | x) = grad_x [log p(x | y) + log p(y) - log p(x)] by autograd through
    torch.distributions (class y is component y)."""
    mix, comp = _torch_distributions_mixture(w, m, v)
    x_ = x.detach().requires_grad_(True)
    log_p_y_given_x = comp.log_prob(x_.unsqueeze(-2))[..., y] + torch.log(w[y]) - mix.log_prob(x_)
    (g,) = torch.autograd.grad(log_p_y_given_x.sum(), x_)
    return g


times = st.floats(1e-3, 1.0)
scales = st.floats(-2.0, 8.0)


@pytest.mark.eq(163, 164, 165, 166, 167, 168, 169, 170)
@pytest.mark.parametrize("device", DEVICES)
@given(gamma=scales, y=st.integers(0, 2), t=times, seed=st.integers(0, 2**16))
@example(gamma=0.0, y=0, t=1e-3, seed=0)
@example(gamma=1.0, y=2, t=0.5, seed=1)
def test_guidance_equals_score_of_tilted_density(device, gamma, y, t, seed):
    """For the VP-perturbed mixture at time t (eq. (160)), classifier guidance with the
    analytic classifier (eq. (166)) and classifier-free guidance (eq. (170)) both equal the
    exact score of p_t(x) p_t(y | x)^gamma (autograd through torch.distributions)."""
    x = _t(np.random.default_rng(seed).normal(scale=2.5, size=(6, 2)), device)
    w, m, v = tim_score.vp_perturbed_mixture(
        weights=_t(W, device),
        means=_t(M, device),
        variances=_t(V, device),
        alpha_bar_t=tim_score.vp_alpha_bar(t=_t(t, device)),
    )
    v = v[..., 0]  # isotropic components
    kw = {"weights": w, "means": m, "variances": v}
    score = tim_score.gaussian_mixture_score(x=x, **kw)
    cls_grad = tim.mixture_classifier_grad(x=x, y=y, **kw)
    cond = tim.mixture_conditional_score(x=x, y=y, **kw)
    oracle = _tilted_score_oracle(x, y, gamma, w, m, v)
    atol = 1e-10 * (1 + oracle.abs().max().item())
    cg = tim.classifier_guided_score(
        score=score, grad_log_classifier=cls_grad, guidance_scale=gamma
    )
    cfg = tim.cfg_score(score=score, score_cond=cond, guidance_scale=gamma)
    torch.testing.assert_close(cg, oracle, rtol=1e-9, atol=atol)
    torch.testing.assert_close(cfg, oracle, rtol=1e-9, atol=atol)
    # eq. (167): the implicit classifier gradient (conditional minus unconditional score, both
    # analytic) is grad_x log p(y | x), by autograd of log p(x | y) + log p(y) - log p(x)
    # through torch.distributions (no score formula involved)
    cls_oracle = _classifier_grad_oracle(x, y, w, m, v)
    atol_c = 1e-10 * (1 + cls_oracle.abs().max().item())
    implicit = tim.implicit_classifier_grad(score_cond=cond, score=score)
    torch.testing.assert_close(implicit, cls_oracle, rtol=1e-9, atol=atol_c)
    torch.testing.assert_close(cls_grad, cls_oracle, rtol=1e-9, atol=atol_c)
    implicit_ref = ref.implicit_classifier_grad(
        score_cond=cond.cpu().numpy(), score=score.cpu().numpy()
    )
    np.testing.assert_allclose(implicit_ref, cls_oracle.cpu().numpy(), rtol=1e-9, atol=atol_c)
    # power: the reversed difference (score - score_cond) is rejected wherever the oracle is
    # resolvably nonzero
    big = cls_oracle.abs() > 1e3 * atol_c
    if big.any():
        assert not torch.allclose((-implicit)[big], cls_oracle[big], rtol=1e-9, atol=atol_c)


@pytest.mark.eq(163, 164, 165)
@pytest.mark.parametrize("device", DEVICES)
def test_classifier_log_prob_and_grad_vs_torch_distributions(device):
    x = _t(np.random.default_rng(0).normal(scale=2, size=(7, 2)), device)
    w, m, v = _t(W, device), _t(M, device), _t(V, device)
    mix, comp = _torch_distributions_mixture(w, m, v)
    for y in range(3):
        want = torch.log(w[y]) + comp.log_prob(x.unsqueeze(-2))[..., y] - mix.log_prob(x)
        got = tim.mixture_class_log_prob(x=x, y=y, weights=w, means=m, variances=v)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            ref.mixture_class_log_prob(x=x.cpu().numpy(), y=y, weights=W, means=M, variances=V),
            want.cpu().numpy(),
            rtol=1e-12,
            atol=1e-12,
        )
        x_ = x.clone().requires_grad_(True)
        lp = tim.mixture_class_log_prob(x=x_, y=y, weights=w, means=m, variances=v)
        (g,) = torch.autograd.grad(lp.sum(), x_)
        got_g = tim.mixture_classifier_grad(x=x, y=y, weights=w, means=m, variances=v)
        torch.testing.assert_close(got_g, g, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            ref.mixture_classifier_grad(x=x.cpu().numpy(), y=y, weights=W, means=M, variances=V),
            got_g.cpu().numpy(),
            # a difference of two O(10) scores: absolute error a few ulps of the scores
            rtol=1e-12,
            atol=1e-13,
        )
    # per-sample labels
    ys = torch.tensor([0, 1, 2, 0, 1, 2, 0], device=device)
    got = tim.mixture_class_log_prob(x=x, y=ys, weights=w, means=m, variances=v)
    for i in range(7):
        one = tim.mixture_class_log_prob(x=x[i], y=int(ys[i]), weights=w, means=m, variances=v)
        torch.testing.assert_close(got[i], one)


@pytest.mark.eq(166, 167, 170)
@pytest.mark.parametrize("device", DEVICES)
@given(
    s=st.floats(-1e3, 1e3), c=st.floats(-1e3, 1e3), g=st.floats(-10, 10), gamma=st.floats(-5, 10)
)
def test_closed_forms_torch_match_generated_reference(device, s, c, g, gamma):
    args = {k: _t(val, device) for k, val in dict(s=s, c=c, g=g).items()}
    np.testing.assert_allclose(
        tim.cfg_score(score=args["s"], score_cond=args["c"], guidance_scale=gamma).cpu().numpy(),
        ref.cfg_score(score=s, score_cond=c, guidance_scale=gamma),
        rtol=1e-12,
        atol=1e-12 * (abs(s) + abs(c)) * (1 + abs(gamma)),
    )
    np.testing.assert_allclose(
        tim.classifier_guided_score(
            score=args["s"], grad_log_classifier=args["g"], guidance_scale=gamma
        )
        .cpu()
        .numpy(),
        ref.classifier_guided_score(score=s, grad_log_classifier=g, guidance_scale=gamma),
        **tol.F64,
    )
    np.testing.assert_allclose(
        tim.implicit_classifier_grad(score_cond=args["c"], score=args["s"]).cpu().numpy(),
        ref.implicit_classifier_grad(score_cond=c, score=s),
        **tol.F64,
    )


@pytest.mark.eq(166, 170)
@pytest.mark.parametrize("device", DEVICES)
@given(
    s=st.floats(-1e3, 1e3, width=32),
    c=st.floats(-1e3, 1e3, width=32),
    gamma=st.floats(-5, 10, width=32),
)
def test_guided_scores_float32_within_ulps(device, s, c, gamma):
    """float32 torch vs the float64 reference at the float32 inputs: s + gamma (c - s) has
    three roundings (difference, product, sum), each <= 2^-24 of its magnitude."""
    t32 = {
        k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in dict(s=s, c=c).items()
    }
    got = float(tim.cfg_score(score=t32["s"], score_cond=t32["c"], guidance_scale=gamma))
    want = float(ref.cfg_score(score=s, score_cond=c, guidance_scale=gamma))
    bound = tol.F32_ULPS * tol.F32_EPS * (abs(s) + abs(gamma) * (abs(c) + abs(s)))
    assert abs(got - want) <= bound
    got = float(
        tim.classifier_guided_score(
            score=t32["s"], grad_log_classifier=t32["c"], guidance_scale=gamma
        )
    )
    want = float(ref.classifier_guided_score(score=s, grad_log_classifier=c, guidance_scale=gamma))
    assert abs(got - want) <= tol.F32_ULPS * tol.F32_EPS * (abs(s) + abs(gamma * c))


@pytest.mark.eq(168, 169, 170)
@pytest.mark.parametrize("device", DEVICES)
@given(s=st.floats(-1e3, 1e3), c=st.floats(-1e3, 1e3))
def test_cfg_at_one_is_conditional_and_at_zero_unconditional(device, s, c):
    st_, ct = _t(s, device), _t(c, device)
    at0 = tim.cfg_score(score=st_, score_cond=ct, guidance_scale=0.0)
    at1 = tim.cfg_score(score=st_, score_cond=ct, guidance_scale=1.0)
    assert float(at0) == s  # s + 0 * (c - s) is exact
    assert abs(float(at1) - c) <= 2 * np.finfo(np.float64).eps * (abs(s) + abs(c))  # 2 roundings
    assert ref.cfg_score(score=s, score_cond=c, guidance_scale=0.0) == s
    np.testing.assert_allclose(ref.cfg_score(score=s, score_cond=c, guidance_scale=1.0), c)


@pytest.mark.eq(162, 166, 170)
def test_score_fn_wrappers_match_closed_forms():
    """classifier_guided_score_fn (autograd of the classifier) and cfg_score_fn agree with
    the closed-form guided scores at every time."""
    w, m, v = _t(W), _t(M), _t(V)
    y, gamma = 2, 3.0

    def perturbed(t):
        return tim_score.vp_perturbed_mixture(
            weights=w, means=m, variances=v, alpha_bar_t=tim_score.vp_alpha_bar(t=t)
        )

    def score_fn(x, t):
        return tim_score.vp_mixture_score(x=x, t=t, weights=w, means=m, variances=v)

    def cls_fn(x, t):
        pw, pm, pv = perturbed(t)
        return tim.mixture_class_log_prob(x=x, y=y, weights=pw, means=pm, variances=pv)

    def cond_fn(x, t):
        pw, pm, pv = perturbed(t)
        return tim.mixture_conditional_score(x=x, y=y, weights=pw, means=pm, variances=pv)

    cg = tim.classifier_guided_score_fn(
        score_fn=score_fn, classifier_log_prob_fn=cls_fn, guidance_scale=gamma
    )
    cfg = tim.cfg_score_fn(score_fn=score_fn, cond_score_fn=cond_fn, guidance_scale=gamma)
    x = _t(np.random.default_rng(1).normal(size=(5, 2)))
    for t in (0.01, 0.3, 1.0):
        tt = _t(t)
        pw, pm, pv = perturbed(tt)
        want = tim.classifier_guided_score(
            score=score_fn(x, tt),
            grad_log_classifier=tim.mixture_classifier_grad(
                x=x, y=y, weights=pw, means=pm, variances=pv
            ),
            guidance_scale=gamma,
        )
        torch.testing.assert_close(cg(x, tt), want, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(cfg(x, tt), want, rtol=1e-10, atol=1e-10)


@pytest.mark.eq(166, 170)
@pytest.mark.statistical
@pytest.mark.parametrize("gamma", [0.0, 1.0, 3.0])
def test_langevin_with_guided_score_samples_the_tilted_density(gamma):
    """1-D: Langevin dynamics (eq. (158)) with the CFG score samples p(x) p(y | x)^gamma / Z
    (Z and the CDF by quadrature); KS at alpha = 1e-3 with n = 3000. Power: the untilted
    (gamma = 0) law is rejected for gamma = 3, the gamma = 3 law for gamma = 0."""
    w1, m1, v1 = np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.array([0.5, 0.5])
    y = 1

    def log_tilted(u, g):
        comp = -((u[:, None] - m1[:, 0]) ** 2) / (2 * v1) - 0.5 * np.log(2 * np.pi * v1)
        joint = np.log(w1) + comp
        log_px = np.logaddexp(joint[:, 0], joint[:, 1])
        return log_px + g * (joint[:, y] - log_px)

    grid = np.linspace(-8, 8, 20001)

    def cdf_of(g):
        dens = np.exp(log_tilted(grid, g))
        cum = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
        return lambda u: np.interp(u, grid, cum / cum[-1])

    w, m, v = _t(w1), _t(m1), _t(v1)

    def score_fn(z):
        s = tim_score.gaussian_mixture_score(x=z, weights=w, means=m, variances=v)
        c = tim.mixture_conditional_score(x=z, y=y, weights=w, means=m, variances=v)
        return tim.cfg_score(score=s, score_cond=c, guidance_scale=gamma)

    n = 3000
    x0 = _t(np.random.default_rng(2).normal(size=(n, 1)))
    x = tim_score.langevin_sample(
        score_fn=score_fn,
        x=x0,
        step_size=0.01,
        n_steps=500,
        generator=torch.Generator().manual_seed(3),
    ).numpy()[:, 0]
    assert stats.kstest(x, cdf_of(gamma)).pvalue > 1e-3
    other = 3.0 if gamma == 0.0 else 0.0
    if gamma != 1.0:
        assert stats.kstest(x, cdf_of(other)).pvalue < 1e-3


@pytest.mark.eq(162, 170)
@pytest.mark.statistical
def test_conditional_reverse_sde_at_scale_one_samples_the_class():
    """The conditional sampler of eq. (162) driven by cfg_score_fn at gamma = 1 (the
    conditional score, eq. (170)): KS against class y's component at t_end (n = 2000)."""
    w1, m1, v1 = np.array([0.4, 0.6]), np.array([[-1.5], [1.5]]), np.array([0.3, 0.3])
    w, m, v = _t(w1), _t(m1), _t(v1)
    y, t_end = 0, 1e-3

    def score_fn(x, t):
        return tim_score.vp_mixture_score(x=x, t=t, weights=w, means=m, variances=v)

    def cond_fn(x, t):
        pw, pm, pv = tim_score.vp_perturbed_mixture(
            weights=w, means=m, variances=v, alpha_bar_t=tim_score.vp_alpha_bar(t=t)
        )
        return tim.mixture_conditional_score(x=x, y=y, weights=pw, means=pm, variances=pv)

    guided = tim.cfg_score_fn(score_fn=score_fn, cond_score_fn=cond_fn, guidance_scale=1.0)
    x = tim_score.reverse_sde_sample(
        score_fn=guided,
        x=_t(np.random.default_rng(4).normal(size=(2000, 1))),
        n_steps=400,
        t_end=t_end,
        generator=torch.Generator().manual_seed(5),
    ).numpy()[:, 0]
    ab = float(ref_score.vp_alpha_bar(t=t_end))
    law = stats.norm(np.sqrt(ab) * m1[y, 0], np.sqrt(ab * v1[y] + 1 - ab))
    assert stats.kstest(x, law.cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.norm(-law.mean(), law.std()).cdf).pvalue < 1e-3


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.eq(163, 166, 167, 170)
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: ref.cfg_score(score=0.0, score_cond=1.0, guidance_scale=float("nan")),
            ValueError,
            "guidance_scale must be finite",
        ),
        (
            lambda: tim.cfg_score(
                score=torch.zeros(2), score_cond=torch.ones(2), guidance_scale=float("nan")
            ),
            ValueError,
            "guidance_scale must be finite",
        ),
        (
            lambda: tim.classifier_guided_score(
                score=torch.zeros(2),
                grad_log_classifier=torch.ones(2),
                guidance_scale=torch.tensor(float("inf")),
            ),
            ValueError,
            "guidance_scale must be finite",
        ),
        (
            lambda: tim.cfg_score_fn(
                score_fn=None, cond_score_fn=None, guidance_scale=float("nan")
            ),
            ValueError,
            "guidance_scale",
        ),
        (
            lambda: tim.classifier_guided_score_fn(
                score_fn=None, classifier_log_prob_fn=None, guidance_scale=float("nan")
            ),
            ValueError,
            "guidance_scale",
        ),
        (
            lambda: tim.cfg_score(
                score=torch.zeros(3), score_cond=torch.ones(2), guidance_scale=1.0
            ),
            ValueError,
            "do not broadcast",
        ),
        (
            lambda: tim.mixture_class_log_prob(
                x=torch.zeros(1, 2), y=3, weights=_t(W), means=_t(M), variances=_t(V)
            ),
            ValueError,
            r"y must lie in 0\.\.2",
        ),
        (
            lambda: tim.mixture_class_log_prob(
                x=torch.zeros(1, 2),
                y=torch.tensor(0.5),
                weights=_t(W),
                means=_t(M),
                variances=_t(V),
            ),
            TypeError,
            "integer class labels",
        ),
        (
            lambda: ref.mixture_class_log_prob(
                x=np.zeros((1, 2)), y=-1, weights=W, means=M, variances=V
            ),
            ValueError,
            "y must lie in",
        ),
        (
            lambda: ref.mixture_conditional_score(
                x=np.zeros((1, 2)), y=1.0, weights=W, means=M, variances=V
            ),
            TypeError,
            "integer class labels",
        ),
    ],
)
def test_bad_input_is_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()
