"""Samplers (torch_impl/sampling.py) against diffusers, improved-diffusion's semantics, the
NumPy reference and the paper's ancestral step."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import udm.reference.sampling as RS
import udm.torch_impl.sampling as S
from udm.reference._generated.vdm import mu_q as ref_mu_q
from udm.torch_impl import interpretations as I
from udm.torch_impl import vdm as V

T = 1000


def _diffusers():
    return pytest.importorskip("diffusers")


# --- the timestep grid -----------------------------------------------------------------------


@pytest.mark.eq("zt_snr.spacing")
@pytest.mark.parametrize("spacing", S.SPACINGS)
def test_grid_is_diffusers_grid_for_every_k(spacing, one_thread):
    """DDIMScheduler and DDPMScheduler list the same timesteps for every k in 1..T (T = 1000);
    for trailing, diffusers' np.arange adds a k+1-th timestep -1 for some k: we stop at k."""
    diffusers = _diffusers()
    schedulers = [
        diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing),
        diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing=spacing),
    ]
    extra = set()
    for k in range(1, T + 1):
        ours = S.timestep_grid(T, k, spacing).tolist()
        assert ours == RS.timestep_grid(T, k, spacing).tolist(), k
        for scheduler in schedulers:
            scheduler.set_timesteps(k)
            theirs = scheduler.timesteps.tolist()
            if len(theirs) == k + 1:
                assert spacing == "trailing" and theirs[-1] == -1, (k, theirs[-3:])
                extra.add(k)
                theirs = theirs[:k]
            assert ours == theirs, (spacing, k)
    if spacing == "trailing":
        assert len(extra) == 62 and 61 in extra  # diffusers 0.42: 62 of 1000 k give k + 1
    else:
        assert not extra


@pytest.mark.eq("zt_snr.spacing")
def test_linspace_grid_is_the_formula():
    """round(i (T - 1) / (k - 1)) half to even: exact wherever i (T - 1) / (k - 1) is not a
    .5 tie; at a tie the float64 value decides (as in numpy and diffusers), within 1/2."""
    ties_flipped = set()
    for k in range(1, T + 1):
        grid = S.timestep_grid(T, k).tolist()[::-1]
        exact = RS.linspace_grid_exact(T, k)[::-1]
        assert len(grid) == k and grid == sorted(grid) and grid[0] == 0
        assert k == 1 or grid[-1] == T - 1
        for i, (g, e) in enumerate(zip(grid, exact, strict=True)):
            value = Fraction(i * (T - 1), max(k - 1, 1))
            if (2 * value).denominator == 1 and (2 * value).numerator % 2 == 1:  # a .5 tie
                assert abs(g - value) == Fraction(1, 2)
                ties_flipped.add(k) if g != e else None
            else:
                assert g == e, (k, i)
        assert len(set(grid)) == k  # k <= T distinct steps
    assert len(ties_flipped) == 92  # float64 puts some ties on the other side (k = 27, ...)


@pytest.mark.eq("zt_snr.spacing")
def test_grid_examples_and_refusals():
    assert S.timestep_grid(T, 1).tolist() == [0]
    assert S.timestep_grid(T, 2).tolist() == [999, 0]
    assert S.timestep_grid(10, 4).tolist() == [9, 6, 3, 0]
    assert S.timestep_grid(10, 3, "leading", steps_offset=1).tolist() == [7, 4, 1]
    assert S.timestep_grid(10, 3, "trailing").tolist() == [9, 6, 2]
    for bad in ((T, 0), (T, T + 1), (0, 1), (T, 2.0)):
        with pytest.raises(ValueError):
            S.timestep_grid(*bad)
    with pytest.raises(ValueError, match="spacing"):
        S.timestep_grid(T, 5, "even")


# --- improved-diffusion's respacing ----------------------------------------------------------


@pytest.mark.eq("iddpm.respace")
def test_space_timesteps_semantics():
    # the docstring example of improved-diffusion: 300 steps in three sections of 100
    kept = S.space_timesteps(300, [10, 15, 20])
    assert len(kept) == 45 and kept[:3] == [0, 11, 22] and kept[10] == 100 and kept[-1] == 299
    assert S.space_timesteps(300, "10,15,20") == kept
    assert S.space_timesteps(T, "ddim50") == list(range(0, T, 20))
    with pytest.raises(ValueError):
        S.space_timesteps(T, "ddim999")  # no integer stride gives 999 of 1000 steps
    with pytest.raises(ValueError):
        S.space_timesteps(10, [11])
    # the float accumulation moves .5 ties: differs from the linspace grid for 278 k
    differs = [
        k
        for k in range(1, T + 1)
        if S.space_timesteps(T, [k]) != sorted(S.timestep_grid(T, k).tolist())
    ]
    assert len(differs) == 278 and differs[0] == 21
    assert 499 in S.space_timesteps(T, [21]) and 500 in S.timestep_grid(T, 21).tolist()


