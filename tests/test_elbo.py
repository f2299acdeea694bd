"""Evidence lower bound (eqs. (1)-(16)): derivations, reference, torch vs independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from scipy import integrate, stats

import udm.reference.elbo as ref
import udm.torch_impl.elbo as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import encoders_q, linear_gaussian_models
from udm.derivations import elbo as der


def _t(value, dtype, device="cpu"):
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


def _post(model):
    return ref.posterior_mean(**model), ref.posterior_var(w=model["w"], var_x=model["var_x"])


# --- derivations ---------------------------------------------------------------------------


@pytest.mark.eq(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
@pytest.mark.parametrize(
    "name",
    [
        "evidence_marginal",
        "evidence_by_sampling",
        "evidence_chain_rule",
        "elbo_closed_form",
        "elbo_by_jensen",
        "kl_to_posterior",
        "elbo_by_kl_decomposition",
        "elbo_tight_at_posterior",
        "elbo_stationary_only_at_posterior",
        "elbo_concave",
        "true_posterior",
    ],
)
def test_derivation_steps_check(name):
    getattr(der, name)().verify()


@pytest.mark.eq(8, 16)
def test_jensen_step_refuses_a_wrong_gap():
    import sympy as sp

    d = der.elbo_by_jensen()
    bad = d.steps[-1]
    d.steps[-1] = type(bad)(bad.expr, "jensen", gap=bad.gap.expr + sp.Rational(1, 10), eq=8)
    assert not d.check()[-1].ok


# --- eqs. (1), (2): evidence and posterior vs quadrature / scipy ----------------------------


@pytest.mark.eq(1, 2)
@given(model=linear_gaussian_models())
@example(model={"x_0": 3.0, "w": 0.0, "b": 1.0, "var_x": 0.5})  # w = 0: posterior = prior
def test_evidence_and_posterior_match_scipy(model):
    x, w, b, s2 = model["x_0"], model["w"], model["b"], model["var_x"]
    # joint (x, z) is bivariate normal; condition with the textbook Schur complement
    cov = np.array([[w * w + s2, w], [w, 1.0]])
    np.testing.assert_allclose(
        ref.log_evidence(**model), stats.norm(b, np.sqrt(cov[0, 0])).logpdf(x), **tol.F64
    )
    mean, var = _post(model)
    np.testing.assert_allclose(mean, cov[1, 0] / cov[0, 0] * (x - b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(var, cov[1, 1] - cov[1, 0] ** 2 / cov[0, 0], **tol.F64)


@pytest.mark.eq(1, 2)
@pytest.mark.parametrize("z", [-2.0, 0.0, 0.7, 5.0])
def test_joint_over_posterior_is_evidence_for_every_z(z):
    model = {"x_0": 1.3, "w": 2.0, "b": -0.5, "var_x": 0.3}
    mean, var = _post(model)
    log_joint = stats.norm(0, 1).logpdf(z) + stats.norm(2.0 * z - 0.5, np.sqrt(0.3)).logpdf(1.3)
    got = log_joint - stats.norm(mean, np.sqrt(var)).logpdf(z)
    np.testing.assert_allclose(got, ref.log_evidence(**model), **tol.F64)


# --- eqs. (3)-(16): the bound, the decomposition, tightness -----------------------------------


@pytest.mark.eq(4, 8, 15, 16)
@given(model=linear_gaussian_models(), q=encoders_q)
def test_elbo_below_evidence_equality_iff_posterior(model, q):
    log_px = ref.log_evidence(**model)
    e = ref.elbo(**model, **q)
    assert e <= log_px + 1e-12 * (1 + abs(log_px))
    mean, var = _post(model)
    at_post = ref.elbo(**model, mean_q=mean, var_q=var)
    np.testing.assert_allclose(at_post, log_px, rtol=1e-10, atol=1e-10)
    # strict inequality away from the posterior, by at least the KL (computed directly)
    kl = tim.kl_to_posterior(**{k: _t(v, torch.float64) for k, v in {**model, **q}.items()})
    if float(kl) > 1e-6:
        assert e < log_px


@pytest.mark.eq(15)
@given(model=linear_gaussian_models(), q=encoders_q)
def test_log_evidence_minus_elbo_is_kl_by_torch_distributions(model, q):
    mean, var = _post(model)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(_t(q["mean_q"], torch.float64), q["var_q"] ** 0.5),
        torch.distributions.Normal(_t(mean, torch.float64), float(var) ** 0.5),
    ).item()
    gap = ref.log_evidence(**model) - ref.elbo(**model, **q)
    scale = abs(ref.log_evidence(**model)) + abs(ref.elbo(**model, **q))
    np.testing.assert_allclose(gap, kl, rtol=1e-9, atol=1e-13 * scale)
    np.testing.assert_allclose(ref.kl_to_posterior(**model, **q), kl, rtol=1e-9, atol=1e-12)


@pytest.mark.eq(3, 15)
@pytest.mark.parametrize(
    ("model", "q"),
    [
        ({"x_0": 1.3, "w": 2.0, "b": -0.5, "var_x": 0.3}, {"mean_q": 0.1, "var_q": 0.2}),
        ({"x_0": -4.0, "w": 0.5, "b": 1.0, "var_x": 2.0}, {"mean_q": -1.0, "var_q": 1.5}),
    ],
)
def test_elbo_and_kl_by_quadrature_without_closed_forms(model, q):
    """Everything from scipy densities: p(x) = int p(x, z) dz, ELBO = int q log(p / q)."""
    x, w, b, s2 = model["x_0"], model["w"], model["b"], model["var_x"]
    qd = stats.norm(q["mean_q"], np.sqrt(q["var_q"]))

    def log_joint(z):
        return stats.norm(0, 1).logpdf(z) + stats.norm(w * z + b, np.sqrt(s2)).logpdf(x)

    px, _ = integrate.quad(lambda z: np.exp(log_joint(z)), -30, 30, epsabs=0, epsrel=1e-12)
    lo, hi = qd.mean() - 15 * qd.std(), qd.mean() + 15 * qd.std()
    elbo_q, _ = integrate.quad(
        lambda z: qd.pdf(z) * (log_joint(z) - qd.logpdf(z)), lo, hi, epsabs=1e-13, epsrel=1e-12
    )
    kl_q, _ = integrate.quad(
        lambda z: qd.pdf(z) * (qd.logpdf(z) - log_joint(z) + np.log(px)),
        lo,
        hi,
        epsabs=1e-13,
        epsrel=1e-12,
    )
    np.testing.assert_allclose(ref.log_evidence(**model), np.log(px), **tol.F64_VS_QUADRATURE)
    np.testing.assert_allclose(ref.elbo(**model, **q), elbo_q, **tol.F64_VS_QUADRATURE)
    np.testing.assert_allclose(ref.kl_to_posterior(**model, **q), kl_q, **tol.F64_VS_QUADRATURE)


@pytest.mark.eq(15, 16)
def test_elbo_gradient_vanishes_at_posterior_by_autograd():
    model = {
        k: _t(v, torch.float64) for k, v in {"x_0": 0.8, "w": 1.5, "b": 0.1, "var_x": 0.4}.items()
    }
    mean = tim.posterior_mean(**model).clone().requires_grad_(True)
    var = tim.posterior_var(w=model["w"], var_x=model["var_x"]).clone().requires_grad_(True)
    g = torch.autograd.grad(tim.elbo(**model, mean_q=mean, var_q=var), (mean, var))
    assert max(abs(float(v)) for v in g) < 1e-12
    g_off = torch.autograd.grad(tim.elbo(**model, mean_q=mean + 0.1, var_q=var), (mean, var))
    assert abs(float(g_off[0])) > 1e-3


# --- torch vs reference ------------------------------------------------------------------------


@pytest.mark.eq(1, 2, 3, 15)
@pytest.mark.parametrize("device", DEVICES)
@given(model=linear_gaussian_models(), q=encoders_q)
def test_torch_matches_reference_float64(device, model, q):
    def t(d):
        return {k: _t(v, torch.float64, device) for k, v in d.items()}

    pairs = [
        (tim.log_evidence(**t(model)), ref.log_evidence(**model)),
        (tim.posterior_mean(**t(model)), ref.posterior_mean(**model)),
        (tim.elbo(**t({**model, **q})), ref.elbo(**model, **q)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        tim.posterior_var(w=_t(model["w"], torch.float64, device), var_x=model["var_x"]).cpu(),
        ref.posterior_var(w=model["w"], var_x=model["var_x"]),
        **tol.F64,
    )
    # torch avoids the reference's log(var_post / var_q) - 1 + ratio cancellation near KL = 0
    np.testing.assert_allclose(
        tim.kl_to_posterior(**t({**model, **q})).cpu().numpy(),
        ref.kl_to_posterior(**model, **q),
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.eq(3)
@pytest.mark.parametrize("device", DEVICES)
@given(model=linear_gaussian_models(), q=encoders_q)
def test_torch_elbo_float32_within_ulps(device, model, q):
    args = {k: np.float32(v) for k, v in {**model, **q}.items()}
    got = float(tim.elbo(**{k: _t(v, torch.float32, device) for k, v in args.items()}))
    want = ref.elbo(**{k: np.float64(v) for k, v in args.items()})
    x, w, b, s2, m, v = (float(args[k]) for k in ("x_0", "w", "b", "var_x", "mean_q", "var_q"))
    terms = [
        abs(np.log(s2)),
        ((x - w * m - b) ** 2 + w * w * v) / s2,
        m * m + v,
        abs(np.log(v)),
        2.0,
    ]
    assert abs(got - want) <= tol.F32_SUM_ULPS * tol.F32_EPS * max(terms)


# --- the Monte Carlo ELBO estimator --------------------------------------------------------------


@pytest.mark.eq(3, 7, 8)
@pytest.mark.statistical
@pytest.mark.parametrize("n_samples", [1, 16])
def test_mc_elbo_is_unbiased_and_variance_falls_as_one_over_n(n_samples):
    model = {"x_0": 1.3, "w": 2.0, "b": -0.5, "var_x": 0.3}
    q = {"mean_q": 0.1, "var_q": 0.2}
    exact = ref.elbo(**model, **q)
    g = torch.Generator().manual_seed(n_samples)
    reps = 20_000
    est = tim.elbo_monte_carlo(
        **{k: torch.full((reps,), v, dtype=torch.float64) for k, v in {**model, **q}.items()},
        n_samples=n_samples,
        generator=g,
    ).numpy()
    se = est.std(ddof=1) / np.sqrt(reps)
    assert abs(est.mean() - exact) <= tol.MC_SIGMAS * se
    # single-sample variance, by moments: Var_q[log p(x, z) - log q(z)] for this quadratic
    single = (
        tim.elbo_monte_carlo(
            **{k: torch.full((reps,), v, dtype=torch.float64) for k, v in {**model, **q}.items()},
            n_samples=1,
            generator=torch.Generator().manual_seed(99),
        )
        .numpy()
        .var(ddof=1)
    )
    ratio = est.var(ddof=1) * n_samples / single
    # sample-variance ratio of two independent Gaussian-ish samples: se ~ sqrt(4 / reps) (+kurtosis)
    assert abs(ratio - 1) <= tol.MC_SIGMAS * np.sqrt(8 / reps)


@pytest.mark.eq(3, 7, 8)
@pytest.mark.statistical
def test_mc_elbo_at_posterior_has_zero_variance():
    """At q = p(z | x), log p(x, z) - log q(z) = log p(x) for every z (eq. (2))."""
    model = {"x_0": 0.3, "w": -1.1, "b": 0.4, "var_x": 0.7}
    mean, var = _post(model)
    est = tim.elbo_monte_carlo(
        **{k: _t(v, torch.float64) for k, v in model.items()},
        mean_q=_t(mean, torch.float64),
        var_q=_t(var, torch.float64),
        n_samples=64,
        generator=torch.Generator().manual_seed(0),
    )
    np.testing.assert_allclose(float(est), ref.log_evidence(**model), rtol=1e-12)


# --- bad input -------------------------------------------------------------------------------------

_OK = {"x_0": 0.0, "w": 1.0, "b": 0.0, "var_x": 1.0, "mean_q": 0.0, "var_q": 1.0}


@pytest.mark.eq(1, 3, 15)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"var_q": -1.0}, ValueError, "var_q must be > 0"),
        ({"var_x": 0.0}, ValueError, "var_x must be > 0"),
        ({"x_0": float("nan")}, ValueError, "x_0 must be finite"),
        ({"w": "a"}, TypeError, "w"),
    ],
)
def test_bad_input_is_refused_by_name(layer, change, error, message):
    args = {**_OK, **change}
    with pytest.raises(error, match=message):
        layer.elbo(**args)
    with pytest.raises(error, match=message):
        layer.kl_to_posterior(**args)


@pytest.mark.eq(1, 3)
def test_shape_mismatch_and_n_samples_are_refused():
    with pytest.raises(ValueError, match="do not broadcast"):
        ref.log_evidence(x_0=np.zeros(3), w=np.zeros(2), b=0.0, var_x=1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        tim.elbo(**{**_OK, "x_0": torch.zeros(3), "mean_q": torch.zeros(2)})
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
            tim.elbo_monte_carlo(**_OK, n_samples=n)
