"""The diffusion model a user trains: a denoiser network plus the paper's formulas.

Every formula comes from `torch_impl` (q_sample, posterior, ELBO terms, conversions between
the x_0 / eps / score / v parameterizations, classifier-free guidance); this module only
wires them to a network. Discrete time t = 1..T (the paper's indexing).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import torch_impl.guidance as G
import torch_impl.interpretations as I
import torch_impl.vdm as V
from udm.model import networks
from udm.model.progress import bar as progress_bar

_TO_X0 = {"eps": I.x_0_from_eps, "score": I.x_0_from_score, "v": I.x_0_from_v}
_PRED_NAME = {"eps": "eps_hat", "score": "score_hat", "v": "v_hat"}
SAMPLERS = ("ancestral", "ddim")


class DiffusionModel(nn.Module):
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
        super().__init__()
        if target not in ("x0", *_TO_X0):
            raise ValueError(f"target must be x0, eps, score or v, got {target!r}")
        if weighting not in ("simple", "elbo"):
            raise ValueError(f"weighting must be 'simple' or 'elbo', got {weighting!r}")
        self.network, self.schedule = network, schedule
        self.target, self.weighting, self.levels = target, weighting, levels
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, config, dataset) -> DiffusionModel:
        """The model for `config`: `ContinuousDiffusionModel` when config.schedule == 'learned'."""
        if config.schedule == "learned":
            from udm.model.continuous import ContinuousDiffusionModel

            return ContinuousDiffusionModel.from_config(config, dataset)
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

    # --- predictions --------------------------------------------------------------------

    def _alpha_bar(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.schedule.gather("alpha_bar_t", t, x)

    def raw(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        """The network's output at integer time steps t ([B], 1..T)."""
        return self.network(x_t, t.to(x_t.dtype) / self.T, y)

    def x_0_hat(self, x_t, t, y=None, out: torch.Tensor | None = None) -> torch.Tensor:
        """x_0 prediction, converted from the target by eqs. (115), (133) or the v form."""
        out = self.raw(x_t, t, y) if out is None else out
        if self.target == "x0":
            return out
        return _TO_X0[self.target](
            x_t=x_t, **{_PRED_NAME[self.target]: out}, alpha_bar_t=self._alpha_bar(t, x_t)
        )

    def eps_hat(self, x_t, t, y=None, out: torch.Tensor | None = None) -> torch.Tensor:
        out = self.raw(x_t, t, y) if out is None else out
        ab = self._alpha_bar(t, x_t)
        if self.target == "eps":
            return out
        if self.target == "score":
            return I.eps_from_score(score_hat=out, alpha_bar_t=ab)
        if self.target == "v":
            return I.eps_from_v(x_t=x_t, v_hat=out, alpha_bar_t=ab)
        return I.eps_from_x_0(x_t=x_t, x_0_hat=out, alpha_bar_t=ab)

    def score_hat(self, x_t, t, y=None) -> torch.Tensor:
        return I.score_from_eps(
            eps_hat=self.eps_hat(x_t, t, y), alpha_bar_t=self._alpha_bar(t, x_t)
        )

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
            lambda x_t, t: self.x_0_hat(x_t, t, _rep(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )

    @torch.no_grad()
    def nll_bits_per_dim_with_noise(self, x_0, eps, y=None) -> torch.Tensor:
        """As `nll_bits_per_dim` with the noise eps [T, B, ...] given (reproducible)."""
        return V.nll_bits_per_dim(
            self.schedule,
            lambda x_t, t: self.x_0_hat(x_t, t, _rep(y, t)),
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
            lambda x_t, t: self.x_0_hat(x_t, t, _rep(y, t)),
            x_0,
            generator=generator,
            levels=self.levels,
        )

    # --- sampling -------------------------------------------------------------------------

    def _guided_x_0(self, x_t, t, y, guidance_scale):
        if y is None or guidance_scale is None:
            return self.x_0_hat(x_t, t, y)
        return cfg_x_0(
            x_t,
            self.eps_hat(x_t, t, None),
            self.eps_hat(x_t, t, y),
            guidance_scale,
            alpha_bar_t=self._alpha_bar(t, x_t),
        )

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
        """Draw n samples. 'ancestral': x_{t-1} ~ N(mu_theta(x_t, t), var_q(t)) (eqs. (84),
        (85), (94)) for t = T..1; 'ddim': the deterministic DDIM update (eta = 0) on `steps`
        evenly spaced time steps (not in the paper: Song et al. 2021). `guidance_scale`:
        classifier-free guidance gamma (eq. (170)) given labels y; `clip` clamps x_0_hat to
        [-1, 1] (image data)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if guidance_scale is not None and (y is None or not self.num_classes):
            raise ValueError("guidance_scale needs labels y and a class-conditional model")
        shape = (n, *self.network.shape)

        def noise():  # drawn on the CPU generator, then moved: reproducible on any device
            return torch.randn(shape, generator=generator, dtype=dtype).to(device)

        x = noise()
        if y is not None:
            y = torch.as_tensor(y, device=device).expand(n)
        times = list(range(self.T, 0, -1))
        if sampler == "ddim":
            k = steps or min(self.T, 100)
            times = sorted({round(v) for v in torch.linspace(1, self.T, k).tolist()}, reverse=True)
        for i, t_val in enumerate(progress_bar(times, enabled=progress, unit="step")):
            t = torch.full((n,), t_val, device=x.device, dtype=torch.long)
            x_0_hat = self._guided_x_0(x, t, y, guidance_scale)
            if clip:
                x_0_hat = x_0_hat.clamp(-1, 1)
            if sampler == "ancestral":
                mean = self.schedule.p_mean(x_t=x, x_0_hat=x_0_hat, t=t)
                if t_val > 1:
                    var = self.schedule.posterior_var(t, x)
                    x = mean + var.sqrt() * noise()
                else:
                    x = mean
            else:
                ab = self._alpha_bar(t, x)
                eps_hat = I.eps_from_x_0(x_t=x, x_0_hat=x_0_hat, alpha_bar_t=ab)
                if i + 1 < len(times):
                    ab_next = self._alpha_bar(torch.full_like(t, times[i + 1]), x)
                    x = ab_next.sqrt() * x_0_hat + (1 - ab_next).sqrt() * eps_hat
                else:
                    x = x_0_hat
        return x


def cfg_x_0(x_t, eps_uncond, eps_cond, guidance_scale, **noise_level) -> torch.Tensor:
    """Classifier-free guidance (eq. (170)) on the scores of two eps predictions (eq. (151)),
    returned as x_0_hat (eq. (133)). noise_level: alpha_bar_t=... or log_snr=..."""
    score = I.score_from_eps(eps_hat=eps_uncond, **noise_level)
    score_cond = I.score_from_eps(eps_hat=eps_cond, **noise_level)
    guided = G.cfg_score(score=score, score_cond=score_cond, guidance_scale=guidance_scale)
    return I.x_0_from_score(x_t=x_t, score_hat=guided, **noise_level)


def _rep(y: torch.Tensor | None, t: torch.Tensor) -> torch.Tensor | None:
    """Labels [B] repeated to match the T * B batch of the vectorized ELBO (t-major)."""
    if y is None:
        return None
    return y.repeat(t.shape[0] // y.shape[0])
