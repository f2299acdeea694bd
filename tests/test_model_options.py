"""Every documented option of the model trains: finite gradients, weights, bound and samples.

A loss value can be finite while its gradient is NaN (an infinite weight masked after the
multiplication); these tests therefore look at gradients, at the weights after a few
optimizer steps, and at the gradient's value against float64 finite differences.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import udm.torch_impl.interpretations as tim_interp
from udm.model import data
from udm.model import train as trainer
from udm.model.config import Config

TARGETS = ("x0", "eps", "score", "v")
WEIGHTINGS = ("simple", "elbo")


def _model(target: str, weighting: str, schedule: str = "linear", T: int = 10, **kw):
    dataset = data.load(kw.pop("data", "gaussian"), 64)
    cfg = Config(
        data=dataset.name,
        T=T,
        schedule=schedule,
        target=target,
        weighting=weighting,
        width=16,
        dtype="float64",
        **kw,
    ).validate()
    torch.manual_seed(0)
    return trainer.build(cfg, dataset).double(), dataset


def _all_t_batch(model, dataset):
    """A batch that holds every t = 1..T at least once, t = 1 included (where the x_0 loss
    weight of eq. (99) is infinite and only the decoder term may reach the graph)."""
    T = model.T or 1
    x_0 = dataset.x[: 2 * max(T, 8)].double()
    if model.T is None:  # continuous time: t in [0, 1], endpoints included
        t = torch.linspace(0, 1, len(x_0), dtype=torch.float64)
    else:
        t = torch.arange(len(x_0)) % T + 1
    eps = torch.randn(x_0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return x_0, t, eps


def _finite_grads(model) -> list[str]:
    return [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]


@pytest.mark.eq(58, 99, 100)
@pytest.mark.parametrize(("target", "weighting"), list(itertools.product(TARGETS, WEIGHTINGS)))
def test_loss_gradient_is_finite_at_every_t(target, weighting, one_thread):
    """Every target x weighting: the loss's gradient is finite on a batch holding every t."""
    model, dataset = _model(target, weighting)
    loss = model(*_all_t_batch(model, dataset)).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert not _finite_grads(model), f"non-finite gradients in {_finite_grads(model)}"


@pytest.mark.eq(58, 99, 100, 110)
@pytest.mark.parametrize(
    ("target", "weighting"), [("eps", "elbo"), ("x0", "elbo"), ("v", "simple"), ("score", "elbo")]
)
def test_loss_gradient_matches_finite_differences(target, weighting, one_thread):
    """torch.autograd.gradcheck (float64 central differences) on a tiny model, every t."""
    model, dataset = _model(target, weighting, T=6)
    x_0, t, eps = _all_t_batch(model, dataset)
    # the last layer: its gradient carries every loss term and weight
    names = [n for n, _ in model.named_parameters()][-2:]

    def loss(*values):
        overrides = dict(model.named_parameters())
        overrides.update(zip(names, values, strict=True))
        return torch.func.functional_call(model, overrides, (x_0, t, eps)).mean()

    params = dict(model.named_parameters())
    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def _train(tmp_path, steps: int = 4, **kw) -> Config:
    cfg = Config(
        out=str(tmp_path / "run"),
        steps=steps,
        batch_size=32,
        T=kw.pop("T", 20),
        width=kw.pop("width", 16),
        plot=False,
        log_every=1,
        **kw,
    )
    trainer.train(cfg, progress=False)
    return cfg


def _assert_trained_model_is_finite(cfg: Config, label: int | None = None, gamma=None) -> None:
    from udm.model import checkpoint, evaluate

    saved = checkpoint.load(f"{cfg.out}/model.pt")
    for which in ("model", "ema"):
        bad = [
            k for k, v in saved[which].items() if v.is_floating_point() and not v.isfinite().all()
        ]
        assert not bad, f"non-finite {which} weights: {bad}"
    report = evaluate.elbo_report(f"{cfg.out}/model.pt", n=16, batch=16)
    assert math.isfinite(report["bits_per_dim"]) and math.isfinite(report["stderr"])
    model, _, _ = evaluate.load_model(f"{cfg.out}/model.pt")
    for sampler in ("ancestral", "ddim"):
        x = model.sample(
            8,
            sampler=sampler,
            steps=5,
            y=label,
            guidance_scale=gamma,
            generator=torch.Generator().manual_seed(0),
        )
        assert x.shape[0] == 8 and torch.isfinite(x).all(), sampler


