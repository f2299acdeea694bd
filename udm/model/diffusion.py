"""The discrete-time diffusion model a user trains: a denoiser network plus the paper's formulas.

Every formula comes from `torch_impl` (q_sample, posterior, ELBO terms, conversions between
the x_0 / eps / score / v parameterizations, classifier-free guidance); this module and
`udm.model.base` only wire them to a network. Discrete time t = 1..T (the paper's indexing).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import torch_impl.vdm as V
from udm.model import networks
from udm.model.base import DenoisingModel, repeat_labels


class DiffusionModel(DenoisingModel):
    """Denoiser `network(x_t, t / T, y)` predicting `target` (x0, eps, score or v).

    weighting='elbo': the unbiased one-t estimate of the negative ELBO (eq. (58) via
    `torch_impl.vdm.training_loss`); weighting='simple': DDPM's unweighted ||eps - eps_hat||^2
    (eq. (130) without its weight). `levels`: grey levels of discrete data (None: continuous).
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
    ):
        super().__init__(network, target=target, levels=levels, num_classes=num_classes)
        if weighting not in ("simple", "elbo"):
            raise ValueError(f"weighting must be 'simple' or 'elbo', got {weighting!r}")
        self.schedule, self.weighting = schedule, weighting

    @classmethod
    def from_config(cls, config, dataset) -> DiffusionModel:
        schedule = V.make_schedule(config.schedule, config.T)
        classes = dataset.num_classes if config.conditional else 0
        net = networks.for_data(dataset.shape, classes, config.width)
        return cls(
            net,
            schedule,
            target=config.target,
            weighting=config.weighting,
            levels=dataset.levels,
            num_classes=classes,
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
        """Time steps T..1 (ancestral, default) or `steps` of them evenly spaced (DDIM
        default min(T, 100); ancestral then samples the respaced chain), and alpha_bar_0 = 1."""
        k = steps or (self.T if sampler == "ancestral" else min(self.T, 100))
        if k >= self.T:
            times = list(range(self.T, 0, -1))
        else:
            times = sorted({round(v) for v in torch.linspace(1, self.T, k).tolist()}, reverse=True)
        index = torch.tensor(times) - 1
        log_ab = torch.log(self.schedule.coefficients(torch.float64, "cpu")["alpha_bar_t"])
        p = next(self.network.parameters())
        levels = torch.cat([log_ab[index], log_ab.new_zeros(1)])
        return torch.tensor(times, device=p.device), levels

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
                lambda x_t, tt: self.x_0_hat(x_t, tt, y),
                x_0,
                t=t,
                eps=eps,
                levels=self.levels,
            )
        x_t = self.schedule.q_sample(x_0=x_0, t=t, eps=eps)
        return (self.eps_hat(x_t, t, y) - eps).pow(2).flatten(1).mean(1)

    # --- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def nll_bits_per_dim(self, x_0: torch.Tensor, y=None, generator=None) -> torch.Tensor:
        """The full-T negative ELBO per sample in bits/dim, all t in one batched pass."""
        return V.nll_bits_per_dim(
            self.schedule,
            lambda x_t, t: self.x_0_hat(x_t, t, repeat_labels(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )

    @torch.no_grad()
    def nll_bits_per_dim_with_noise(self, x_0, eps, y=None) -> torch.Tensor:
        """As `nll_bits_per_dim` with the noise eps [T, B, ...] given (reproducible)."""
        return V.nll_bits_per_dim(
            self.schedule,
            lambda x_t, t: self.x_0_hat(x_t, t, repeat_labels(y, t)),
            x_0,
            eps=eps,
            levels=self.levels,
        )

    @torch.no_grad()
    def neg_elbo_bits_per_dim(self, x_0: torch.Tensor, y=None, *, generator=None) -> torch.Tensor:
        """The full-T negative ELBO per sample in bits/dim, its noise eps [T, B, ...] drawn on
        the CPU `generator` in x_0's dtype (reproducible on any device)."""
        eps = torch.randn((self.T, *x_0.shape), generator=generator, dtype=x_0.dtype)
        return self.nll_bits_per_dim_with_noise(x_0, eps.to(x_0.device), y)

    @torch.no_grad()
    def elbo_terms(self, x_0: torch.Tensor, y=None, generator=None):
        """(terms [B, T], prior [B]) in nats, see `torch_impl.vdm.vb_terms`."""
        return V.vb_terms(
            self.schedule,
            lambda x_t, t: self.x_0_hat(x_t, t, repeat_labels(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )
