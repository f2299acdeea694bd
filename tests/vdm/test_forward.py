"""q(x_t | x_0), eqs. (59)-(70): q_sample, q_mean and q_var, the closed form of eqs. (67)-(70).

Oracles: the generated float64 reference (torch on every device), the float32 result within ulps
of the reference at the rounded inputs, and a simulated chain (moments within 4 standard errors
and a KS test, with a power check). Bad input (to q_var and the Gaussian KL) is refused by name.
Every line of the derivation is checked in test_forward_lines.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import alpha_bars, reals, schedules
from tests.vdm._helpers import _t

f32 = np.float32


# --- q(x_t | x_0), eqs. (69)-(70) -------------------------------------------------------------


@pytest.mark.eq(69, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(x_0=reals, alpha_bar_t=alpha_bars, eps=st.floats(-6, 6))
@example(x_0=1.0, alpha_bar_t=1.0, eps=1.0)  # t = 0 limit: no noise at all
@example(x_0=1.0, alpha_bar_t=1e-12, eps=-1.0)  # t = T: pure noise
def test_q_sample_torch_matches_reference_float64(device, x_0, alpha_bar_t, eps):
    got = tim.q_sample(
        x_0=_t(x_0, torch.float64, device),
        alpha_bar_t=alpha_bar_t,
        eps=_t(eps, torch.float64, device),
    )
    want = ref.q_sample(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    np.testing.assert_allclose(got.cpu().numpy(), want, **tol.F64)
    np.testing.assert_allclose(
        tim.q_mean(x_0=_t(x_0, torch.float64, device), alpha_bar_t=alpha_bar_t).cpu().numpy(),
        ref.q_mean(x_0=x_0, alpha_bar_t=alpha_bar_t),
        **tol.F64,
    )


@pytest.mark.eq(69, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(x_0=reals, alpha_bar_t=alpha_bars, eps=st.floats(-6, 6))
def test_q_sample_float32_within_ulps(device, x_0, alpha_bar_t, eps):
    # reference evaluated at the float32-rounded inputs: only torch's arithmetic is measured
    x32, a32, e32 = f32(x_0), f32(alpha_bar_t), f32(eps)
    got = (
        tim.q_sample(
            x_0=_t(x32, torch.float32, device),
            alpha_bar_t=_t(a32, torch.float32, device),
            eps=_t(e32, torch.float32, device),
        )
        .cpu()
        .numpy()
    )
    signal = np.sqrt(np.float64(a32)) * np.float64(x32)
    noise = np.sqrt(1 - np.float64(a32)) * np.float64(e32)
    want = signal + noise
    # each term carries <= 2 roundings (sqrt, multiply), the sum one more: bound by magnitudes
    assert abs(float(got) - want) <= tol.F32_ULPS * tol.F32_EPS * (abs(signal) + abs(noise))


@pytest.mark.eq(70)
@given(alpha_bar_t=alpha_bars)
def test_q_var_is_one_minus_alpha_bar(alpha_bar_t):
    got = tim.q_var(alpha_bar_t=torch.tensor(alpha_bar_t, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), ref.q_var(alpha_bar_t=alpha_bar_t), **tol.F64)


@pytest.mark.eq(67, 68, 69, 70)
@pytest.mark.statistical
@pytest.mark.parametrize("T", [1, 2, 10, 200])
def test_q_marginal_matches_simulated_chain(T):
    """Run the chain x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps step by step (eq. (59))
    and compare with N(sqrt(alpha_bar_T) x_0, 1 - alpha_bar_T): moments within 4 standard
    errors, and a KS test. With n = 40000, KS detects a 2% error in the standard deviation
    with power > 0.99 (D ~ 0.008 vs critical value 0.0081 at alpha = 1e-3 ... checked below
    by the perturbed-variance control)."""
    rng = np.random.default_rng(T)
    alphas = 1 - np.linspace(1e-4, 0.05, T)
    alpha_bar = np.prod(alphas)
    n, x_0 = 40_000, 1.5
    x = np.full(n, x_0)
    for a in alphas:
        x = np.sqrt(a) * x + np.sqrt(1 - a) * rng.standard_normal(n)
    mean = ref.q_mean(x_0=x_0, alpha_bar_t=alpha_bar)
    var = ref.q_var(alpha_bar_t=alpha_bar)
    assert abs(x.mean() - mean) <= tol.MC_SIGMAS * np.sqrt(var / n)
    # Var of the sample variance of a Gaussian is 2 var^2 / (n - 1)
    assert abs(x.var(ddof=1) - var) <= tol.MC_SIGMAS * var * np.sqrt(2 / (n - 1))
    assert stats.kstest(x, stats.norm(mean, np.sqrt(var)).cdf).pvalue > 1e-3
    # control: the same test rejects a 5%-too-large standard deviation (power check)
    if T == 200:
        assert stats.kstest(x, stats.norm(mean, 1.05 * np.sqrt(var)).cdf).pvalue < 1e-3


@pytest.mark.eq(69, 70)
@given(alphas=schedules(max_T=4000))
def test_alpha_bar_of_generated_schedules_is_valid_input(alphas):
    alpha_bar = np.cumprod(alphas)
    assert np.all(alpha_bar > 0) and np.all(np.diff(alpha_bar) <= 0)
    assert np.all(ref.q_var(alpha_bar_t=alpha_bar) >= 0)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.eq(69, 70, 86)
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.q_var(alpha_bar_t=1.5), ValueError, r"alpha_bar_t must lie in \(0, 1\]"),
        (lambda m: m.q_var(alpha_bar_t=0.0), ValueError, "alpha_bar_t"),
        (lambda m: m.q_var(alpha_bar_t=float("nan")), ValueError, "alpha_bar_t must be finite"),
        (
            lambda m: m.kl_normal(mean_q=0.0, var_q=-1.0, mean_p=0.0, var_p=1.0),
            ValueError,
            "var_q must be > 0",
        ),
        (lambda m: m.kl_normal(mean_q="a", var_q=1.0, mean_p=0.0, var_p=1.0), TypeError, "mean_q"),
    ],
)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
def test_bad_input_is_refused_by_name(layer, call, error, message):
    with pytest.raises(error, match=message):
        call(layer)


@pytest.mark.eq(69)
def test_shape_mismatch_is_an_error_not_a_broadcast():
    x_0, eps = np.zeros((4, 3)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"x_0\(4, 3\).*eps\(4, 2\)"):
        ref.q_sample(x_0=x_0, alpha_bar_t=0.5, eps=eps)
    with pytest.raises(ValueError, match="do not broadcast"):
        tim.q_sample(
            x_0=torch.zeros(4, 3), alpha_bar_t=torch.full((4,), 0.5), eps=torch.zeros(4, 3)
        )
