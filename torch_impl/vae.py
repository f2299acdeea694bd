"""Variational autoencoders (background, eqs. (17)-(22)) in PyTorch.

Pure functions first (prior-matching KL, reparameterization, the Gaussian VAE objective
with reparameterized Monte Carlo reconstruction), then two small modules that train: a
linear VAE (whose optimum is probabilistic PCA) and an MLP VAE.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from udm import register
from udm.torch_impl import _stable
from udm.torch_impl._tensors import check_broadcast, tensor_arg

_LOG_2PI = math.log(2 * math.pi)


def _log_var(var, log_var, name, like=None):
    """Exactly one of var_* / log_var_*: return the log-variance tensor."""
    if (var is None) == (log_var is None):
        raise ValueError(f"give exactly one of var_{name} and log_var_{name}")
    if var is not None:
        return torch.log(tensor_arg(f"var_{name}", var, "positive", like=like))
    return tensor_arg(f"log_var_{name}", log_var, like=like)


@register(19, 20, 21)
def kl_standard_normal(*, mean_q, var_q=None, log_var_q=None) -> torch.Tensor:
    r"""Prior-matching KL(N(mean_q, var_q) || N(0, 1)) per coordinate, eqs. (19)-(21).

    :math:`\tfrac12(\mu^2 + \sigma^2 - 1 - \log\sigma^2)`, computed as
    (mean^2 + expm1mx(l)) / 2 with l = log var, expm1mx(l) = expm1(l) - l by its series near
    0 (`udm.torch_impl._stable`: >= 0 and full relative accuracy near var = 1). Sum over
    the last dimension for the diagonal encoder of eq. (20). Give var_q or log_var_q.
    """
    mean_q = tensor_arg("mean_q", mean_q)
    log_var = _log_var(var_q, log_var_q, "q", like=mean_q)
    check_broadcast(mean_q=mean_q, log_var_q=log_var)
    return 0.5 * (mean_q**2 + _stable.expm1mx(log_var))


@register(20, 22)
def reparameterize(*, mean_q, eps, var_q=None, log_var_q=None) -> torch.Tensor:
    r"""z = mean_q + sigma_q * eps, eps ~ N(0, I): a differentiable sample of eq. (20) for
    the Monte Carlo objective of eq. (22). Give var_q or log_var_q."""
    mean_q = tensor_arg("mean_q", mean_q)
    eps = tensor_arg("eps", eps, like=mean_q)
    log_var = _log_var(var_q, log_var_q, "q", like=mean_q)
    check_broadcast(mean_q=mean_q, log_var_q=log_var, eps=eps)
    return mean_q + torch.exp(0.5 * log_var) * eps


def _log_normal(x, mean, log_var):
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))


@register(19)
class VAEObjective(NamedTuple):
    """Per-example terms of eq. (19): elbo = reconstruction - prior_matching, each [B]."""

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    prior_matching: torch.Tensor


@register(19, 22)
def gaussian_vae_elbo(
    *,
    x_0: torch.Tensor,
    mean_q: torch.Tensor,
    log_var_q: torch.Tensor,
    decoder: Callable[[torch.Tensor], torch.Tensor],
    log_var_x,
    n_samples: int = 1,
    kl: str = "analytic",
    generator: torch.Generator | None = None,
) -> VAEObjective:
    r"""The VAE objective of eqs. (19), (22) for a diagonal Gaussian encoder and decoder.

    reconstruction = (1/L) sum_l log N(x; decoder(z_l), exp(log_var_x) I), z_l reparameterized
    from q = N(mean_q, diag(exp(log_var_q))) (L = n_samples; the paper's eq. (22) omits
    the 1/L); prior_matching = KL(q || N(0, I)) analytic (kl="analytic") or the Monte Carlo
    average of log q(z_l) - log p(z_l) on the same samples (kl="mc").

    Shapes: x_0 [B, d]; mean_q, log_var_q [B, k]; decoder maps [L, B, k] -> [L, B, d];
    log_var_x broadcasts against [d]. Returns per-example [B] terms; loss = -elbo.mean().
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    if kl not in ("analytic", "mc"):
        raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}")
    x_0 = tensor_arg("x_0", x_0)
    mean_q = tensor_arg("mean_q", mean_q, like=x_0)
    log_var_q = tensor_arg("log_var_q", log_var_q, like=x_0)
    log_var_x = tensor_arg("log_var_x", log_var_x, like=x_0)
    if x_0.ndim != 2 or mean_q.ndim != 2 or mean_q.shape[0] != x_0.shape[0]:
        raise ValueError(
            f"need x_0 [B, d] and mean_q [B, k]; got x_0{tuple(x_0.shape)}, "
            f"mean_q{tuple(mean_q.shape)}"
        )
    if log_var_q.shape != mean_q.shape:
        raise ValueError(
            f"log_var_q{tuple(log_var_q.shape)} must have mean_q's shape {tuple(mean_q.shape)}"
        )
    check_broadcast(x_0=x_0, log_var_x=log_var_x)
    eps = torch.randn(
        (n_samples, *mean_q.shape), dtype=x_0.dtype, device=x_0.device, generator=generator
    )
    z = mean_q + torch.exp(0.5 * log_var_q) * eps
    x_mean = decoder(z)
    if x_mean.shape != (n_samples, *x_0.shape):
        raise ValueError(
            f"decoder returned {tuple(x_mean.shape)}, expected {(n_samples, *x_0.shape)}"
        )
    recon = _log_normal(x_0, x_mean, log_var_x).sum(-1).mean(0)
    if kl == "analytic":
        prior = (0.5 * (mean_q**2 + torch.expm1(log_var_q) - log_var_q)).sum(-1)
    else:
        log_q = -0.5 * (_LOG_2PI + log_var_q + eps**2)
        log_p = -0.5 * (_LOG_2PI + z**2)
        prior = (log_q - log_p).sum(-1).mean(0)
    return VAEObjective(recon - prior, recon, prior)


