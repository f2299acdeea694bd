"""Hierarchical VAEs (eqs. (23)-(29)): the two-level linear-Gaussian chain against scipy, and
the Markovian HVAE ELBO estimator against the generated closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import udm.reference.hvae as ref
import udm.torch_impl.hvae as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from udm.derivations import hvae as der

MODEL = {"x_0": 0.4, "w_1": 1.2, "b_1": 0.3, "var_1": 0.5, "w_2": -0.7, "b_2": 0.2, "var_2": 0.8}
Q = {"mean_q1": 0.1, "var_q1": 0.4, "a_2": 0.3, "c_2": -0.1, "var_q2": 0.6}

models = st.fixed_dictionaries(
    {
        "x_0": st.floats(-5, 5),
        "w_1": st.floats(-3, 3),
        "b_1": st.floats(-2, 2),
        "var_1": st.floats(1e-2, 10),
        "w_2": st.floats(-3, 3),
        "b_2": st.floats(-2, 2),
        "var_2": st.floats(1e-2, 10),
    }
)
encoders = st.fixed_dictionaries(
    {
        "mean_q1": st.floats(-5, 5),
        "var_q1": st.floats(1e-2, 10),
        "a_2": st.floats(-3, 3),
        "c_2": st.floats(-2, 2),
        "var_q2": st.floats(1e-2, 10),
    }
)


def _joint_and_posterior(m):
    """Scipy objects: the trivariate Gaussian (x, z_1, z_2) and p(z_1, z_2 | x) by conditioning."""
    v1 = m["w_2"] ** 2 + m["var_2"]
    mean = np.array([m["w_1"] * m["b_2"] + m["b_1"], m["b_2"], 0.0])
    cov = np.array(
        [
            [m["w_1"] ** 2 * v1 + m["var_1"], m["w_1"] * v1, m["w_1"] * m["w_2"]],
            [m["w_1"] * v1, v1, m["w_2"]],
            [m["w_1"] * m["w_2"], m["w_2"], 1.0],
        ]
    )
    s = cov[1:, 0] / cov[0, 0]
    post_mean = mean[1:] + s * (m["x_0"] - mean[0])
    post_cov = cov[1:, 1:] - np.outer(cov[1:, 0], cov[0, 1:]) / cov[0, 0]
    return mean, cov, post_mean, post_cov


def _q_moments(q):
    mean = np.array([q["mean_q1"], q["a_2"] * q["mean_q1"] + q["c_2"]])
    cov = np.array(
        [
            [q["var_q1"], q["a_2"] * q["var_q1"]],
            [q["a_2"] * q["var_q1"], q["a_2"] ** 2 * q["var_q1"] + q["var_q2"]],
        ]
    )
    return mean, cov


def _linear_chain(model, q, dtype=torch.float64):
    def const(v, like):
        return torch.full_like(like, v, dtype=dtype)

    encoders = [
        lambda x: (const(q["mean_q1"], x), const(math.log(q["var_q1"]), x)),
        lambda z1: (q["a_2"] * z1 + q["c_2"], const(math.log(q["var_q2"]), z1)),
    ]
    decoders = [
        lambda z1: (model["w_1"] * z1 + model["b_1"], const(math.log(model["var_1"]), z1)),
        lambda z2: (model["w_2"] * z2 + model["b_2"], const(math.log(model["var_2"]), z2)),
    ]
    return encoders, decoders


@pytest.mark.eq(23, 24, 25, 26, 27, 28, 29)
@pytest.mark.parametrize(
    "name", ["markov_factorizations", "hvae_evidence", "hvae_elbo_by_jensen", "hvae_elbo_markov"]
)
def test_derivation_steps_check(name):
    getattr(der, name)().verify()


@pytest.mark.eq(25, 28)
@given(model=models, q=encoders)
def test_evidence_bound_and_gap_against_scipy(model, q):
    mean, cov, post_mean, post_cov = _joint_and_posterior(model)
    log_px = stats.norm(mean[0], np.sqrt(cov[0, 0])).logpdf(model["x_0"])
    np.testing.assert_allclose(ref.log_evidence(**model), log_px, **tol.F64)
    elbo = ref.hvae_elbo(**model, **q)
    assert elbo <= log_px + 1e-12 * (1 + abs(log_px))
    # gap = KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)), by torch.distributions
    qm, qc = _q_moments(q)
    mvn = torch.distributions.MultivariateNormal
    kl = torch.distributions.kl_divergence(
        mvn(torch.tensor(qm), torch.tensor(qc)),
        mvn(torch.tensor(post_mean), torch.tensor(post_cov)),
    ).item()
    np.testing.assert_allclose(log_px - elbo, kl, rtol=1e-7, atol=1e-9 * (1 + abs(log_px)))
    np.testing.assert_allclose(ref.posterior_kl(**model, **q), kl, rtol=1e-7, atol=1e-9)


@pytest.mark.eq(28)
def test_elbo_is_tight_when_q_is_the_true_posterior():
    """The Markov encoder can represent p(z_1, z_2 | x) exactly: a_2, c_2, var_q2 from
    conditioning z_2 on z_1 under the posterior."""
    _, _, pm, pc = _joint_and_posterior(MODEL)
    a_2 = pc[1, 0] / pc[0, 0]
    q = {
        "mean_q1": pm[0],
        "var_q1": pc[0, 0],
        "a_2": a_2,
        "c_2": pm[1] - a_2 * pm[0],
        "var_q2": pc[1, 1] - a_2 * pc[1, 0],
    }
    np.testing.assert_allclose(ref.hvae_elbo(**MODEL, **q), ref.log_evidence(**MODEL), rtol=1e-12)


@pytest.mark.eq(23, 24, 29)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_estimator_log_weight_matches_scipy_densities(device, dtype):
    """With given noise, one estimator sample is log p(x, z) - log q(z | x) of scipy's
    multivariate Gaussians (eqs. (23), (24): factorized vs joint densities)."""
    rng = np.random.default_rng(0)
    e1, e2 = rng.standard_normal((1, 1, 1)), rng.standard_normal((1, 1, 1))
    encoders, decoders = _linear_chain(MODEL, Q, dtype)
    got = tim.markov_hvae_elbo(
        x_0=torch.tensor([[MODEL["x_0"]]], dtype=dtype, device=device),
        encoders=encoders,
        decoders=decoders,
        eps=[torch.tensor(e, dtype=dtype, device=device) for e in (e1, e2)],
    ).item()
    z1 = Q["mean_q1"] + math.sqrt(Q["var_q1"]) * e1.item()
    z2 = Q["a_2"] * z1 + Q["c_2"] + math.sqrt(Q["var_q2"]) * e2.item()
    mean, cov, _, _ = _joint_and_posterior(MODEL)
    qm, qc = _q_moments(Q)
    want = stats.multivariate_normal(mean, cov).logpdf(
        [MODEL["x_0"], z1, z2]
    ) - stats.multivariate_normal(qm, qc).logpdf([z1, z2])
    rtol = 1e-12 if dtype == torch.float64 else tol.F32_SUM_ULPS * tol.F32_EPS
    assert abs(got - want) <= rtol * (1 + abs(want))


@pytest.mark.eq(28, 29)
@pytest.mark.statistical
@pytest.mark.parametrize("n_samples", [1, 8])
def test_estimator_is_unbiased(n_samples):
    reps = 20_000
    encoders, decoders = _linear_chain(MODEL, Q)
    est = tim.markov_hvae_elbo(
        x_0=torch.full((reps, 1), MODEL["x_0"], dtype=torch.float64),
        encoders=encoders,
        decoders=decoders,
        n_samples=n_samples,
        generator=torch.Generator().manual_seed(n_samples),
    ).numpy()
    exact = ref.hvae_elbo(**MODEL, **Q)
    assert abs(est.mean() - exact) <= tol.MC_SIGMAS * est.std(ddof=1) / np.sqrt(reps)


@pytest.mark.eq(28, 29)
def test_bad_input_is_refused():
    encoders, decoders = _linear_chain(MODEL, Q)
    x = torch.zeros(2, 1, dtype=torch.float64)
    for n in (0, -1, 1.0):
        with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
            tim.markov_hvae_elbo(x_0=x, encoders=encoders, decoders=decoders, n_samples=n)
    with pytest.raises(ValueError, match="need T >= 1 encoders and T decoders"):
        tim.markov_hvae_elbo(x_0=x, encoders=encoders, decoders=decoders[:1])
    with pytest.raises(ValueError, match=r"eps\[0\] has shape"):
        tim.markov_hvae_elbo(
            x_0=x, encoders=encoders, decoders=decoders, eps=[torch.zeros(1, 3, 1)] * 2
        )
    with pytest.raises(ValueError, match="var_q1 must be > 0"):
        ref.hvae_elbo(**MODEL, **{**Q, "var_q1": -1.0})