@pytest.mark.eq("iddpm.respace")
def test_respace_keeps_alpha_bar():
    beta = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - beta, 0)
    full = S.respace(alpha_bar=alpha_bar, timesteps=range(T))
    torch.testing.assert_close(full["beta"], beta, rtol=1e-12, atol=0)
    kept = S.space_timesteps(T, [50])
    sub = S.respace(alpha_bar=alpha_bar, timesteps=kept)
    assert sub["timestep_map"].tolist() == kept
    torch.testing.assert_close(
        torch.cumprod(1 - sub["beta"], 0), alpha_bar[kept], rtol=1e-13, atol=0
    )
    # improved-diffusion's loop: beta_i = 1 - alpha_bar_{S_i} / alpha_bar_{S_{i-1}} in float64
    last, betas = 1.0, []
    for i, ab in enumerate(alpha_bar.tolist()):
        if i in set(kept):
            betas.append(1 - ab / last)
            last = ab
    np.testing.assert_allclose(sub["beta"].numpy(), betas, rtol=1e-12)


# --- DDIM ------------------------------------------------------------------------------------


def _linear_log_alpha_bar():
    beta = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumsum(torch.log1p(-beta), 0)  # index t - 1


@pytest.mark.eq(84, 85, "ddim.12", "ddim.16", "ddim.eta1")
def test_ddim_eta_one_on_stride_one_is_the_ancestral_step():
    """eta = 1 between consecutive steps: DDIM's mean is mu_q(x_t, x_0_hat) (eq. (84)) and its
    variance sigma_q^2(t) (eq. (85)), whenever eps_hat is the noise that x_0_hat implies."""
    log_ab = _linear_log_alpha_bar()
    lab_t, lab_s = log_ab[1:], log_ab[:-1]  # t = 2..T, s = t - 1
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn(T - 1, generator=gen, dtype=torch.float64)
    x_0_hat = torch.randn(T - 1, generator=gen, dtype=torch.float64)
    eps_hat = I.eps_from_x_0(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=lab_t.exp())
    mean = S.ddim_step(
        x_0_hat=x_0_hat,
        eps_hat=eps_hat,
        log_alpha_bar_t=lab_t,
        log_alpha_bar_s=lab_s,
        eta=1.0,
        noise=torch.zeros_like(x_t),  # the mean
    )
    var = S.ddim_variance(eta=1.0, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s)
    post = V.posterior_coefficients(log_alpha_bar_t=lab_t, log_alpha_bar_prev=lab_s)
    torch.testing.assert_close(var, post["var_q"], rtol=1e-12, atol=0)
    torch.testing.assert_close(
        mean, post["coef_x_t"] * x_t + post["coef_x_0"] * x_0_hat, rtol=1e-10, atol=1e-12
    )
    alpha_t = (lab_t - lab_s).exp().numpy()
    expected = ref_mu_q(
        x_t=x_t.numpy(),
        x_0=x_0_hat.numpy(),
        alpha_t=alpha_t,
        alpha_bar_t=lab_t.exp().numpy(),
        alpha_bar_prev=lab_s.exp().numpy(),
    )
    np.testing.assert_allclose(mean.numpy(), expected, rtol=1e-9, atol=1e-11)
    noise = torch.randn(T - 1, generator=gen, dtype=torch.float64)
    sample = S.ddim_step(
        x_0_hat=x_0_hat,
        eps_hat=eps_hat,
        log_alpha_bar_t=lab_t,
        log_alpha_bar_s=lab_s,
        eta=1.0,
        noise=noise,
    )
    ancestral = S.ancestral_step(
        x_t=x_t, x_0_hat=x_0_hat, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s, noise=noise
    )
    torch.testing.assert_close(sample, ancestral, rtol=1e-9, atol=1e-11)