class _VAEBase(nn.Module):
    log_var_x: nn.Parameter

    def encode(self, x_0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x_0: torch.Tensor, n_samples: int = 1, kl: str = "analytic", generator=None
    ) -> VAEObjective:
        mean_q, log_var_q = self.encode(x_0)
        return gaussian_vae_elbo(
            x_0=x_0,
            mean_q=mean_q,
            log_var_q=log_var_q,
            decoder=self.decode,
            log_var_x=self.log_var_x,
            n_samples=n_samples,
            kl=kl,
            generator=generator,
        )


@register(19, 20, 21, 22)
class LinearVAE(_VAEBase):
    r"""Linear Gaussian VAE trained on the objective of eqs. (19)-(22).

    Encoder q(z | x) = N(A x + c, diag(exp(log_var_q))) (eq. (20); input-independent
    variance, as at the pPCA optimum), prior N(0, I) (eq. (21)), decoder
    p(x | z) = N(W z + b, exp(log_var_x) I). Its global optimum is probabilistic PCA
    (`udm.reference.vae.linear_vae_optimum`).
    """

    def __init__(self, data_dim: int, latent_dim: int):
        super().__init__()
        for name, v in (("data_dim", data_dim), ("latent_dim", latent_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.encoder = nn.Linear(data_dim, latent_dim)
        self.log_var_q = nn.Parameter(torch.zeros(latent_dim))
        self.decoder = nn.Linear(latent_dim, data_dim)
        self.log_var_x = nn.Parameter(torch.zeros(()))

    def encode(self, x_0):
        mean_q = self.encoder(x_0)
        return mean_q, self.log_var_q.expand_as(mean_q)

    def decode(self, z):
        return self.decoder(z)


@register(19, 20, 21, 22)
class MLPVAE(_VAEBase):
    r"""Small MLP VAE trained on the objective of eqs. (19)-(22): encoder MLP -> (mean,
    log-variance) of the diagonal Gaussian q(z | x) of eq. (20), prior N(0, I) (eq. (21)),
    decoder MLP -> mean of p(x | z) with a learned isotropic log-variance."""

    def __init__(self, data_dim: int, latent_dim: int, hidden: int = 64):
        super().__init__()
        for name, v in (("data_dim", data_dim), ("latent_dim", latent_dim), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.encoder = nn.Sequential(
            nn.Linear(data_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, data_dim)
        )
        self.log_var_x = nn.Parameter(torch.zeros(()))

    def encode(self, x_0):
        mean_q, log_var_q = self.encoder(x_0).chunk(2, dim=-1)
        return mean_q, log_var_q

    def decode(self, z):
        return self.decoder(z)
