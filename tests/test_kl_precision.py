"""Gaussian KL terms keep their relative accuracy when the KL is tiny (both layers, float64).

A KL between nearly equal Gaussians, or the prior term at alpha_bar_T ~ 1e-9, is a tiny
number assembled from O(1) terms. The paper's form (1/2)(log(var_p / var_q) - 1 + (var_q +
d^2) / var_p) cancels there and keeps only eps / KL of it; the derivations write the
evaluated form as (1/2)(expm1mx(log r) + d^2 / var_p), r = var_q / var_p, expm1mx(u) = e^u -
1 - u (derivations/_stable.py proves it equal to the paper's line; reference/_stable.py and
torch_impl/_stable.py evaluate it). Every value below is compared with a 60-digit mpmath
value at the same float64 inputs: relative error <= KL_RTOL, at tiny and at ordinary KLs.
`test_the_papers_form_as_written_misses_the_bound` shows the bound is one the old forms fail.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import udm.reference._stable as ref_stable
import udm.reference.elbo as ref_elbo
import udm.reference.interpretations as ref_interp
import udm.reference.vae as ref_vae
import udm.reference.vdm as ref_vdm
import udm.torch_impl._stable as tim_stable
import udm.torch_impl.elbo as tim_elbo
import udm.torch_impl.interpretations as tim_interp
import udm.torch_impl.vae as tim_vae
import udm.torch_impl.vdm as tim_vdm
from tests.devices import DEVICES

# A handful of roundings (log1p, a division, the series or expm1, two sums), each <= 2^-53
# relative, and no cancellation left: 1e-13 leaves a margin of ~200x over the measured
# worst case (4.7e-16 over the cases below).
KL_RTOL = 1e-13
DPS = 60
F64 = torch.float64

# the cosine schedule's alpha_bar_T at T = 1000 (beta_T clipped at 0.999): 2.4e-9
ALPHA_BAR_T_COSINE = float(ref_vdm.cosine_schedule(1000).alpha_bar_t[-1])


def _mp_kl(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) at 60 digits, from the paper's eq. (86)."""
    with mp.workdps(DPS):
        mq, vq, m_p, vp = (mp.mpf(float(v)) for v in (mean_q, var_q, mean_p, var_p))
        return (mp.log(vp / vq) - 1 + (vq + (mq - m_p) ** 2) / vp) / 2


def _rel(got, want) -> float:
    got, want = float(got), float(want)
    return abs(got - want) / abs(want) if want else abs(got)


# (mean_q, var_q, mean_p, var_p): nearly equal variances at three scales, equal variances with
# nearly equal means, both, and ordinary and extreme pairs
KL_CASES = [
    (0.0, 1.0 + 1e-8, 0.0, 1.0),
    (0.0, 1.0 - 2.0**-40, 0.0, 1.0),
    (0.0, 2e-5 * (1 + 1e-9), 0.0, 2e-5),
    (0.0, 3e7, 0.0, 3e7 * (1 - 1e-12)),
    (0.3, 1.0, 0.3 + 1e-7, 1.0),
    (1.0, 1.0, 0.999999997, 0.999999997),
    (0.25, 0.5 + 2.0**-45, 0.25 + 2.0**-30, 0.5),
    (0.5, 0.7, 0.0, 0.3),
    (-2.0, 1e-12, 0.0, 3.0),
    (0.0, 1e3, 1.0, 1e-3),
    (1e-3, 0.9, -1e-3, 1.1),
]


