"""The one Gaussian-mixture oracle per layer (`udm.reference._mixture`, `udm.torch_impl._mixture`).

Every mixture formula of score / interpretations / guidance (and the model's `data.mixture`
log-density) calls these kernels, so they are checked here directly: the NumPy kernels
against independent oracles (scipy.stats.multivariate_normal with logsumexp; the derivative
of a 50-digit mpmath log-density; Gaussian conditioning of the joint law of (x_0, x_t) with
full covariance matrices), and the torch kernels against the NumPy ones, function by
function, on every device.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from tests import tolerances as tol
from tests.devices import DEVICES
from udm.reference import _mixture as ref
from udm.torch_impl import _mixture as tim

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

KERNEL = {"rtol": 1e-12, "atol": 1e-12}  # two float64 evaluations of one formula


@st.composite
def mixtures(draw):
    """K in 1..4 components in D in 1..3 dims, diagonal variances 0.05..5, x [n, D]."""
    k, d, n = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.dirichlet(np.ones(k))
    weights = np.maximum(weights, 1e-3)
    weights /= weights.sum()
    means = rng.uniform(-3, 3, size=(k, d))
    variances = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=(k, d)))
    x = rng.uniform(-5, 5, size=(n, d))
    alpha_bar_t = rng.uniform(0.01, 0.99, size=n)
    return weights, means, variances, x, alpha_bar_t


def _component_logpdfs(x, means, variances):
    return np.stack(
        [
            np.atleast_1d(stats.multivariate_normal(m, np.diag(v)).logpdf(x))
            for m, v in zip(means, variances, strict=True)
        ],
        axis=-1,
    )


@pytest.mark.eq(159, 163, 164, 165)
@given(mix=mixtures())
def test_numpy_log_prob_and_posterior_vs_scipy(mix):
    weights, means, variances, x, _ = mix
    logits = np.log(weights) + _component_logpdfs(x, means, variances)
    np.testing.assert_allclose(ref.log_joint(x, weights, means, variances), logits, **KERNEL)
    want = special.logsumexp(logits, axis=-1)
    np.testing.assert_allclose(ref.log_prob(x, weights, means, variances), want, **KERNEL)
    np.testing.assert_allclose(
        ref.log_posterior(x, weights, means, variances), logits - want[:, None], **KERNEL
    )


def _mp_log_prob(point, weights, means, variances):
    total = mpmath.mpf(0)
    for w, m, v in zip(weights, means, variances, strict=True):
        log_n = sum(
            -((xi - mpmath.mpf(mi)) ** 2) / (2 * mpmath.mpf(vi))
            - mpmath.log(2 * mpmath.pi * vi) / 2
            for xi, mi, vi in zip(point, m, v, strict=True)
        )
        total += mpmath.mpf(w) * mpmath.exp(log_n)
    return mpmath.log(total)


@pytest.mark.eq(159)
@given(mix=mixtures())
def test_numpy_score_is_the_gradient_of_a_50_digit_log_density(mix):
    weights, means, variances, x, _ = mix
    got = ref.score(x, weights, means, variances)
    with mpmath.workdps(50):
        for i, point in enumerate(x):
            for j in range(x.shape[1]):

                def along(u, point=point, j=j):
                    p = [mpmath.mpf(float(c)) for c in point]
                    p[j] = u
                    return _mp_log_prob(p, weights, means, variances)

                want = float(mpmath.diff(along, mpmath.mpf(float(point[j]))))
                scale = float(np.max(np.abs(point[j] - means[:, j]) / variances[:, j]))
                assert abs(got[i, j] - want) <= 1e-12 * (1 + scale), (got[i, j], want)


@pytest.mark.eq(131, 132, 160)
@given(mix=mixtures())
def test_numpy_posterior_mean_by_gaussian_conditioning(mix):
    """E[x_0 | x_t] from the joint law of (x_0, x_t) per component, written with full
    covariance matrices: Cov(x_t) = ab V + (1 - ab) I, Cov(x_0, x_t) = sqrt(ab) V, and the
    component weights p(k | x_t) from scipy's density of x_t."""
    weights, means, variances, x, alpha_bar_t = mix
    got = ref.vp_posterior_mean(x, weights, means, variances, alpha_bar_t)
    for i, (x_t, ab) in enumerate(zip(x, alpha_bar_t, strict=True)):
        eye = np.eye(x.shape[1])
        log_w, cond = [], []
        for w, m, v in zip(weights, means, variances, strict=True):
            cov_t = ab * np.diag(v) + (1 - ab) * eye
            cross = np.sqrt(ab) * np.diag(v)
            log_w.append(np.log(w) + stats.multivariate_normal(np.sqrt(ab) * m, cov_t).logpdf(x_t))
            cond.append(m + cross @ np.linalg.solve(cov_t, x_t - np.sqrt(ab) * m))
        r = np.exp(np.array(log_w) - special.logsumexp(log_w))
        np.testing.assert_allclose(got[i], r @ np.array(cond), rtol=1e-10, atol=1e-10)
    # the perturbed components (eq. (160)) are the laws of x_t given k
    means_t, var_t = ref.vp_perturbed(means, variances, alpha_bar_t)
    np.testing.assert_allclose(means_t, np.sqrt(alpha_bar_t)[:, None, None] * means, **tol.F64)
    np.testing.assert_allclose(
        var_t, alpha_bar_t[:, None, None] * variances + 1 - alpha_bar_t[:, None, None], **tol.F64
    )


@pytest.mark.eq(131, 159, 160, 163)
@pytest.mark.parametrize("device", DEVICES)
@given(mix=mixtures(), batched=st.booleans())
def test_torch_kernels_match_numpy(device, mix, batched):
    """Every torch kernel against its NumPy twin, on [K, D] mixtures and on per-sample
    perturbed ones ([n, K, D], the guidance samplers' case)."""
    weights, means, variances, x, alpha_bar_t = mix

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)

    if batched:
        means, variances = ref.vp_perturbed(means, variances, alpha_bar_t)
        means, variances = np.ascontiguousarray(means), np.ascontiguousarray(variances)
    args_np, args_t = (x, weights, means, variances), tuple(map(t, (x, weights, means, variances)))
    for name in ("log_joint", "log_prob", "log_posterior", "score"):
        got = getattr(tim, name)(*args_t).cpu().numpy()
        np.testing.assert_allclose(got, getattr(ref, name)(*args_np), **KERNEL, err_msg=name)
    got = tim.component_scores(t(x), t(means), t(variances)).cpu().numpy()
    np.testing.assert_allclose(got, ref.component_scores(x, means, variances), **KERNEL)
    if batched:
        return
    ab = t(alpha_bar_t)
    for got, want in zip(
        tim.vp_perturbed(t(means), t(variances), ab, 1 - ab),
        ref.vp_perturbed(means, variances, alpha_bar_t),
        strict=True,
    ):
        np.testing.assert_allclose(got.cpu().numpy(), want, **KERNEL)
    got = tim.vp_posterior_mean(*args_t, ab, 1 - ab).cpu().numpy()
    np.testing.assert_allclose(
        got, ref.vp_posterior_mean(*args_np, alpha_bar_t), **KERNEL, err_msg="posterior mean"
    )


@pytest.mark.eq(159)
@pytest.mark.parametrize(
    ("variances", "message"),
    [([1.0, -1.0], "variances must be > 0"), ([[1.0, 1.0, 1.0]] * 2, r"\[K\] or \[K, D\]")],
)
def test_check_refuses_bad_mixtures_in_both_layers(variances, message):
    kw = {"weights": [0.5, 0.5], "means": np.zeros((2, 2)), "variances": np.array(variances)}
    with pytest.raises(ValueError, match=message):
        ref.check(**kw)
    with pytest.raises(ValueError, match=message):
        tim.check(**{k: torch.as_tensor(v, dtype=torch.float64) for k, v in kw.items()})
    with pytest.raises(ValueError, match="sum to 1"):
        ref.check(weights=[0.5, 0.6], means=np.zeros((2, 2)), variances=[1.0, 1.0])
