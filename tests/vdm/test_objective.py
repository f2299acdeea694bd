"""The Gaussian KL (eq. (86)), the denoising KL (eqs. (87)-(92)) and the objective in its x_0 form
(eqs. (94)-(99)).

Oracles: torch.distributions' KL (univariate, and multivariate for the sums over coordinates),
quadrature of the KL integrand (scipy.integrate), the generated float64 reference, and for the
x_0 form the general Gaussian KL of the two means and the SNR difference of eq. (108). The bound
assembled from these terms is tested in test_elbo.py."""

from __future__ import annotations

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
from tests.strategies import reals
from tests.vdm._helpers import F64_EPS, _both, _t, schedule_and_t

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
