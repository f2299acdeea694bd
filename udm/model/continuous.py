"""Continuous-time VDM with a learned noise schedule (`udm train --schedule learned`).

The schedule is `udm.torch_impl.noise_params.LearnedNoiseSchedule`: omega(t) = -log SNR(t),
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

import udm.torch_impl.interpretations as I
import udm.torch_impl.noise_params as N
import udm.torch_impl.vdm as V
from udm.model import networks
from udm.model.base import DenoisingModel, repeat_labels
from udm.torch_impl._tensors import append_dims

OMEGA_MIN, OMEGA_MAX = -13.3, 5.0  # VDM's initial endpoints (SNR from e^13.3 down to e^-5)
ELBO_T_SAMPLES = 16  # t values per sample in the evaluated bound (stratified)


def _sum_data(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).sum(1)


class ContinuousDiffusionModel(DenoisingModel):
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
        super().__init__(network, target=target, levels=levels, num_classes=num_classes)
        self.noise = N.LearnedNoiseSchedule(omega_min, omega_max, hidden)

    @classmethod
    def from_config(cls, config, dataset) -> ContinuousDiffusionModel:
        classes = dataset.num_classes if config.conditional else 0
        net = networks.for_data(dataset.shape, classes, config.width)
        return cls(net, target=config.target, levels=dataset.levels, num_classes=classes)

    # --- noise levels ---------------------------------------------------------------------------

    def _t(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.to(device=x.device, dtype=x.dtype)

    def omega(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """omega(t) = -log SNR(t) as [B, 1, ...] against x (eq. (111))."""
        return append_dims(self.noise(self._t(t, x)), x)

    def log_snr(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.omega(t, x)

    def network_time(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._t(t, x)

    def sampling_grid(self, sampler: str, steps: int | None):
        """The grid t_i = i / steps, i = steps..1 (default 1000 ancestral, 100 DDIM), moving
        down to t = 0, whose level alpha_bar_0 = sigmoid(-omega_min) < 1 (see `finish`)."""
        steps = steps or (1000 if sampler == "ancestral" else 100)
        p = next(self.noise.parameters())
        grid = torch.linspace(0, 1, steps + 1, dtype=p.dtype, device=p.device)
        log_ab = F.logsigmoid(-self.noise(grid).double())  # log alpha_bar, eq. (113)
        return grid[1:].flip(0), log_ab.flip(0)

    def finish(self, x: torch.Tensor, final_log_alpha_bar: torch.Tensor) -> torch.Tensor:
        """The decoder mean z_0 / sqrt(alpha_bar_0)."""
        return x * torch.exp(-0.5 * final_log_alpha_bar).to(x.dtype)

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

    def _diffusion(self, x_0, t, eps, y, posterior=None) -> torch.Tensor:
        omega, domega = self.noise.omega_and_derivative(self._t(t, x_0))
        omega_x = append_dims(omega, x_0)
        x_t = N.q_sample_from_omega(x_0=x_0, omega=omega_x, eps=eps)
        if posterior is None:
            eps_hat = self.eps_hat(x_t, t, y, log_snr=-omega_x)
        else:  # the class optimum: eps implied by E[x_0 | x_t] (udm.model.optimum)
            mean, _ = posterior(x_t.double(), F.logsigmoid(-omega.double()))
            eps_hat = I.eps_from_x_0(x_t=x_t, x_0_hat=mean.to(x_t.dtype), log_snr=-omega_x)
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
        self,
        x_0: torch.Tensor,
        y=None,
        *,
        generator=None,
        t_samples: int = ELBO_T_SAMPLES,
        posterior=None,
    ) -> torch.Tensor:
        """The negative ELBO per sample [B] in bits/dim: prior + reconstruction + the diffusion
        loss averaged over `t_samples` stratified t per sample (one network call on K * B).
        posterior(x_t, log_alpha_bar) -> (mean, var): the data's posterior in place of the
        network (the best bound of this schedule, `udm.model.optimum`)."""
        K, B = t_samples, x_0.shape[0]
        dev, dtype = x_0.device, x_0.dtype
        u = torch.rand((B,), generator=generator, dtype=torch.float64)
        t = torch.remainder(u + torch.arange(K, dtype=torch.float64)[:, None] / K, 1.0)
        eps = torch.randn((K, *x_0.shape), generator=generator, dtype=dtype).to(dev)
        x_rep = x_0.expand(K, *x_0.shape).reshape(K * B, *x_0.shape[1:])
        eps_rep = eps.reshape(K * B, *x_0.shape[1:])
        diffusion = self._diffusion(
            x_rep, t.reshape(-1).to(dev), eps_rep, repeat_labels(y, eps_rep), posterior
        )
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
        terms = self._diffusion(x_rep, t.to(x_0.device), eps.to(x_0.device), repeat_labels(y, t))
        return terms.reshape(grid, B).T / grid, self.prior_term(x_0)