@pytest.mark.eq("ddim.12", "ddim.16")
def test_ddim_step_matches_the_reference():
    gen = np.random.default_rng(1)
    n = 200
    ab_t = gen.uniform(0.01, 0.98, n)
    ab_s = ab_t + (1 - ab_t) * gen.uniform(0.01, 1.0, n) * 0.999
    eta = np.concatenate([np.zeros(20), gen.uniform(0, 1, n - 40), np.ones(20)])
    x0, e_hat, e = gen.normal(size=(3, n))
    ref = RS.ddim_step(
        x_0_hat=x0, eps_hat=e_hat, eps=e, eta=eta, alpha_bar_t=ab_t, alpha_bar_s=ab_s
    )
    t = torch.from_numpy
    ours = S.ddim_step(
        x_0_hat=t(x0),
        eps_hat=t(e_hat),
        log_alpha_bar_t=t(np.log(ab_t)),
        log_alpha_bar_s=t(np.log(ab_s)),
        eta=t(eta),
        noise=t(e),
    )
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-12)
    # float32 data with float64 levels, as the model calls it
    ours32 = S.ddim_step(
        x_0_hat=t(x0).float(),
        eps_hat=t(e_hat).float(),
        log_alpha_bar_t=t(np.log(ab_t)),
        log_alpha_bar_s=t(np.log(ab_s)),
        eta=t(eta),
        noise=t(e).float(),
    )
    assert ours32.dtype == torch.float32
    np.testing.assert_allclose(ours32.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.eq("ddim.12", "ddim.lemma1", "ddim.7")
@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_ddim_keeps_the_marginals_monte_carlo(eta, one_thread):
    """With the true x_0 (q_sigma of ddim.7) on a strided grid, x_s ~ N(sqrt(ab_s) x_0,
    1 - ab_s) for every eta (Lemma 1): sample mean and variance within 5 standard errors."""
    log_ab = _linear_log_alpha_bar()
    grid = S.timestep_grid(T, 10).tolist()  # noisiest first
    n, x_0 = 200_000, 0.7
    gen = torch.Generator().manual_seed(2)
    lab = log_ab[grid[0]]
    x = lab.mul(0.5).exp() * x_0 + (-torch.expm1(lab)).sqrt() * torch.randn(
        n, generator=gen, dtype=torch.float64
    )
    for t, s in itertools.pairwise(grid):
        eps_hat = I.eps_from_x_0(
            x_t=x, x_0_hat=torch.full_like(x, x_0), alpha_bar_t=log_ab[t].exp()
        )
        noise = torch.randn(n, generator=gen, dtype=torch.float64)
        x = S.ddim_step(
            x_0_hat=torch.full_like(x, x_0),
            eps_hat=eps_hat,
            log_alpha_bar_t=log_ab[t],
            log_alpha_bar_s=log_ab[s],
            eta=eta,
            noise=noise,
        )
        var = -math.expm1(log_ab[s].item())
        mean = math.exp(0.5 * log_ab[s].item()) * x_0
        assert abs(x.mean().item() - mean) < 5 * math.sqrt(var / n)
        assert abs(x.var().item() - var) < 5 * var * math.sqrt(2 / n)


@pytest.mark.eq("ddim.12")
def test_ddim_to_the_data_returns_the_prediction_and_needs_noise_when_eta_positive():
    x_0_hat, eps_hat = torch.tensor([0.3, -1.0]), torch.tensor([1.0, 2.0])
    lab = torch.tensor(-2.0, dtype=torch.float64)
    zero = torch.tensor(0.0, dtype=torch.float64)
    out = S.ddim_step(
        x_0_hat=x_0_hat,
        eps_hat=eps_hat,
        log_alpha_bar_t=lab,
        log_alpha_bar_s=zero,
        eta=1.0,
        noise=torch.ones(2),
    )
    torch.testing.assert_close(out, x_0_hat)
    with pytest.raises(ValueError, match="noise"):
        S.ddim_step(
            x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=lab, log_alpha_bar_s=zero, eta=0.5
        )
    with pytest.raises(ValueError, match="eta"):
        S.ddim_step(
            x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=lab, log_alpha_bar_s=zero, eta=1.5
        )
    with pytest.raises(ValueError, match="less noisy"):
        S.ddim_step(x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=zero, log_alpha_bar_s=lab)


def _gaussian_eps(c2):
    """The exact noise prediction for data N(0, c2): E[eps | x_t] at log SNR lam."""

    def eps_fn(x, lam):
        ab = torch.sigmoid(lam)
        return torch.sqrt(1 - ab) * x / (ab * c2 + 1 - ab)

    return eps_fn


@pytest.mark.eq("ddim.13")
def test_ddim_inversion():
    """Inversion then the deterministic step with the same predictions is the identity; with
    the exact denoiser of Gaussian data the round trip error falls as the grid refines."""
    gen = torch.Generator().manual_seed(3)
    x_s = torch.randn(1000, generator=gen, dtype=torch.float64)
    lab_s, lab_t = torch.tensor(-0.5, dtype=torch.float64), torch.tensor(-3.0, dtype=torch.float64)
    x_0_hat, eps_hat = 0.4 * x_s, 0.9 * x_s + 0.1
    x_t = S.ddim_invert_step(
        x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_s=lab_s, log_alpha_bar_t=lab_t
    )
    back = S.ddim_step(
        x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s
    )
    # the step's x_0_hat, eps_hat must be those implied by x_t for exactness: rebuild them
    x0_t = I.x_0_from_eps(x_t=x_t, eps_hat=eps_hat, alpha_bar_t=lab_t.exp())
    torch.testing.assert_close(x0_t, x_0_hat, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        S.ddim_step(x_0_hat=x0_t, eps_hat=eps_hat, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s),
        back,
    )
    c2, errors = 0.25, []
    eps_fn = _gaussian_eps(c2)
    log_ab = _linear_log_alpha_bar()
    for k in (10, 40, 160):
        grid = S.timestep_grid(T, k).flip(0).tolist()  # data side first: encode upwards
        x0 = torch.randn(100, generator=gen, dtype=torch.float64) * math.sqrt(c2)
        x = x0 * log_ab[grid[0]].mul(0.5).exp()  # start at the least noisy level, no noise
        start = x.clone()
        for s, t in itertools.pairwise(grid):
            e = eps_fn(x, S.log_snr_of(log_ab[s]))
            x0h = I.x_0_from_eps(x_t=x, eps_hat=e, alpha_bar_t=log_ab[s].exp())
            x = S.ddim_invert_step(
                x_0_hat=x0h, eps_hat=e, log_alpha_bar_s=log_ab[s], log_alpha_bar_t=log_ab[t]
            )
        for t, s in zip(grid[::-1][:-1], grid[::-1][1:], strict=True):
            e = eps_fn(x, S.log_snr_of(log_ab[t]))
            x0h = I.x_0_from_eps(x_t=x, eps_hat=e, alpha_bar_t=log_ab[t].exp())
            x = S.ddim_step(
                x_0_hat=x0h, eps_hat=e, log_alpha_bar_t=log_ab[t], log_alpha_bar_s=log_ab[s]
            )
        errors.append((x - start).abs().max().item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.1 * errors[0], errors


# --- the probability-flow ODE ----------------------------------------------------------------


@pytest.mark.eq("sde.13", 151)
def test_pf_ode_drift_is_the_vp_sde_flow():
    """dx/dlambda = (1 - alpha_bar)(x + score) / 2: Song et al.'s f - g^2 score / 2 with
    f = -beta x / 2, g^2 = beta, divided by dlambda/dt = -beta / (1 - alpha_bar)."""
    gen = torch.Generator().manual_seed(4)
    x, e = torch.randn(2, 50, generator=gen, dtype=torch.float64)
    lam = torch.linspace(-8, 8, 50, dtype=torch.float64)
    ab = torch.sigmoid(lam)
    score = I.score_from_eps(eps_hat=e, alpha_bar_t=ab)
    beta = 0.37  # any rate: it cancels
    drift_t = -0.5 * beta * x - 0.5 * beta * score  # f - g^2 score / 2
    dlam_dt = -beta / (1 - ab)
    torch.testing.assert_close(S.pf_ode_drift(x_t=x, eps_hat=e, log_snr=lam), drift_t / dlam_dt)


@pytest.mark.eq("sde.13", "ddim.13")
def test_pf_ode_solves_the_gaussian_flow():
    """For data N(0, c2) the flow scales x by the ratio of marginal standard deviations; Heun
    converges at second order, deterministic DDIM (Euler in DDIM's variables) at first."""
    c2 = 0.25
    eps_fn = _gaussian_eps(c2)
    lam_0, lam_1 = -6.0, 4.0
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)

    def std(lam):
        ab = 1 / (1 + math.exp(-lam))
        return math.sqrt(ab * c2 + 1 - ab)

    exact = x * std(lam_1) / std(lam_0)
    heun, ddim = [], []
    for n in (10, 20, 40):
        lams = torch.linspace(lam_0, lam_1, n + 1, dtype=torch.float64)
        y, z = x.clone(), x.clone()
        for a, b in itertools.pairwise(lams):
            y = S.pf_ode_step(x_t=y, eps_fn=eps_fn, log_snr_t=a, log_snr_s=b)
            lab_t, lab_s = torch.nn.functional.logsigmoid(a), torch.nn.functional.logsigmoid(b)
            e = eps_fn(z, a)
            x0h = I.x_0_from_eps(x_t=z, eps_hat=e, log_snr=a)
            z = S.ddim_step(x_0_hat=x0h, eps_hat=e, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s)
        heun.append((y - exact).abs().max().item())
        ddim.append((z - exact).abs().max().item())
    assert heun[2] < 1e-3 and 3.0 < heun[1] / heun[2] < 5.0, heun  # order 2: error / 4
    assert 1.6 < ddim[1] / ddim[2] < 2.5, ddim  # order 1: error / 2


@pytest.mark.eq(84, 85, "ddim.12")
def test_the_models_inline_steps_are_these_functions():
    """udm/model/base.py's loop (levels in float64, coefficients from posterior_coefficients,
    DDIM through eps_from_x_0 and q_sample_from_omega) computes what ancestral_step and
    ddim_step(eta=0) compute: the model can call them (levels log_ab[i] -> log_ab[i + 1])."""
    from udm.torch_impl import noise_params as N

    log_ab = _linear_log_alpha_bar()
    grid = S.timestep_grid(T, 20).tolist()
    levels = torch.cat([log_ab[grid], log_ab.new_zeros(1)])  # noisiest first, then alpha_bar = 1
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(20, 64, generator=gen, dtype=torch.float64)
    x_0_hat = torch.randn(20, 64, generator=gen, dtype=torch.float64)
    noise = torch.randn(20, 64, generator=gen, dtype=torch.float64)
    lab_t, lab_s = levels[:-1, None], levels[1:, None]
    post = V.posterior_coefficients(log_alpha_bar_t=levels[:-1], log_alpha_bar_prev=levels[1:])
    inline = post["coef_x_t"][:, None] * x + post["coef_x_0"][:, None] * x_0_hat
    inline = inline + post["var_q"].sqrt()[:, None] * noise * (lab_s != 0)
    ours = S.ancestral_step(
        x_t=x, x_0_hat=x_0_hat, log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s, noise=noise
    )
    torch.testing.assert_close(ours, inline, rtol=1e-12, atol=1e-12)
    log_snr = S.log_snr_of(levels)
    eps_hat = I.eps_from_x_0(x_t=x[:-1], x_0_hat=x_0_hat[:-1], log_snr=log_snr[:-2, None])
    inline_ddim = N.q_sample_from_omega(x_0=x_0_hat[:-1], omega=-log_snr[1:-1, None], eps=eps_hat)
    ours_ddim = S.ddim_step(
        x_0_hat=x_0_hat[:-1],
        eps_hat=eps_hat,
        log_alpha_bar_t=lab_t[:-1],
        log_alpha_bar_s=lab_s[:-1],
    )
    torch.testing.assert_close(ours_ddim, inline_ddim, rtol=1e-10, atol=1e-12)


def _tiny_model(T: int, dim: int):
    import udm.torch_impl.vdm as V
    from udm.model.diffusion import DiffusionModel
    from udm.model.networks import MLPDenoiser

    return DiffusionModel(MLPDenoiser((dim,), hidden=16, depth=1), V.make_schedule("cosine", T))


def test_the_models_ddim_grid_is_numpys_linspace_rounded_half_to_even():
    """The model samples on diffusers' / improved-diffusion's `linspace` timesteps (+1: the
    model's t is 1-based): np.linspace(0, T - 1, k) rounded half to even, noisiest first."""
    T = 40
    model = _tiny_model(T, dim=1)
    for k in range(1, T + 1):
        times, levels = model.sampling_grid("ddim", k)
        expected = np.round(np.linspace(0, T - 1, k))[::-1].astype(int) + 1
        assert times.tolist() == expected.tolist(), k
        assert len(levels) == k + 1 and float(levels[-1]) == 0.0


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_the_model_samples_with_any_ddim_eta(eta):
    torch.manual_seed(0)
    model = _tiny_model(30, dim=2)
    gen = torch.Generator().manual_seed(0)
    x = model.sample(64, sampler="ddim", steps=7, eta=eta, generator=gen)
    assert x.shape == (64, 2) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="eta"):
        model.sample(4, sampler="ancestral", eta=0.5)
    with pytest.raises(ValueError, match="eta"):
        model.sample(4, sampler="ddim", eta=1.5)
