"""The discrete-time diffusion model a user trains: a denoiser network plus the paper's formulas.

Every formula comes from `torch_impl` (q_sample, posterior, ELBO terms, conversions between
the x_0 / eps / score / v parameterizations, classifier-free guidance); this module and
`udm.model.base` only wire them to a network. Discrete time t = 1..T (the paper's indexing).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import udm.torch_impl.iddpm as D
import udm.torch_impl.sampling as S
import udm.torch_impl.vdm as V
from udm.model import networks
from udm.model.base import DenoisingModel, repeat_labels
from udm.torch_impl._tensors import append_dims

VARIANCES = ("small", "large", "learned")
HYBRID_LAMBDA = 1e-3  # iDDPM's weight of L_vlb in L_hybrid = L_simple + lambda L_vlb


class DiffusionModel(DenoisingModel):
    """Denoiser `network(x_t, t / T, y)` predicting `target` (x0, eps, score or v).

    weighting='elbo': the unbiased one-t estimate of the negative ELBO (eq. (58) via
    `udm.torch_impl.vdm.training_loss`); weighting='simple': DDPM's unweighted ||eps - eps_hat||^2
    (eq. (130) without its weight). `levels`: grey levels of discrete data (None: continuous).

    variance: the reverse variance of p(x_{t-1} | x_t). 'small': sigma_q^2(t) (eq. (85); the
    t = 1 decoder var_q(2)); 'large': beta_t (the t = 1 decoder beta_1: for N(0, I) data the
    reverse process is then exactly q's); 'learned': iDDPM's exp(v log beta_t + (1 - v) log
    sigma_q^2(t)) (iddpm.15), v = (u + 1) / 2 from a second half of the network's output u.
    With weighting='simple' a learned variance trains on iDDPM's L_hybrid: the eps loss (mean
    over coordinates) + HYBRID_LAMBDA * T * L_t / D, the one-t estimate of L_vlb per
    coordinate in nats, with the mean's gradient stopped in L_t (only the variance learns
    from it); with weighting='elbo' the bound trains mean and variance together.
    """

    def __init__(
        self,
        network: nn.Module,
        schedule: V.Schedule,
        *,
        target: str = "eps",
        weighting: str = "simple",
        levels: int | None = None,
        num_classes: int = 0,
        variance: str = "small",
    ):
        super().__init__(network, target=target, levels=levels, num_classes=num_classes)
        if weighting not in ("simple", "elbo"):
            raise ValueError(f"weighting must be 'simple' or 'elbo', got {weighting!r}")
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
        if variance == "learned" and getattr(network, "outputs", 1) != 2:
            raise ValueError("variance='learned' needs a network with outputs=2")
        self.schedule, self.weighting, self.variance = schedule, weighting, variance

    @classmethod
    def from_config(cls, config, dataset) -> DiffusionModel:
        schedule = V.make_schedule(config.schedule, config.T)
        classes = dataset.num_classes if config.conditional else 0
        variance = getattr(config, "variance", "small")
        outputs = 2 if variance == "learned" else 1
        net = networks.for_data(dataset.shape, classes, config.width, outputs=outputs)
        return cls(
            net,
            schedule,
            target=config.target,
            weighting=config.weighting,
            levels=dataset.levels,
            num_classes=classes,
            variance=variance,
        )

    @property
    def T(self) -> int:
        return self.schedule.T

    # --- noise levels ---------------------------------------------------------------------

    def log_snr(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.schedule.gather("log_snr", t, x)

    def network_time(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.to(x.dtype) / self.T

    def sampling_grid(self, sampler: str, steps: int | None):
        """Time steps T..1 (ancestral, default) or `steps` of them (DDIM default min(T, 100);
        ancestral then samples the respaced chain), and alpha_bar_0 = 1. The steps are
        `udm.torch_impl.sampling.timestep_grid(T, k, "linspace")` + 1: exactly the timesteps of
        diffusers' and improved-diffusion's DDIM linspace grid, so samples can be compared."""
        k = steps or (self.T if sampler == "ancestral" else min(self.T, 100))
        # improved-diffusion's and diffusers' `linspace` grid on 0-based indices (zt_snr.spacing)
        index = S.timestep_grid(self.T, min(k, self.T), "linspace")
        times = (index + 1).tolist()
        log_ab = torch.log(self.schedule.coefficients(torch.float64, "cpu")["alpha_bar_t"])
        p = next(self.network.parameters())
        levels = torch.cat([log_ab[index], log_ab.new_zeros(1)])
        return torch.tensor(times, device=p.device), levels

    # --- the reverse variance -------------------------------------------------------------

    def model_log_var(self, t: torch.Tensor, x: torch.Tensor, var_out=None):
        """log Sigma_theta(x_t, t) against x, or None for sigma_q^2 (the bound's matched path).
        'large': log beta_t (beta_1 at t = 1); 'learned': iddpm.15 with v = (var_out + 1) / 2
        and log sigma_q^2 clipped at t = 1 to its value at t = 2 (as improved-diffusion)."""
        if self.variance == "small":
            return None
        log_beta = torch.log(self.schedule.gather("beta_t", t, x))
        if self.variance == "large":
            return log_beta
        return D.interpolated_log_variance(
            v_interp=(var_out + 1) / 2,
            log_beta_t=log_beta,
            log_var_q=self.schedule.posterior_log_var(t, x),
        )

    def step_log_var(self, var_out, log_var_small, log_beta) -> torch.Tensor:
        if self.variance != "learned":
            return super().step_log_var(var_out, log_var_small, log_beta)
        return D.interpolated_log_variance(
            v_interp=(var_out + 1) / 2, log_beta_t=log_beta, log_var_q=log_var_small
        )

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, y=None):
        """x_0_hat, or (x_0_hat, log Sigma_theta) for a variance other than 'small' (the
        denoiser `udm.torch_impl.vdm.vb_terms` and `training_loss` take)."""
        out, var_out = self.raw_and_var(x_t, t, y)
        x_0_hat = self.x_0_hat(x_t, t, y, out=out)
        if self.variance == "small":
            return x_0_hat
        return x_0_hat, self.model_log_var(t, x_t, var_out)

    def optimal_predict(self, x_t: torch.Tensor, t: torch.Tensor, posterior):
        """What `predict` returns at the class optimum (`udm.model.optimum`): the posterior
        mean E[x_0 | x_t], and for 'learned' the variance sigma_q^2 + coef_x_0^2 Var(x_0 | x_t)
        (Var(x_0 | x_1) at t = 1). posterior(x_t, log_alpha_bar [N]) -> (mean, var)."""
        log_ab = torch.log(self.schedule.gather("alpha_bar_t", t, x_t.double()))
        mean, var = posterior(x_t.double(), log_ab)
        mean, var = mean.to(x_t.dtype), var.to(x_t.dtype)
        if self.variance == "small":
            return mean
        if self.variance == "large":
            return mean, self.model_log_var(t, x_t)
        coef = self.schedule.gather("mu_q_coef_x_0", t, x_t)
        var_q = self.schedule.gather("var_q", t, x_t)
        best = torch.where(append_dims(t == 1, x_t), var, var_q + coef**2 * var)
        return mean, torch.log(best)

    # --- training -----------------------------------------------------------------------

    def draw_training_noise(self, batch: int, generator: torch.Generator) -> dict:
        """t ~ U{1..T}, eps ~ N(0, I) (flattened) and u ~ U(0, 1) for label dropout, on CPU."""
        size = math.prod(self.network.shape)
        return {
            "t": torch.randint(1, self.T + 1, (batch,), generator=generator),
            "eps": torch.randn((batch, size), generator=generator, dtype=torch.float64),
            "u": torch.rand((batch,), generator=generator),
        }

    def forward(
        self, x_0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-sample training loss [B] at the given t ([B]) and noise eps (x_0's shape)."""
        if self.weighting == "elbo":
            return V.training_loss(
                self.schedule,
                lambda x_t, tt: self.predict(x_t, tt, y),
                x_0,
                t=t,
                eps=eps,
                levels=self.levels,
            )
        x_t = self.schedule.q_sample(x_0=x_0, t=t, eps=eps)
        out, var_out = self.raw_and_var(x_t, t, y)
        simple = (self.eps_hat(x_t, t, y, out=out) - eps).pow(2).flatten(1).mean(1)
        if self.variance != "learned":
            return simple
        # L_hybrid: the variance learns from L_vlb, the mean only from L_simple
        x_0_hat = self.x_0_hat(x_t, t, y, out=out).detach()
        log_var = self.model_log_var(t, x_t, var_out)
        vlb = V._vb_term(self.schedule, x_0, x_t, x_0_hat, t, self.levels, log_var)
        dims = math.prod(x_0.shape[1:])
        return simple + HYBRID_LAMBDA * self.T * vlb / dims

    # --- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def nll_bits_per_dim(self, x_0: torch.Tensor, y=None, generator=None) -> torch.Tensor:
        """The full-T negative ELBO per sample in bits/dim, all t in one batched pass."""
        return V.nll_bits_per_dim(
            self.schedule,
            lambda x_t, t: self.predict(x_t, t, repeat_labels(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )

    @torch.no_grad()
    def nll_bits_per_dim_with_noise(self, x_0, eps, y=None, posterior=None) -> torch.Tensor:
        """As `nll_bits_per_dim` with the noise eps [T, B, ...] given (reproducible).
        posterior: the data's posterior moments in place of the network (the class optimum,
        see `optimal_predict`)."""
        if posterior is None:
            denoiser = lambda x_t, t: self.predict(x_t, t, repeat_labels(y, t))  # noqa: E731
        else:
            denoiser = lambda x_t, t: self.optimal_predict(x_t, t, posterior)  # noqa: E731
        return V.nll_bits_per_dim(self.schedule, denoiser, x_0, eps=eps, levels=self.levels)

    @torch.no_grad()
    def neg_elbo_bits_per_dim(
        self, x_0: torch.Tensor, y=None, *, generator=None, posterior=None
    ) -> torch.Tensor:
        """The full-T negative ELBO per sample in bits/dim, its noise eps [T, B, ...] drawn on
        the CPU `generator` in x_0's dtype (reproducible on any device). posterior: see
        `nll_bits_per_dim_with_noise` (the same generator state gives the same noise)."""
        eps = torch.randn((self.T, *x_0.shape), generator=generator, dtype=x_0.dtype)
        return self.nll_bits_per_dim_with_noise(x_0, eps.to(x_0.device), y, posterior)

    @torch.no_grad()
    def elbo_terms(self, x_0: torch.Tensor, y=None, generator=None):
        """(terms [B, T], prior [B]) in nats, see `udm.torch_impl.vdm.vb_terms`."""
        return V.vb_terms(
            self.schedule,
            lambda x_t, t: self.predict(x_t, t, repeat_labels(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )
