"""Variational autoencoders (eqs. (17)-(22)): KLs, reparameterization, the VAE objective,
and a linear VAE that reaches the probabilistic-PCA optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

import udm.reference.elbo as ref_elbo
import udm.reference.vae as ref
import udm.torch_impl.vae as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import encoders_q, linear_gaussian_models
from udm.derivations import vae as der


@pytest.mark.eq(17, 18, 19, 20, 21, 22)
@pytest.mark.parametrize(
    "name", ["vae_objective", "prior_matching_kl", "reparameterization", "monte_carlo_objective"]
)
def test_derivation_steps_check(name):
    getattr(der, name)().verify()


# --- prior-matching KL, eqs. (19)-(21) ----------------------------------------------------------


@pytest.mark.eq(19, 20, 21)
@pytest.mark.parametrize("device", DEVICES)
@given(q=encoders_q)
@example(q={"mean_q": 0.0, "var_q": 1.0})  # q = prior: KL = 0 exactly
@example(q={"mean_q": 0.0, "var_q": 1.0 + 1e-9})  # cancellation case
def test_kl_standard_normal_vs_torch_distributions(device, q):
    m, v = q["mean_q"], q["var_q"]
    mt = torch.tensor(m, dtype=torch.float64, device=device)
    got = tim.kl_standard_normal(
        mean_q=mt, var_q=torch.tensor(v, dtype=torch.float64, device=device)
    )
    got_log = tim.kl_standard_normal(
        mean_q=mt, log_var_q=torch.tensor(math.log(v), dtype=torch.float64, device=device)
    )
    oracle = torch.distributions.kl_divergence(
        torch.distributions.Normal(mt, v**0.5), torch.distributions.Normal(0.0 * mt, 1.0)
    )
    atol = 1e-15 * (1 + abs(math.log(v)))
    torch.testing.assert_close(got, oracle, rtol=1e-12, atol=atol)
    torch.testing.assert_close(got_log, oracle, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(
        ref.kl_standard_normal(mean_q=m, var_q=v), oracle.item(), rtol=1e-9, atol=1e-12
    )
    assert got.item() >= 0


@pytest.mark.eq(19, 21)
@pytest.mark.statistical
def test_kl_standard_normal_vs_monte_carlo():
    rng = np.random.default_rng(0)
    m, v, n = 0.7, 0.3, 200_000
    z = m + np.sqrt(v) * rng.standard_normal(n)
    terms = stats.norm(m, np.sqrt(v)).logpdf(z) - stats.norm(0, 1).logpdf(z)
    exact = ref.kl_standard_normal(mean_q=m, var_q=v)
    assert abs(terms.mean() - exact) <= tol.MC_SIGMAS * terms.std(ddof=1) / np.sqrt(n)


@pytest.mark.eq(19, 22)
@given(k=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_full_covariance_kl_vs_torch_multivariate_normal(k, seed):
    rng = np.random.default_rng(seed)
    a, c = rng.normal(size=(k, k)), rng.normal(size=(k, k))
    cov_q, cov_p = a @ a.T + 0.1 * np.eye(k), c @ c.T + 0.1 * np.eye(k)
    mq, mp = rng.normal(size=k), rng.normal(size=k)
    mvn = torch.distributions.MultivariateNormal
    want = torch.distributions.kl_divergence(
        mvn(torch.tensor(mq), torch.tensor(cov_q)), mvn(torch.tensor(mp), torch.tensor(cov_p))
    ).item()
    got = ref.kl_gaussians_full(mean_q=mq, cov_q=cov_q, mean_p=mp, cov_p=cov_p)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    # diagonal case against N(0, I): the sum of the generated per-coordinate KLs
    vq = np.diag(cov_q)
    np.testing.assert_allclose(
        ref.kl_gaussians_full(mean_q=mq, cov_q=np.diag(vq), mean_p=np.zeros(k), cov_p=np.eye(k)),
        ref.kl_standard_normal(mean_q=mq, var_q=vq).sum(),
        rtol=1e-11,
        atol=1e-13,
    )


@pytest.mark.eq(19, 22)
def test_full_covariance_kl_refuses_bad_covariances():
    with pytest.raises(ValueError, match="cov_q must be positive definite"):
        ref.kl_gaussians_full(
            mean_q=np.zeros(2), cov_q=-np.eye(2), mean_p=np.zeros(2), cov_p=np.eye(2)
        )
    with pytest.raises(ValueError, match="cov_p must be symmetric"):
        ref.kl_gaussians_full(
            mean_q=np.zeros(2),
            cov_q=np.eye(2),
            mean_p=np.zeros(2),
            cov_p=np.array([[1, 0.5], [0, 1]]),
        )
    with pytest.raises(ValueError, match="mean_p has last dimension"):
        ref.kl_gaussians_full(
            mean_q=np.zeros(2), cov_q=np.eye(2), mean_p=np.zeros(3), cov_p=np.eye(2)
        )


# --- reparameterization and the objective, eqs. (17)-(22) ---------------------------------------


@pytest.mark.eq(20, 22)
@pytest.mark.parametrize("device", DEVICES)
@given(q=encoders_q, e=st.floats(-6, 6))
def test_reparameterize_torch_vs_reference(device, q, e):
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=device)  # noqa: E731
    got = tim.reparameterize(mean_q=t(q["mean_q"]), var_q=t(q["var_q"]), eps=t(e))
    got_log = tim.reparameterize(mean_q=t(q["mean_q"]), log_var_q=t(math.log(q["var_q"])), eps=t(e))
    want = ref.reparameterize(**q, eps=e)
    scale = abs(q["mean_q"]) + math.sqrt(q["var_q"]) * abs(e)
    assert abs(got.item() - want) <= 1e-15 * scale + 1e-300
    assert abs(got_log.item() - want) <= 4e-16 * 8 * scale + 1e-300


@pytest.mark.eq(19)
@given(model=linear_gaussian_models(), q=encoders_q)
def test_objective_splits_into_reconstruction_minus_prior_matching(model, q):
    total = ref.reconstruction_term(**model, **q) - ref.kl_standard_normal(**q)
    np.testing.assert_allclose(total, ref_elbo.elbo(**model, **q), rtol=1e-12, atol=1e-12)


@pytest.mark.eq(19, 22)
@pytest.mark.statistical
@pytest.mark.parametrize("kl", ["analytic", "mc"])
def test_vae_objective_unbiased_for_linear_decoder(kl):
    """Vector linear decoder: the MC objective averages to the closed-form ELBO (eq. (19))."""
    rng = np.random.default_rng(1)
    d, k, B = 3, 2, 4
    w, b, var_x = rng.normal(size=(d, k)), rng.normal(size=d), 0.4
    x = rng.normal(size=(B, d))
    mean_q, var_q = rng.normal(size=(B, k)), rng.uniform(0.2, 1.5, size=(B, k))
    exact = ref.linear_vae_elbo(x_0=x, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    W = torch.tensor(w)
    reps = 4000
    out = tim.gaussian_vae_elbo(
        x_0=torch.tensor(x).repeat(reps, 1),
        mean_q=torch.tensor(mean_q).repeat(reps, 1),
        log_var_q=torch.tensor(np.log(var_q)).repeat(reps, 1),
        decoder=lambda z: z @ W.T + torch.tensor(b),
        log_var_x=math.log(var_x),
        n_samples=2,
        kl=kl,
        generator=torch.Generator().manual_seed(3),
    )
    est = out.elbo.reshape(reps, B).numpy()
    se = est.std(0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(est.mean(0) - exact) <= tol.MC_SIGMAS * se)
    if kl == "analytic":
        np.testing.assert_allclose(
            out.prior_matching[:B].numpy(),
            ref.kl_standard_normal(mean_q=mean_q, var_q=var_q).sum(-1),
            rtol=1e-12,
        )


@pytest.mark.eq(19, 22)
def test_linear_vae_elbo_reduces_to_generated_scalar_form():
    args = {"x_0": 0.7, "w": 1.3, "b": -0.2, "var_x": 0.5, "mean_q": 0.1, "var_q": 0.3}
    got = ref.linear_vae_elbo(
        x_0=[[0.7]], w=[[1.3]], b=[-0.2], var_x=0.5, mean_q=[[0.1]], var_q=[[0.3]]
    )
    np.testing.assert_allclose(got, ref_elbo.elbo(**args), **tol.F64)


# --- the linear VAE reaches the pPCA optimum --------------------------------------------------


def _ppca_data(n=500, d=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, k))
    return rng.normal(size=(n, k)) @ w.T + 0.5 * rng.normal(size=(n, d)) + 1.0


@pytest.mark.eq(19, 22)
def test_analytic_optimum_elbo_equals_ppca_log_likelihood():
    x = _ppca_data()
    opt = ref.linear_vae_optimum(x_0=x, latent_dim=2)
    ll = ref.ppca_log_likelihood(x_0=x, w=opt["w"], b=opt["b"], var_x=opt["var_x"])
    np.testing.assert_allclose(opt["elbo"], ll, rtol=1e-10)
    # the pPCA log-likelihood is scipy's multivariate normal log-density
    cov = opt["w"] @ opt["w"].T + opt["var_x"] * np.eye(5)
    np.testing.assert_allclose(ll, stats.multivariate_normal(opt["b"], cov).logpdf(x), rtol=1e-10)
    # it is the maximum likelihood: perturbing the parameters only lowers it
    for dw in (0.05, -0.05):
        worse = ref.ppca_log_likelihood(
            x_0=x, w=opt["w"] * (1 + dw), b=opt["b"], var_x=opt["var_x"]
        )
        assert worse.mean() < ll.mean()


@pytest.mark.eq(19, 20, 21, 22)
@pytest.mark.statistical
def test_linear_vae_training_reaches_ppca_optimum(one_thread):
    x = _ppca_data()
    target = ref.linear_vae_optimum(x_0=x, latent_dim=2)["elbo"].mean()
    torch.manual_seed(0)
    model = tim.LinearVAE(5, 2).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    X, g = torch.tensor(x), torch.Generator().manual_seed(1)
    for _ in range(400):
        opt.zero_grad()
        (-model(X, generator=g).elbo.mean()).backward()
        opt.step()
    with torch.no_grad():
        mean_q, log_var_q = model.encode(X)
        params = {
            "w": model.decoder.weight.numpy(),
            "b": model.decoder.bias.numpy(),
            "var_x": float(model.log_var_x.exp()),
        }
        elbo = ref.linear_vae_elbo(
            x_0=x, **params, mean_q=mean_q.numpy(), var_q=log_var_q.exp().numpy()
        )
        ll = ref.ppca_log_likelihood(x_0=x, **params)
    assert np.all(elbo <= ll + 1e-9)  # the ELBO never exceeds the model's own log-likelihood
    assert ll.mean() <= target + 1e-9  # nor the maximum likelihood
    assert elbo.mean() >= target - tol.LINEAR_VAE_NATS


@pytest.mark.eq(19, 20, 21, 22)
def test_mlp_vae_trains(one_thread):
    x = torch.tensor(_ppca_data(n=256), dtype=torch.float32)
    torch.manual_seed(0)
    model = tim.MLPVAE(5, 2, hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        start = model(x, n_samples=8, generator=g).elbo.mean().item()
    for _ in range(300):
        opt.zero_grad()
        (-model(x, generator=g).elbo.mean()).backward()
        opt.step()
    with torch.no_grad():
        end = model(x, n_samples=8, generator=g).elbo.mean().item()
    assert end > start + 3.0
    assert end < ref.linear_vae_optimum(x_0=x.double().numpy(), latent_dim=2)["elbo"].mean() + 0.2


# --- float32 and bad input ----------------------------------------------------------------------


@pytest.mark.eq(19, 20, 21)
@pytest.mark.parametrize("device", DEVICES)
@given(q=encoders_q)
def test_kl_float32_within_ulps(device, q):
    m, v = np.float32(q["mean_q"]), np.float32(q["var_q"])
    got = tim.kl_standard_normal(
        mean_q=torch.tensor(m, device=device), var_q=torch.tensor(v, device=device)
    ).item()
    want = ref.kl_standard_normal(mean_q=float(m), var_q=float(v))
    scale = float(m) ** 2 + float(v) + abs(math.log(float(v))) + 1
    assert abs(got - want) <= tol.F32_SUM_ULPS * tol.F32_EPS * scale


@pytest.mark.eq(19, 22)
def test_bad_input_is_refused():
    x, mq, lv = torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, 2)
    call = dict(
        x_0=x,
        mean_q=mq,
        log_var_q=lv,
        decoder=lambda z: z.new_zeros(*z.shape[:-1], 3),
        log_var_x=0.0,
    )
    assert tim.gaussian_vae_elbo(**call).elbo.shape == (4,)
    for n in (0, -2, 2.0):
        with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
            tim.gaussian_vae_elbo(**call, n_samples=n)
    with pytest.raises(ValueError, match="kl must be"):
        tim.gaussian_vae_elbo(**call, kl="exact")
    with pytest.raises(ValueError, match="log_var_q"):
        tim.gaussian_vae_elbo(**{**call, "log_var_q": torch.zeros(4, 3)})
    with pytest.raises(ValueError, match="decoder returned"):
        tim.gaussian_vae_elbo(**{**call, "decoder": lambda z: z})
    with pytest.raises(ValueError, match="var_q must be > 0"):
        tim.kl_standard_normal(mean_q=0.0, var_q=-1.0)
    with pytest.raises(ValueError, match="var_q must be > 0"):
        ref.kl_standard_normal(mean_q=0.0, var_q=-1.0)
    with pytest.raises(ValueError, match="exactly one"):
        tim.kl_standard_normal(mean_q=0.0, var_q=1.0, log_var_q=0.0)
    with pytest.raises(ValueError, match="latent_dim"):
        ref.linear_vae_optimum(x_0=np.zeros((10, 3)), latent_dim=3)
    with pytest.raises(ValueError, match=r"x_0 \[N, d\] and w \[d, k\]"):
        ref.ppca_log_likelihood(x_0=np.zeros((10, 3)), w=np.zeros((2, 1)), b=np.zeros(3), var_x=1.0)