@pytest.mark.eq(86)
@pytest.mark.parametrize("case", KL_CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_kl_normal_is_accurate_at_tiny_and_ordinary_kls(case, device):
    mean_q, var_q, mean_p, var_p = case
    want = _mp_kl(*case)
    got_ref = ref_vdm.kl_normal(mean_q=mean_q, var_q=var_q, mean_p=mean_p, var_p=var_p)
    t = [torch.tensor(v, dtype=F64, device=device) for v in case]
    got_t = tim_vdm.kl_normal(mean_q=t[0], var_q=t[1], mean_p=t[2], var_p=t[3])
    assert _rel(got_ref, want) <= KL_RTOL, (float(want), float(got_ref))
    assert _rel(got_t.cpu(), want) <= KL_RTOL, (float(want), float(got_t))


@st.composite
def near_gaussians(draw):
    """Two Gaussians whose variances differ by a relative 1e-15..1e-1 (either sign) at a scale
    1e-6..1e6, and whose means differ by 0 or a tiny amount."""
    scale = 10.0 ** draw(st.floats(-6, 6))
    rel = draw(st.sampled_from([-1, 1])) * 10.0 ** draw(st.floats(-15, -1))
    mean_p = draw(st.floats(-3, 3))
    dm = draw(st.sampled_from([0.0, 1.0])) * 10.0 ** draw(st.floats(-12, -1)) * math.sqrt(scale)
    return mean_p + dm, scale * (1 + rel), mean_p, scale


@pytest.mark.eq(86)
@given(case=near_gaussians())
def test_kl_normal_of_nearly_equal_gaussians_vs_mpmath(case):
    want = _mp_kl(*case)
    got_ref = ref_vdm.kl_normal(mean_q=case[0], var_q=case[1], mean_p=case[2], var_p=case[3])
    t = [torch.tensor(v, dtype=F64) for v in case]
    got_t = tim_vdm.kl_normal(mean_q=t[0], var_q=t[1], mean_p=t[2], var_p=t[3])
    assert _rel(got_ref, want) <= KL_RTOL, (case, float(want), float(got_ref))
    assert _rel(got_t, want) <= KL_RTOL, (case, float(want), float(got_t))


PRIOR_CASES = [
    (x_0, ab)
    for ab in (ALPHA_BAR_T_COSINE, 1e-300, 1e-12, 4.0e-5, 0.3, 0.999)
    for x_0 in (0.0, 1e-6, 0.3, -2.0)
]


@pytest.mark.eq(58, 86)
@pytest.mark.parametrize(("x_0", "alpha_bar_t"), PRIOR_CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_prior_kl_term_is_accurate_at_tiny_alpha_bar(x_0, alpha_bar_t, device):
    """KL(q(x_T | x_0) || N(0, 1)) = KL(N(sqrt(ab) x_0, 1 - ab) || N(0, 1)), exact inputs:
    at the cosine schedule's alpha_bar_T it is ~1e-9 (x_0 != 0) or ~1.5e-18 (x_0 = 0)."""
    with mp.workdps(DPS):
        ab, x = mp.mpf(alpha_bar_t), mp.mpf(x_0)
        want = (ab * x**2 - ab - mp.log1p(-ab)) / 2
    for got in (
        ref_vdm.prior_kl_term(x_0=x_0, alpha_bar_t=alpha_bar_t),
        ref_vdm.elbo_prior_term(x_0=x_0, alpha_bar_t=alpha_bar_t),
        tim_vdm.prior_kl_term(
            x_0=torch.tensor(x_0, dtype=F64, device=device), alpha_bar_t=alpha_bar_t
        ).cpu(),
    ):
        assert _rel(got, want) <= KL_RTOL, (float(want), float(got))


@pytest.mark.eq(19, 20, 21)
@pytest.mark.parametrize(
    ("mean_q", "var_q"),
    [(0.0, 1 + 1e-9), (1e-8, 1.0), (1e-8, 1 - 1e-10), (0.0, 1 - 2.0**-50), (0.7, 2.5), (3.0, 1e-9)],
)
def test_vae_prior_kl_is_accurate_near_the_prior(mean_q, var_q):
    want = _mp_kl(mean_q, var_q, 0.0, 1.0)
    assert _rel(ref_vae.kl_standard_normal(mean_q=mean_q, var_q=var_q), want) <= KL_RTOL
    got = tim_vae.kl_standard_normal(
        mean_q=torch.tensor(mean_q, dtype=F64), var_q=torch.tensor(var_q, dtype=F64)
    )
    assert _rel(got, want) <= KL_RTOL, (float(want), float(got))


@pytest.mark.eq(15, 16)
@pytest.mark.parametrize(
    ("mean_q", "var_q"),
    [(0.125, 0.75 * (1 + 1e-9)), (0.125 + 1e-9, 0.75), (0.125, 0.75 * (1 - 1e-6)), (1.0, 0.1)],
)
def test_kl_to_posterior_is_accurate_near_the_posterior(mean_q, var_q):
    """w = 0.5, var_x = 0.75, x - b = 0.25: the posterior N(0.125, 0.75) is exact in float64
    (w^2 + var_x = 1), so the KL's inputs are exact and a tiny KL must stay accurate."""
    model = {"x_0": 0.5, "w": 0.5, "b": 0.25, "var_x": 0.75}
    want = _mp_kl(mean_q, var_q, 0.125, 0.75)
    got_ref = ref_elbo.kl_to_posterior(**model, mean_q=mean_q, var_q=var_q)
    got_t = tim_elbo.kl_to_posterior(
        **{
            k: torch.tensor(v, dtype=F64)
            for k, v in {**model, "mean_q": mean_q, "var_q": var_q}.items()
        }
    )
    assert _rel(got_ref, want) <= KL_RTOL, (float(want), float(got_ref))
    assert _rel(got_t, want) <= KL_RTOL, (float(want), float(got_t))


# (alpha_t, alpha_bar_prev) with 1 - alpha_bar_t from 1e-12 to 1: where alpha_bar_t is near 1
# the float64 product alpha_t alpha_bar_{t-1} rounds, and 1 - (that product) keeps only
# eps / (1 - alpha_bar_t) of relative accuracy (the 60-digit values use the exact inputs)
LOSS_CASES = [
    (1 - 1e-9, 1 - 3e-10),
    (1 - 2.0**-30, 1 - 3 * 2.0**-40),
    (0.9999, 0.99999),
    (1 - 1e-12, 0.999),
    (0.875, 0.625),
    (0.5, 2.0**-60),
]


@pytest.mark.eq(110, 148)
@pytest.mark.parametrize(("alpha_t", "alpha_bar_prev"), LOSS_CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_losses_keep_their_precision_where_alpha_bar_is_near_one(alpha_t, alpha_bar_prev, device):
    """The x_0 loss (eq. (110)) and the score loss and weight (eq. (148)) hold 1 - alpha_bar_t =
    1 - alpha_t alpha_bar_{t-1}: both layers form it without cancellation."""
    err, x_0, x_0_hat = 0.75, 0.5, 0.5 + 0.75
    with mp.workdps(DPS):
        a, abp = mp.mpf(alpha_t), mp.mpf(alpha_bar_prev)
        om = 1 - a * abp
        want = {
            "x0_loss": abp * (1 - a) / (2 * (1 - abp) * om) * mp.mpf(err) ** 2,
            "score_loss_weight": (1 - a) * om / (2 * a * (1 - abp)),
            "score_loss": (1 - a) * om / (2 * a * (1 - abp)) * mp.mpf(err) ** 2,
        }
    kw = {"alpha_t": alpha_t, "alpha_bar_prev": alpha_bar_prev}
    args = {
        "x0_loss": {"x_0": x_0, "x_0_hat": x_0_hat},
        "score_loss_weight": {},
        "score_loss": {"score": x_0, "score_hat": x_0_hat},
    }
    for name, value in want.items():
        got_ref = getattr(ref_interp, name)(**args[name], **kw)
        targs = {
            k: torch.tensor(v, dtype=F64, device=device) for k, v in {**args[name], **kw}.items()
        }
        got_t = getattr(tim_interp, name)(**targs).cpu()
        assert _rel(got_ref, value) <= KL_RTOL, (name, float(value), float(got_ref))
        assert _rel(got_t, value) <= KL_RTOL, (name, float(value), float(got_t))


@given(u=st.one_of(st.floats(-700, 700), st.floats(-1e-3, 1e-3)))
def test_expm1mx_and_log_ratio_vs_mpmath(u):
    """The two routines both layers build on, over their whole range (and near 0)."""
    with mp.workdps(DPS):
        want = mp.expm1(mp.mpf(u)) - mp.mpf(u)
    for got in (ref_stable.expm1mx(u), tim_stable.expm1mx(torch.tensor(u, dtype=F64))):
        assert _rel(got, want) <= 8 * 2.0**-52, (u, float(want), float(got))
    a, b = math.exp(u / 2), 1.0 + u / 4
    if b > 0:
        with mp.workdps(DPS):
            want = mp.log(mp.mpf(a) / mp.mpf(b))
        for got in (
            ref_stable.log_ratio(a, b),
            tim_stable.log_ratio(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)),
        ):
            assert abs(float(got) - float(want)) <= 8 * 2.0**-52 * abs(float(want)) + 1e-300


def test_the_papers_form_as_written_misses_the_bound():
    """The same cases with eq. (86) and the prior term as printed (what the reference
    generated before): they lose 1e-7 to 1 relative, so the bound above can fail."""
    paper = []
    for mq, vq, m_p, vp in KL_CASES[:4]:
        got = 0.5 * (np.log(vp / vq) - 1 + (vq + (mq - m_p) ** 2) / vp)
        paper.append(_rel(got, _mp_kl(mq, vq, m_p, vp)))
    ab = ALPHA_BAR_T_COSINE
    with mp.workdps(DPS):
        want = (mp.mpf(ab) * mp.mpf(0.3) ** 2 - mp.mpf(ab) - mp.log1p(-mp.mpf(ab))) / 2
    printed = 0.5 * ab * 0.3**2 - 0.5 * ab - 0.5 * np.log(1 - ab)
    paper.append(_rel(printed, want))
    assert min(paper) > 1e3 * KL_RTOL, paper