@pytest.mark.slow
@pytest.mark.parametrize(("target", "weighting"), list(itertools.product(TARGETS, WEIGHTINGS)))
def test_every_target_and_weighting_trains_to_finite_weights_bound_and_samples(
    tmp_path, target, weighting, one_thread
):
    cfg = _train(tmp_path, data="mixture", target=target, weighting=weighting)
    _assert_trained_model_is_finite(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_learned_schedule_trains_to_finite_weights_bound_and_samples(tmp_path, target, one_thread):
    cfg = _train(tmp_path, data="mixture", schedule="learned", target=target)
    _assert_trained_model_is_finite(cfg)


@pytest.mark.slow
@pytest.mark.parametrize(("schedule", "weighting"), [("cosine", "elbo"), ("learned", "elbo")])
def test_conditional_model_with_guidance_trains_and_samples(
    tmp_path, schedule, weighting, one_thread
):
    cfg = _train(tmp_path, data="mixture", schedule=schedule, weighting=weighting, conditional=True)
    _assert_trained_model_is_finite(cfg, label=1, gamma=2.0)


def _exact_mixture_x_0(schedule):
    """E[x_0 | x_t] for the built-in mixture (isotropic components N(m_k, s^2 I)), by the
    mixture oracle `udm.torch_impl.interpretations.gaussian_mixture_posterior_mean` (tied to
    quadrature and importance sampling in tests/test_interpretations.py)."""
    k = len(data.MIXTURE_MEANS)
    mixture = {
        "weights": torch.full((k,), 1 / k, dtype=torch.float64),
        "means": torch.tensor(data.MIXTURE_MEANS, dtype=torch.float64),
        "variances": torch.full((k,), data.MIXTURE_STD**2, dtype=torch.float64),
    }

    def x_0_hat(x_t, t, y=None):
        ab = schedule.gather("alpha_bar_t", t, x_t)[:, 0].double()
        return tim_interp.gaussian_mixture_posterior_mean(
            x_t=x_t.double(), **mixture, alpha_bar_t=ab
        ).to(x_t.dtype)

    return x_0_hat


@pytest.mark.eq(84, 85, 115)
@pytest.mark.statistical
@pytest.mark.parametrize(
    ("sampler", "steps"), [("ancestral", None), ("ancestral", 50), ("ddim", 50)]
)
def test_samplers_with_the_exact_denoiser_draw_the_mixture(sampler, steps, one_thread):
    """README's setting (mixture, cosine, T = 100; 50 grid steps or all 100). With the exact
    x_0 predictor the samplers draw the data: the mean log-density of 2000 samples lies within
    0.25 nats of that of 2000 fresh data points (SE of the difference about 0.03; measured:
    DDIM 0.04, ancestral 0.11 on 100 steps and 0.16 on the respaced 50, since a Gaussian
    reverse step of variance var_q is not the exact reverse process), while a predictor scaled
    by 1.1 is off by 3.5 (DDIM) to 8.6 (ancestral) nats. So the sampler is the math; the streaks of a trained eps model under
    DDIM come from its error at t = T, amplified there (README, "DDIM and the first step")."""
    model, _ = _model("x0", "simple", schedule="cosine", T=100, data="mixture")
    fresh = data.load("mixture", 2000, seed=11).x.double().numpy()
    want = data.mixture_log_prob(fresh).mean()
    exact = _exact_mixture_x_0(model.schedule)
    gaps = []
    for scale in (1.0, 1.1):
        model.raw = lambda x_t, t, y=None, s=scale: s * exact(x_t, t)
        x = model.sample(
            2000, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(5)
        ).double()
        assert torch.isfinite(x).all()
        gaps.append(abs(data.mixture_log_prob(x.numpy()).mean() - want))
    assert gaps[0] < 0.25 < 1.0 < gaps[1], gaps


@pytest.mark.slow
def test_user_data_is_found_from_any_folder_held_out_and_checked(tmp_path, monkeypatch, one_thread):
    """A model trained on a relative `.npy` path is scored from another folder on the held-out
    tenth of that file (not the training rows), says how many samples it used, and refuses
    the file once its content changed or it is gone."""
    from udm.model import evaluate

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows = np.random.default_rng(0).standard_normal((200, 2))
    np.save(tmp_path / "a" / "ok.npy", rows)
    monkeypatch.chdir(tmp_path / "a")
    cfg = _train(tmp_path / "a", data="ok.npy")
    ckpt = Path(cfg.out).resolve() / "model.pt"
    monkeypatch.chdir(tmp_path / "b")
    train_x = data.load(str(tmp_path / "a" / "ok.npy")).x.double().numpy()
    _, _, held_out = evaluate.load_model(ckpt)
    held = held_out.x.double().numpy()
    assert len(held) == 20 and len(train_x) == 180
    # disjoint, and together the whole file
    assert not (held[:, None, :] == train_x[None]).all(-1).any()
    np.testing.assert_array_equal(
        np.sort(np.concatenate([held, train_x]), 0), np.sort(rows.astype(np.float32), 0)
    )
    report = evaluate.elbo_report(ckpt, n=5000, batch=50)
    assert report["n"] == 20 and report["n_requested"] == 5000
    np.save(tmp_path / "a" / "ok.npy", rows[::-1].copy() + 1)
    with pytest.raises(ValueError, match="changed since"):
        evaluate.load_model(ckpt)
    (tmp_path / "a" / "ok.npy").unlink()
    with pytest.raises(ValueError, match="not there any more"):
        evaluate.load_model(ckpt)


@pytest.mark.slow
def test_analytic_data_elbo_uses_the_n_asked_for(tmp_path, one_thread):
    from udm.model import evaluate

    cfg = _train(tmp_path, data="gaussian")
    assert evaluate.elbo_report(f"{cfg.out}/model.pt", n=2500, batch=500)["n"] == 2500


def test_elbo_figure_parts_name_the_bound_and_the_learned_time_axis(tmp_path, one_thread):
    """The figure's parts are eq. (58)'s three (the reconstruction term is signed) and sum to
    the model's own bound on the same data; the learned schedule's x axis is t in (0, 1)."""
    from udm.model import plots

    for schedule in ("cosine", "learned"):
        model, dataset = _model("eps", "simple", schedule=schedule, T=10, data="mixture")
        x = dataset.x[:32].double()
        with torch.no_grad():
            t, per_t, parts = plots._elbo_parts(
                model, x, None, dataset.dims, torch.Generator().manual_seed(0)
            )
        assert len(parts) == 3 and all(math.isfinite(v) for v in parts.values())
        if schedule == "learned":
            assert 0 < t.min() and t.max() < 1 and len(t) == len(per_t)
        else:
            assert list(t) == list(range(2, 11)) and (per_t > 0).all()
            with torch.no_grad():
                bound = model.neg_elbo_bits_per_dim(x, generator=torch.Generator().manual_seed(0))
            assert sum(parts.values()) == pytest.approx(float(bound.mean()) * math.log(2), rel=1e-9)
        plots.elbo_terms_figure(
            t, per_t, parts, tmp_path / "e.png", continuous=schedule == "learned"
        )
        assert (tmp_path / "e.png").stat().st_size > 0


class _SyncCounter:
    """Counts the tensor-to-host reads that force a device synchronization (bool(), item(),
    float(), int(), tolist(), numpy()): on the CPU there is no device to wait for, so this
    CPU-side count stands in for torch.cuda.set_sync_debug_mode('error')."""

    METHODS = ("__bool__", "item", "__float__", "__int__", "__index__", "tolist", "numpy")

    def __enter__(self):
        self.count, self.where = 0, []
        self.saved = {m: getattr(torch.Tensor, m) for m in self.METHODS}
        for name, method in self.saved.items():
            setattr(torch.Tensor, name, self._counting(name, method))
        return self

    def _counting(self, name, method):
        def wrapper(tensor, *args, **kwargs):
            self.count += 1
            self.where.append(name)
            return method(tensor, *args, **kwargs)

        return wrapper

    def __exit__(self, *exc):
        for name, method in self.saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("schedule", ["cosine", "learned"])
@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_sampling_steps_make_no_host_sync_with_checks_off(schedule, sampler, one_thread):
    """With validate_args=False the sampling loop reads nothing back from the device: the
    cost of a 5-step and of a 10-step run differ by zero host reads (set-up reads the grid);
    with the checks on, every step does read (the counter sees them)."""
    model, _ = _model("v", "simple", schedule=schedule, T=20, data="mixture")
    counts = {}
    for steps, validate in ((5, False), (10, False), (5, True), (10, True)):
        with _SyncCounter() as counter:
            model.sample(
                4, sampler=sampler, steps=steps, validate_args=validate, dtype=torch.float64
            )
        counts[steps, validate] = counter.count
    assert counts[10, False] == counts[5, False] <= 2, counts  # set-up reads the grid
    assert counts[10, True] > counts[5, True], counts


@pytest.mark.parametrize(
    ("schedule", "weighting"), [("cosine", "elbo"), ("learned", "elbo"), ("linear", "simple")]
)
def test_training_step_makes_no_host_sync_with_checks_off(schedule, weighting, one_thread):
    """Forward, backward, a fused Adam step and the EMA update read nothing back from the
    device with the checks off (the ELBO loss does read with them on: the counter is live)."""
    from udm import checks
    from udm.model.checkpoint import EMA

    model, dataset = _model("eps", weighting, schedule=schedule, T=20, data="mixture")
    optim = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    ema = EMA(model, 0.9)
    noise = model.draw_training_noise(16, torch.Generator().manual_seed(0))
    x_0 = dataset.x[:16].double()
    counts = {}
    for validate in (False, True):
        with checks.validate_args(validate), _SyncCounter() as counter:
            loss = model(x_0, noise["t"], noise["eps"].view_as(x_0)).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            ema.update(model)
        counts[validate] = (counter.count, counter.where)
    assert counts[False][0] == 0, counts[False]
    if weighting == "elbo":  # its entry point validates t and x_0 (the simple loss has none)
        assert counts[True][0] > 0


@pytest.mark.slow
def test_a_diverged_run_is_refused_and_writes_no_checkpoint(tmp_path, monkeypatch, one_thread):
    """An optimizer step that leaves an infinite weight (as a too-large --lr does): train says
    so, naming --lr, and writes no model.pt that every later command would refuse."""

    class Diverging(torch.optim.Adam):
        def step(self, closure=None):
            super().step(closure)
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(math.inf)

    monkeypatch.setattr(trainer.torch.optim, "Adam", Diverging)
    with pytest.raises(ValueError, match=r"diverged.*--lr"):
        _train(tmp_path, data="mixture", steps=2)
    assert not (tmp_path / "run" / "model.pt").exists()
