"""Continuous-time VDM with a learned noise schedule (`udm train --schedule learned`).

The schedule is `torch_impl.noise_params.LearnedNoiseSchedule`: omega(t) = -log SNR(t),
strictly increasing on t in [0, 1], learnable endpoints omega_min = omega(0), omega_max =
omega(1). The per-sample training loss is VDM's continuous-time negative ELBO (nats):

    prior KL(q(x_1 | x_0) || N(0, I))  +  reconstruction -log p(x_0 | z_0)
    +  (1/2) omega'(t) ||eps - eps_hat(x_t, t)||^2,   t ~ U(0, 1)

(`continuous_diffusion_loss`, the T -> oo limit of eqs. (110), (111)). The decoder
p(x_0 | z_0) is N(z_0 / sqrt(alpha_bar_0), exp(omega_min)) (the x-space noise of z_0):
its density for continuous data, the discretized Gaussian for data with `levels`.
Since the diffusion term's expectation depends on the schedule only through its endpoints,
the prior and reconstruction terms are what move them. Every formula comes from `torch_impl`;
this module wires them to a network. Interface as `DiffusionModel` (forward, draw_training_noise,
x_0_hat, eps_hat, sample, neg_elbo_bits_per_dim, elbo_terms).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

import torch_impl.interpretations as I
import torch_impl.noise_params as N
import torch_impl.vdm as V
from torch_impl._tensors import append_dims
from udm.model import networks
from udm.model.diffusion import SAMPLERS, _rep, cfg_x_0
from udm.model.progress import bar as progress_bar

_TO_X0 = {"eps": I.x_0_from_eps, "score": I.x_0_from_score, "v": I.x_0_from_v}
_TO_EPS = {"score": I.eps_from_score, "v": I.eps_from_v, "x0": I.eps_from_x_0}
_PRED_NAME = {"eps": "eps_hat", "score": "score_hat", "v": "v_hat", "x0": "x_0_hat"}
OMEGA_MIN, OMEGA_MAX = -13.3, 5.0  # VDM's initial endpoints (SNR from e^13.3 down to e^-5)
ELBO_T_SAMPLES = 16  # t values per sample in the evaluated bound (stratified)


def _sum_data(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).sum(1)


class ContinuousDiffusionModel(nn.Module):
    """Denoiser `network(x_t, t, y)` (t in [0, 1]) predicting `target`, plus a learned schedule.

    `levels`: grey levels of discrete data (None: continuous). Loss weighting is always the
    VDM bound (the only loss that trains the schedule's endpoints).
    """

    T = None  # continuous time: no step count

    def __init__(
        self,
        network: nn.Module,
        *,
        target: str = "eps",
        levels: int | None = None,
        num_classes: int = 0,
        omega_min: float = OMEGA_MIN,
        omega_max: float = OMEGA_MAX,
        hidden: int = 1024,
    ):
        super().__init__()
        if target not in _PRED_NAME:
            raise ValueError(f"target must be x0, eps, score or v, got {target!r}")
        self.network = network
        self.noise = N.LearnedNoiseSchedule(omega_min, omega_max, hidden)
        self.target, self.levels, self.num_classes = target, levels, num_classes

    @classmethod
    def from_config(cls, config, dataset) -> ContinuousDiffusionModel:
        classes = dataset.num_classes if config.conditional else 0
        net = networks.for_data(dataset.shape, classes, config.width)
        return cls(net, target=config.target, levels=dataset.levels, num_classes=classes)

    # --- schedule and predictions -----------------------------------------------------------

    def _t(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.to(device=x.device, dtype=x.dtype)

    def omega(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """omega(t) = -log SNR(t) as [B, 1, ...] against x (eq. (111))."""
        return append_dims(self.noise(self._t(t, x)), x)

    def raw(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        """The network's output at continuous times t ([B], in [0, 1])."""
        return self.network(x_t, self._t(t, x_t), y)

    def x_0_hat(self, x_t, t, y=None, out=None, omega=None) -> torch.Tensor:
        """x_0 prediction converted from the target (eqs. (115), (133), v form), log_snr = -omega."""
        out = self.raw(x_t, t, y) if out is None else out
        if self.target == "x0":
            return out
        omega = self.omega(t, x_t) if omega is None else omega
        return _TO_X0[self.target](x_t=x_t, **{_PRED_NAME[self.target]: out}, log_snr=-omega)

    def eps_hat(self, x_t, t, y=None, out=None, omega=None) -> torch.Tensor:
        out = self.raw(x_t, t, y) if out is None else out
        if self.target == "eps":
            return out
        omega = self.omega(t, x_t) if omega is None else omega
        conv = _TO_EPS[self.target]
        if self.target == "score":
            return conv(score_hat=out, log_snr=-omega)
        return conv(x_t=x_t, **{_PRED_NAME[self.target]: out}, log_snr=-omega)

    def score_hat(self, x_t, t, y=None) -> torch.Tensor:
        omega = self.omega(t, x_t)
        return I.score_from_eps(eps_hat=self.eps_hat(x_t, t, y, omega=omega), log_snr=-omega)

    # --- the bound's terms ----------------------------------------------------------------------

    def prior_term(self, x_0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_1 | x_0) || N(0, I)) per sample (eqs. (58), (86)), alpha_bar_1 from omega_max."""
        ab_1 = N.alpha_bar_from_omega(omega=self.noise.omega_max.to(x_0.dtype))
        return _sum_data(V.prior_kl_term(x_0=x_0, alpha_bar_t=ab_1))

    def reconstruction_term(self, x_0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-log p(x_0 | z_0) per sample, z_0 = q_sample at omega_min (eqs. (58), (113))."""
        omega_0 = self.noise.omega_min.to(x_0.dtype).expand_as(x_0)
        z_0 = N.q_sample_from_omega(x_0=x_0, omega=omega_0, eps=eps)
        mean = I.x_0_from_eps(x_t=z_0, eps_hat=torch.zeros_like(z_0), log_snr=-omega_0)
        # the decoder's variance is the x-space noise of z_0: (1 - alpha_bar_0) / alpha_bar_0
        log_p = V.discretized_gaussian_log_likelihood(
            x_0=x_0, mean=mean, log_var=omega_0, levels=self.levels
        )
        return -_sum_data(log_p)

    def _diffusion(self, x_0, t, eps, y) -> torch.Tensor:
        omega, domega = self.noise.omega_and_derivative(self._t(t, x_0))
        omega_x = append_dims(omega, x_0)
        x_t = N.q_sample_from_omega(x_0=x_0, omega=omega_x, eps=eps)
        eps_hat = self.eps_hat(x_t, t, y, omega=omega_x)
        return N.continuous_diffusion_loss(eps=eps, eps_hat=eps_hat, domega_dt=domega)

    # --- training -------------------------------------------------------------------------------

    def draw_training_noise(self, batch: int, generator: torch.Generator) -> dict:
        """Low-discrepancy t (VDM): t_i = (u + i / batch) mod 1, one u for the global batch;
        eps ~ N(0, I) (flattened) and u ~ U(0, 1) for label dropout; on CPU."""
        size = math.prod(self.network.shape)
        u = torch.rand((), generator=generator, dtype=torch.float64)
        t = torch.remainder(u + torch.arange(batch, dtype=torch.float64) / batch, 1.0)
        return {
            "t": t,
            "eps": torch.randn((batch, size), generator=generator, dtype=torch.float64),
            "u": torch.rand((batch,), generator=generator),
        }

    def forward(
        self, x_0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-sample negative ELBO estimate [B] in nats at one t per sample (t [B] in [0, 1]);
        eps serves both x_t and z_0 (each term stays unbiased)."""
        return (
            self.prior_term(x_0)
            + self.reconstruction_term(x_0, eps)
            + self._diffusion(x_0, t, eps, y)
        )

    # --- evaluation -----------------------------------------------------------------------------

    @torch.no_grad()
    def neg_elbo_bits_per_dim(
        self, x_0: torch.Tensor, y=None, *, generator=None, t_samples: int = ELBO_T_SAMPLES
    ) -> torch.Tensor:
        """The negative ELBO per sample [B] in bits/dim: prior + reconstruction + the diffusion
        loss averaged over `t_samples` stratified t per sample (one network call on K * B)."""
        K, B = t_samples, x_0.shape[0]
        dev, dtype = x_0.device, x_0.dtype
        u = torch.rand((B,), generator=generator, dtype=torch.float64)
        t = torch.remainder(u + torch.arange(K, dtype=torch.float64)[:, None] / K, 1.0)
        eps = torch.randn((K, *x_0.shape), generator=generator, dtype=dtype).to(dev)
        x_rep = x_0.expand(K, *x_0.shape).reshape(K * B, *x_0.shape[1:])
        eps_rep = eps.reshape(K * B, *x_0.shape[1:])
        diffusion = self._diffusion(x_rep, t.reshape(-1).to(dev), eps_rep, _rep(y, eps_rep))
        nats = (
            self.prior_term(x_0)
            + self.reconstruction_term(x_0, eps[0])
            + diffusion.reshape(K, B).mean(0)
        )
        return nats / (max(1, math.prod(x_0.shape[1:])) * math.log(2))

    @torch.no_grad()
    def elbo_terms(self, x_0: torch.Tensor, y=None, generator=None, grid: int = 100):
        """(terms [B, grid], prior [B]) in nats: terms[:, k] = the diffusion-loss integrand at
        t_k = (k + 1/2) / grid, divided by grid (their sum is the midpoint-rule integral)."""
        B = x_0.shape[0]
        t = ((torch.arange(grid, dtype=torch.float64) + 0.5) / grid).repeat_interleave(B)
        eps = torch.randn((grid * B, *x_0.shape[1:]), generator=generator, dtype=x_0.dtype)
        x_rep = x_0.expand(grid, *x_0.shape).reshape(grid * B, *x_0.shape[1:])
        terms = self._diffusion(x_rep, t.to(x_0.device), eps.to(x_0.device), _rep(y, t))
        return terms.reshape(grid, B).T / grid, self.prior_term(x_0)

    # --- sampling -------------------------------------------------------------------------------

    def _guided_x_0(self, x_t, t, y, guidance_scale, omega):
        if y is None or guidance_scale is None:
            return self.x_0_hat(x_t, t, y, omega=omega)
        eps_uncond = self.eps_hat(x_t, t, None, omega=omega)
        eps_cond = self.eps_hat(x_t, t, y, omega=omega)
        return cfg_x_0(x_t, eps_uncond, eps_cond, guidance_scale, log_snr=-omega)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        sampler: str = "ancestral",
        steps: int | None = None,
        y: torch.Tensor | None = None,
        guidance_scale: float | None = None,
        clip: bool = False,
        generator: torch.Generator | None = None,
        device=None,
        dtype=torch.float32,
        progress: bool = False,
    ) -> torch.Tensor:
        """Draw n samples on the grid t_i = i / steps. 'ancestral': z_s ~ q(z_s | z_t, x_0 =
        x_0_hat) (eqs. (84), (85), (94)) with alpha_bar from omega (eq. (113)) and alpha_t =
        alpha_bar_t / alpha_bar_s between consecutive grid times; 'ddim': the deterministic
        DDIM update (eta = 0). The last step returns the decoder mean z_0 / sqrt(alpha_bar_0).
        Default steps: 1000 (ancestral), 100 (ddim)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if guidance_scale is not None and (y is None or not self.num_classes):
            raise ValueError("guidance_scale needs labels y and a class-conditional model")
        steps = steps or (1000 if sampler == "ancestral" else 100)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        shape = (n, *self.network.shape)

        def noise():  # drawn on the CPU generator, then moved: reproducible on any device
            return torch.randn(shape, generator=generator, dtype=dtype).to(device)

        x = noise()
        if y is not None:
            y = torch.as_tensor(y, device=x.device).expand(n)
        p = next(self.noise.parameters())
        omegas = self.noise(torch.linspace(0, 1, steps + 1, dtype=p.dtype, device=p.device))
        log_ab = F.logsigmoid(-omegas.double())  # log alpha_bar on the grid, float64
        for i in progress_bar(range(steps, 0, -1), enabled=progress, unit="step"):
            t = torch.full((n,), i / steps, device=x.device, dtype=x.dtype)
            omega = torch.full_like(x, float(omegas[i]))
            x_0_hat = self._guided_x_0(x, t, y, guidance_scale, omega)
            if clip:
                x_0_hat = x_0_hat.clamp(-1, 1)
            ab_t, ab_s = log_ab[i].exp(), log_ab[i - 1].exp()
            if sampler == "ancestral":
                coef = {
                    "alpha_t": (log_ab[i] - log_ab[i - 1]).exp(),
                    "alpha_bar_t": ab_t,
                    "alpha_bar_prev": ab_s,
                }
                coef = {k: v.to(x.dtype) for k, v in coef.items()}
                mean = V.mu_theta(x_t=x, x_0_hat=x_0_hat, **coef)
                x = mean + V.var_q(**coef).sqrt() * noise()
            else:
                eps_hat = I.eps_from_x_0(x_t=x, x_0_hat=x_0_hat, log_snr=-omega)
                x = ab_s.sqrt().to(x.dtype) * x_0_hat + (1 - ab_s).sqrt().to(x.dtype) * eps_hat
        # decoder mean: z_0 / sqrt(alpha_bar_0)
        return (x * (-0.5 * log_ab[0]).exp().to(x.dtype)).to(dtype)
