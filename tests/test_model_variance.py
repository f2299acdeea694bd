"""The model's reverse variances (small, large, learned), the class optimum of
the bound for data with a known density, and the probability-flow ODE likelihood."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import udm.torch_impl.vdm as V
from udm.model import data, evaluate, likelihood, optimum
from udm.model import train as trainer
from udm.model.config import Config
from udm.torch_impl.score import gaussian_mixture_log_prob, gaussian_mixture_score

VARIANCES = ("small", "large", "learned")


def _model(variance: str, weighting: str = "simple", T: int = 10, data_name: str = "mixture"):
    dataset = data.load(data_name, 64)
    cfg = Config(
        data=dataset.name,
        T=T,
        target="eps",
        weighting=weighting,
        variance=variance,
        width=16,
        dtype="float64",
    ).validate()
    torch.manual_seed(0)
    return trainer.build(cfg, dataset).double(), dataset


# --- the bound's KL with unmatched variances ---------------------------------------------------


@pytest.mark.eq(86, 92, 99)
def test_vb_term_with_a_model_variance_is_the_gaussian_kl(one_thread):
    """t >= 2: KL(N(mu_q, sigma_q^2) || N(mu_theta, Sigma)) as kl_normal computes it from the
    two means (eqs. (84), (94)); log_var = log sigma_q^2 gives the matched path (eq. (99));
    t = 1: the Gaussian decoder's -log density with variance Sigma."""
    schedule = V.linear_schedule(12, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x_0, x_t, x_0_hat = (torch.randn(12, 3, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.arange(1, 13)
    log_var = torch.randn(12, 3, generator=g, dtype=torch.float64) - 5
    got = V.vb_term(schedule, x_0=x_0, x_t=x_t, x_0_hat=x_0_hat, t=t, levels=None, log_var=log_var)
    mu_q = schedule.posterior_mean(x_t=x_t, x_0=x_0, t=t)
    mu_p = schedule.posterior_mean(x_t=x_t, x_0=x_0_hat, t=t)
    var_q = schedule.posterior_var(t, x_0)
    want = torch.empty(12, dtype=torch.float64)
    want[1:] = V.kl_normal(
        mean_q=mu_q[1:], var_q=var_q[1:], mean_p=mu_p[1:], var_p=log_var[1:].exp()
    ).sum(1)
    dec = torch.distributions.Normal(x_0_hat[0], (0.5 * log_var[0]).exp())
    want[0] = -dec.log_prob(x_0[0]).sum()
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    matched = V.vb_term(schedule, x_0=x_0, x_t=x_t, x_0_hat=x_0_hat, t=t, levels=None)
    as_log = V.vb_term(
        schedule,
        x_0=x_0,
        x_t=x_t,
        x_0_hat=x_0_hat,
        t=t,
        levels=None,
        log_var=schedule.posterior_log_var(t, x_0),
    )
    torch.testing.assert_close(as_log, matched, rtol=1e-10, atol=1e-12)
    # perturbing the variance changes the term (the variance enters)
    bumped = V.vb_term(
        schedule, x_0=x_0, x_t=x_t, x_0_hat=x_0_hat, t=t, levels=None, log_var=log_var + 0.1
    )
    assert (bumped - got).abs().min() > 1e-6


# --- every variance trains: finite gradients, weights, bound, samples ---------------------------


@pytest.mark.parametrize("weighting", ["simple", "elbo"])
@pytest.mark.parametrize("variance", VARIANCES)
def test_loss_gradient_is_finite_at_every_t(variance, weighting, one_thread):
    model, dataset = _model(variance, weighting)
    x_0 = dataset.x[:40].double()
    t = torch.arange(40) % model.T + 1
    eps = torch.randn(x_0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    loss = model(x_0, t, eps).mean()
    loss.backward()
    assert torch.isfinite(loss)
    bad = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert not bad


def test_learned_variance_hybrid_loss_stops_the_mean_gradient_in_l_vlb(one_thread):
    """L_hybrid = L_simple + lambda L_vlb: the mean half of the network learns only from
    L_simple (its gradient equals that of the 'small' model's simple loss on the same
    output), the variance half only from L_vlb."""
    model, dataset = _model("learned")
    x_0 = dataset.x[:40].double()
    t = torch.arange(40) % model.T + 1
    eps = torch.randn(x_0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = model.network(x_0, t.double() / model.T).detach().requires_grad_(True)
    model.network.forward = lambda x_t, tt, y=None: out  # a leaf we can differentiate
    model(x_0, t, eps).sum().backward()
    mean_grad = out.grad[:, :2]
    want = 2 * (out[:, :2].detach() - eps) / 2  # d/d eps_hat of mean over 2 coordinates
    torch.testing.assert_close(mean_grad, want)
    assert out.grad[:, 2:].abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("variance", VARIANCES)
def test_every_variance_trains_to_finite_weights_bound_and_samples(tmp_path, variance, one_thread):
    cfg = Config(
        data="mixture",
        out=str(tmp_path / "run"),
        steps=4,
        batch_size=32,
        T=20,
        width=16,
        plot=False,
        log_every=1,
        variance=variance,
    )
    trainer.train(cfg, progress=False)
    report = evaluate.elbo_report(f"{cfg.out}/model.pt", n=16, batch=16)
    for key in ("bits_per_dim", "optimal_nll_nats", "gap_nats", "training_gap_nats"):
        assert math.isfinite(report[key]), key
    assert report["variance"] == variance
    model, _, _ = evaluate.load_model(f"{cfg.out}/model.pt")
    assert model.variance == variance
    for sampler, steps in (("ancestral", None), ("ancestral", 5), ("ddim", 5)):
        x = model.sample(
            8, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(0)
        )
        assert torch.isfinite(x).all(), sampler


def test_variance_flag_is_checked(tmp_path):
    with pytest.raises(ValueError, match="--variance must be one of small, large, learned"):
        Config(variance="huge").validate()
    with pytest.raises(ValueError, match="needs a discrete schedule"):
        Config(variance="learned", schedule="learned").validate()


@pytest.mark.eq(84, 85)
@pytest.mark.statistical
def test_large_variance_sampler_with_the_exact_denoiser_draws_n01(one_thread):
    """For N(0, 1) data the reverse step N(mu_q(x_t, E[x_0 | x_t]), beta_t) is q's exact
    reverse: samples have variance 1 (the small variance gives visibly less on a coarse
    10-step chain, beta_t up to 0.5)."""
    model, _ = _model("large", T=10, data_name="gaussian")
    model.schedule = V.linear_schedule(10, beta_end=0.5, dtype=torch.float64)
    mixture = data.gaussian_mixture("gaussian")

    def raw(x_t, t, y=None):
        log_ab = torch.log(model.schedule.gather("alpha_bar_t", t, x_t))
        mean, _ = optimum.posterior_moments(x_t, log_ab, mixture)
        return mean

    model.variance = "large"
    model.target = "x0"
    model.raw = raw
    x = model.sample(20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert abs(float(x.var()) - 1.0) < 0.04
    model.variance = "small"
    x_small = model.sample(20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert float(x_small.var()) < 0.9, float(x_small.var())


# --- the class optimum -------------------------------------------------------------------------


def _assert_bound_with_exact_posterior_is(closed, model, x_0, mixture):
    """The model's own bound code with the exact posterior in place of the network, 20 noise
    draws per x_0, equals `closed` within 5 standard errors."""
    gen = torch.Generator().manual_seed(4)
    mc = torch.stack(
        [
            model.neg_elbo_bits_per_dim(
                x_0,
                generator=gen,
                posterior=lambda x_t, lab: optimum.posterior_moments(x_t, lab, mixture),
            )
            * math.log(2)
            for _ in range(20)
        ]
    ).mean(0)
    diff = (mc - closed).numpy()
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert abs(diff.mean()) < 5 * se + 1e-9, (diff.mean(), se)


@pytest.mark.parametrize("variance", VARIANCES)
@pytest.mark.statistical
def test_closed_form_optimum_equals_the_bound_code_with_the_exact_posterior(variance, one_thread):
    """gaussian data: the closed-form class optimum (udm.model.optimum, written apart from
    the bound) against the model's own bound code with the exact posterior in place of the
    network, averaged over 400 x_0 and 20 noise draws each (tolerance: 5 standard errors)."""
    model, _ = _model(variance, T=50, data_name="gaussian")
    mixture = data.gaussian_mixture("gaussian")
    x_0 = torch.randn(400, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    closed = optimum.closed_form_optimum(model.schedule, variance, x_0, mixture)
    _assert_bound_with_exact_posterior_is(closed, model, x_0, mixture)


def test_large_and_learned_optima_are_the_true_nll_for_gaussian_data():
    """For N(0, 1) data beta_t is q's own reverse variance, so the large class's optimum is
    -log p(x_0) per sample (the ELBO's gap KL(q(x_{1:T} | x_0) || p(x_{1:T} | x_0)) is 0); the
    learned class reaches it too; the small class stays above (0.58 nats at T = 1000)."""
    schedule = V.linear_schedule(1000, dtype=torch.float64)
    mixture = data.gaussian_mixture("gaussian")
    x_0 = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    true = -data.load("gaussian", 2).log_prob(x_0.numpy())
    for variance in ("large", "learned"):
        best = optimum.closed_form_optimum(schedule, variance, x_0, mixture).numpy()
        np.testing.assert_allclose(best, true, rtol=0, atol=1e-9)
    small = optimum.closed_form_optimum(schedule, "small", x_0, mixture).numpy()
    assert 0.5 < float(np.mean(small - true)) < 0.65


@pytest.mark.parametrize("variance", VARIANCES)
def test_closed_form_optimum_against_quadrature(variance):
    """Every term of the optimum by brute-force 1-D quadrature over x_t given x_0 (T = 6,
    N(0, 1) data, E[x_0 | x_t] = sqrt(alpha_bar_t) x_t): the Gaussian KL with the class's
    variance (eq. (86)) at t >= 2, the decoder's -log density at t = 1, the prior KL."""
    from scipy import integrate

    schedule = V.linear_schedule(6, beta_end=0.3, dtype=torch.float64)
    f64 = {k: v.numpy() for k, v in schedule.coefficients(torch.float64, "cpu").items()}
    x0 = 0.7
    total = 0.0
    for t in range(1, 7):
        ab, beta, var_q = f64["alpha_bar_t"][t - 1], f64["beta_t"][t - 1], f64["var_q"][t - 1]
        c = f64["mu_q_coef_x_0"][t - 1]
        if variance == "small":
            s2 = var_q if t > 1 else f64["var_q"][1]
        elif variance == "large":
            s2 = beta
        else:
            s2 = var_q + c**2 * (1 - ab) if t > 1 else 1 - ab

        def term(u, ab=ab, s2=s2, c=c, var_q=var_q, t=t):
            x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * u
            err2 = (x0 - math.sqrt(ab) * x_t) ** 2
            if t == 1:
                value = 0.5 * math.log(2 * math.pi * s2) + err2 / (2 * s2)
            else:
                r = var_q / s2
                value = 0.5 * (r - 1 - math.log(r) + c**2 * err2 / s2)
            return math.exp(-u * u / 2) / math.sqrt(2 * math.pi) * value

        total += integrate.quad(term, -12, 12, epsabs=1e-13)[0]
    ab_T = f64["alpha_bar_t"][-1]
    total += 0.5 * (ab_T * x0**2 - ab_T - math.log1p(-ab_T))
    closed = optimum.closed_form_optimum(
        schedule,
        variance,
        torch.tensor([[x0]], dtype=torch.float64),
        data.gaussian_mixture("gaussian"),
    )
    assert math.isclose(float(closed), total, rel_tol=1e-9, abs_tol=1e-10)


def test_posterior_moments_of_the_mixture_by_quadrature():
    """E[x_0 | x_t] and Var(x_0 | x_t) of the 2-D mixture against a 2-D grid quadrature of
    x_0 -> p(x_0) q(x_t | x_0)."""
    mixture = data.gaussian_mixture("mixture")
    ab = 0.6
    x_t = torch.tensor([[0.3, -1.1]], dtype=torch.float64)
    mean, var = optimum.posterior_moments(x_t, torch.tensor([math.log(ab)]), mixture)
    u = np.linspace(-5, 5, 801)
    X, Y = np.meshgrid(u, u, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], 1)
    w = np.exp(data.mixture_log_prob(pts)) * np.exp(
        -((x_t.numpy() - math.sqrt(ab) * pts) ** 2).sum(1) / (2 * (1 - ab))
    )
    w /= w.sum()
    m = (w[:, None] * pts).sum(0)
    v = (w[:, None] * (pts - m) ** 2).sum(0)
    np.testing.assert_allclose(mean.numpy()[0], m, atol=1e-6)
    np.testing.assert_allclose(var.numpy()[0], v, atol=1e-6)
    import udm.torch_impl._mixture as M

    w_, m_, v_ = optimum.mixture_tensors(mixture, x_t)
    ab_t = torch.tensor([ab], dtype=torch.float64)
    torch.testing.assert_close(mean, M.vp_posterior_mean(x_t, w_, m_, v_, ab_t, 1 - ab_t))


# --- the probability-flow ODE likelihood --------------------------------------------------------


@pytest.mark.statistical
def test_pf_ode_likelihood_with_the_exact_mixture_score_is_the_mixture_density(one_thread):
    """The ODE from lambda = 14 (1 - alpha_bar = 8e-7) down to lambda = -14 with the exact
    score of the perturbed mixture in place of the network gives log p of the 2-D mixture
    within 1e-4 nats per point (measured 3.0e-5 at 400 RK4 steps, 2.5e-4 at 100)."""
    weights, means, variances = (torch.as_tensor(a) for a in data.gaussian_mixture("mixture"))

    def eps_fn(x, lam):
        ab = 1 / (1 + math.exp(-lam))
        score = gaussian_mixture_score(
            x=x, weights=weights, means=math.sqrt(ab) * means, variances=ab * variances + 1 - ab
        )
        return -math.sqrt(1 - ab) * score

    x_0 = data.load("mixture", 64, seed=3).x.double()
    lam0 = 14.0
    log_ab = -math.log1p(math.exp(-lam0))
    log_p, _ = likelihood.pf_ode_log_likelihood(
        eps_fn, math.exp(0.5 * log_ab) * x_0, log_snr_start=lam0, log_snr_end=-14.0, steps=400
    )
    got = (log_p + log_ab).numpy()  # D / 2 log alpha_bar with D = 2
    want = gaussian_mixture_log_prob(x=x_0, weights=weights, means=means, variances=variances)
    err = np.abs(got - want.numpy())
    assert err.max() < 1e-4, err.max()
    # Hutchinson's estimator: unbiased, noisier
    log_h, _ = likelihood.pf_ode_log_likelihood(
        eps_fn,
        math.exp(0.5 * log_ab) * x_0,
        log_snr_start=lam0,
        log_snr_end=-14.0,
        steps=400,
        exact=False,
        generator=torch.Generator().manual_seed(0),
    )
    diff = (log_h + log_ab).numpy() - want.numpy()
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / math.sqrt(len(diff)) + 1e-3


@pytest.mark.slow
def test_udm_elbo_exact_and_optimum_in_json(tmp_path, one_thread):
    from click.testing import CliRunner

    from udm.cli import main

    cfg = Config(
        data="gaussian",
        out=str(tmp_path / "run"),
        steps=4,
        batch_size=32,
        T=20,
        width=16,
        plot=False,
        variance="large",
    )
    trainer.train(cfg, progress=False)
    runner = CliRunner()
    res = runner.invoke(
        main, ["elbo", f"{cfg.out}/model.pt", "--n", "20", "--exact", "--ode-steps", "20", "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    for key in (
        "optimal_nll_nats",
        "gap_nats",
        "gap_stderr",
        "training_gap_nats",
        "class_gap_nats",
        "exact_nll_nats",
    ):
        assert math.isfinite(report[key]), key
    assert report["exact_divergence"] == "exact"
    assert abs(report["class_gap_nats"]) < 1e-6  # large variance, N(0, 1) data: exact class
    text = runner.invoke(main, ["elbo", f"{cfg.out}/model.pt", "--n", "20"]).output
    assert "training gap" in text and "class gap" in text


@pytest.mark.statistical
def test_model_exact_nll_with_the_exact_denoiser_is_the_mixture_density(one_thread):
    """`udm elbo --exact`'s path (udm.model.likelihood.model_nll_nats) on a discrete model
    (linear, T = 1000) whose eps prediction is the exact one of the perturbed mixture: -log p
    of the data within 5e-3 nats per point. The ODE starts at t = 1 (1 - alpha_bar_1 = 1e-4),
    which biases it by about beta_1 times the data's Fisher information (measured: 1.8e-3
    at most, 1.6e-4 on average over the 32 points)."""
    model, _ = _model("small", T=1000)
    mixture = data.gaussian_mixture("mixture")
    weights, means, variances = (torch.as_tensor(a) for a in mixture)

    def eps_hat(x_t, t, y=None, out=None, log_snr=None):
        lab = torch.nn.functional.logsigmoid(log_snr[:, 0])
        mean, _ = optimum.posterior_moments(x_t, lab, mixture)
        ab = lab.exp()[:, None]
        return (x_t - ab.sqrt() * mean) / (1 - ab).sqrt()

    model.eps_hat = eps_hat
    x_0 = data.load("mixture", 32, seed=5).x.double()
    nll = likelihood.model_nll_nats(model, x_0, steps=200)
    assert nll["divergence"] == "exact"
    want = -gaussian_mixture_log_prob(x=x_0, weights=weights, means=means, variances=variances)
    err = np.abs(nll["nll"] - want.numpy())
    assert err.max() < 5e-3, err.max()


@pytest.mark.slow
@pytest.mark.parametrize("data_name", ["gaussian", "mixture"])
def test_continuous_model_reports_optimum_gaps_and_exact_nll(tmp_path, data_name, one_thread):
    """--schedule learned: the class optimum (closed form for gaussian, Monte Carlo with the
    exact posterior mean for the mixture), the paired gaps and the ODE likelihood are finite."""
    cfg = Config(
        data=data_name,
        schedule="learned",
        out=str(tmp_path / "run"),
        steps=4,
        batch_size=32,
        width=16,
        plot=False,
    )
    trainer.train(cfg, progress=False)
    report = evaluate.elbo_report(f"{cfg.out}/model.pt", n=16, batch=16, exact=True, ode_steps=8)
    want = "closed form" if data_name == "gaussian" else "Monte Carlo"
    assert report["optimal_method"].startswith(want)
    for key in ("optimal_nll_nats", "training_gap_nats", "class_gap_nats", "exact_nll_nats"):
        assert math.isfinite(report[key]), key


@pytest.mark.parametrize("weighting", ["simple", "elbo"])
def test_learned_variance_training_step_makes_no_host_sync_with_checks_off(weighting, one_thread):
    from tests.test_model_options import _SyncCounter
    from udm import checks
    from udm.model.checkpoint import EMA

    model, dataset = _model("learned", weighting, T=20)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    ema = EMA(model, 0.9)
    noise = model.draw_training_noise(16, torch.Generator().manual_seed(0))
    x_0 = dataset.x[:16].double()
    with checks.validate_args(False), _SyncCounter() as counter:
        loss = model(x_0, noise["t"], noise["eps"].view_as(x_0)).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        ema.update(model)
    assert counter.count == 0, counter.where


@pytest.mark.parametrize("variance", ["large", "learned"])
def test_sampling_with_a_model_variance_makes_no_host_sync_with_checks_off(variance, one_thread):
    from tests.test_model_options import _SyncCounter

    model, _ = _model(variance, T=20)
    counts = {}
    for steps in (5, 10):
        with _SyncCounter() as counter:
            model.sample(4, steps=steps, validate_args=False, dtype=torch.float64)
        counts[steps] = counter.count
    assert counts[10] == counts[5] <= 2, counts


@pytest.mark.statistical
def test_continuous_closed_form_optimum_equals_the_model_bound_with_the_exact_posterior(
    one_thread,
):
    """--schedule learned on gaussian data: the closed-form optimum (an integral over omega
    between the schedule's ends) against the model's own bound code (prior, reconstruction,
    16 stratified t of the diffusion loss) with the exact posterior mean in place of the
    network, 400 x_0 and 20 draws each (5 standard errors)."""
    dataset = data.load("gaussian", 64)
    cfg = Config(data="gaussian", schedule="learned", width=16, dtype="float64").validate()
    torch.manual_seed(0)
    model = trainer.build(cfg, dataset).double()
    mixture = data.gaussian_mixture("gaussian")
    x_0 = torch.randn(400, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    closed = optimum.closed_form_optimum_continuous(
        float(model.noise.omega_min.detach()), float(model.noise.omega_max.detach()), x_0, mixture
    )
    _assert_bound_with_exact_posterior_is(closed, model, x_0, mixture)
    # N(0, 1) data and the VDM's ends (SNR e^13.3 to e^-5): within 0.01 nats of -log p
    true = -dataset.log_prob(x_0.numpy())
    assert abs(float((closed.numpy() - true).mean())) < 0.01
